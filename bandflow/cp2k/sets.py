"""CP2K input sets of bandflow, written with pymatgen's :mod:`pymatgen.io.cp2k` input classes.

Why not atomate2's CP2K input sets: they resolve basis sets and potentials through a pymatgen-formatted
data directory (``pmg config --cp2k``, ``PMG_CP2K_DATA_DIR``) that a plain CP2K installation lacks, and
their hybrid set (PBE0 with k-points) aborts CP2K 2023.1, which has no exact exchange with k-points. The
generators here name CP2K's own data files (found by bare file name, e.g. in ``/usr/share/cp2k``) and
return atomate2's :class:`~atomate2.cp2k.sets.base.Cp2kInputSet`, so files are written the atomate2 way.

Settings shared by every generator (the ``fast`` protocol; all are fields that can be changed):

* DZVP-MOLOPT-SR-GTH basis sets with the GTH-PBE pseudopotential of matching valence (DZVP MOLOPT sets
  from fallback files for La–Lu and the actinides, see :data:`BASIS_SOURCES`), 400 Ry cutoff
  (REL_CUTOFF 50), EPS_DEFAULT 1e-10, EPS_SCF 1e-6;
* diagonalisation with Broyden mixing and a few unoccupied orbitals (``ADDED_MOS``), so the lowest empty
  states (the CBM) are printed; OT was 5× slower to converge on MgO and cannot be used with k-points;
* MO eigenvalues with occupations printed once, after the SCF (parsed by :mod:`bandflow.cp2k.parsing`);
* k-points, when asked for, as an explicit Γ-centred list (``SCHEME GENERAL``, ``FULL_GRID``, symmetry
  off: CP2K aborts on reduced grids without ``FULL_GRID``), each k, −k pair listed once with weight 2;
  the Monkhorst–Pack grids CP2K builds itself are shifted off Γ for even subdivisions;
* coordinates in a separate XYZ file (``structure.xyz``) read through ``&TOPOLOGY``: pymatgen re-orders
  the lines of an inline ``&COORD`` section when it reads an input back (custodian does so to apply
  corrections), which would scramble atom indices such as ``FIXED_ATOMS``.

Which generator does what:

==============================  ========================================================================
``Cp2kStaticSetGenerator``      PBE single point; Γ-only or a k-point mesh; optional V_HARTREE cube
``Cp2kHybridSetGenerator``      HSE06 with ADMM, Γ only, restarted from a PBE wavefunction, density-matrix
                                mixing with DIIS
``Cp2kSlabStaticSetGenerator``  PBE slab single point, k-points in the plane (one along c), V_HARTREE cube
``Cp2kSlabRelaxSetGenerator``   PBE slab GEO_OPT (L-BFGS), k-points in the plane, central layers fixed
==============================  ========================================================================
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from atomate2.cp2k.sets.base import Cp2kInputSet
from pymatgen.core import Element, Structure
from pymatgen.io.core import InputGenerator
from pymatgen.io.cp2k.inputs import Cp2kInput, Keyword, KeywordList, Section, SectionList

from bandflow.errors import BandflowError
from bandflow.settings import get_settings

#: Where Debian's ``cp2k-data`` package puts basis sets and potentials (CP2K's compiled-in default).
DEFAULT_CP2K_DATA_DIR = Path("/usr/share/cp2k")
BASIS_FILE = "BASIS_MOLOPT"
AUX_BASIS_FILE = "BASIS_ADMM_UZH"
POTENTIAL_FILE = "GTH_POTENTIALS"
BASIS_FAMILY = "DZVP-MOLOPT-SR-GTH"
POTENTIAL_FAMILY = "GTH-PBE"
AUX_BASIS_FAMILY = "admm-dz"
#: Heavy alkali and alkaline-earth atoms: their empty (n−1)d shell forms the conduction-band edge of their
#: oxides, but their admm-dz sets have no d functions, so the exact exchange never reaches those states (CaO,
#: 8-atom cell: the X-point d states move by −0.01 eV from PBE to HSE06 with admm-dz, by +0.86 eV with a d
#: shell; the Ca 4s state by +0.33 eV). They take the smallest Ling–Slater cFIT set with d functions if it
#: has no diffuse functions (:data:`MIN_AUX_EXPONENT`: Ca cFIT7), else their admm-dz set with the cFIT set's
#: d shell added (:func:`d_shell_aux_entry`: K, Rb, Sr, Cs, Ba).
D_SHELL_CATIONS = ("K", "Ca", "Rb", "Sr", "Cs", "Ba")
D_SHELL_AUX_FILE = "BASIS_ADMM_MOLOPT"
#: A cFIT set with an exponent (bohr⁻²) below this is not used whole. Diffuse auxiliary functions made the
#: exchange integrals of a periodic solid far costlier or the SCF diverge: Sr cFIT8 (s and p down to 0.051)
#: had not finished its first integral pass in an 8-atom SrO cell after 15 min on one core, where admm-dz
#: with cFIT8's d shell took 6 min for the whole HSE06 run; the 21-atom K2O HSE06 with K cFIT8 (s down to
#: 0.040) jumped between −515 and +23,280 Ha from its third SCF step. Ca cFIT7 (down to 0.25) ran CaO in
#: 1.6 min (8 atoms) and converged in the 42-atom cell.
MIN_AUX_EXPONENT = 0.1
#: The file bandflow writes into a hybrid run's folder for auxiliary sets it composes (admm-dz + d shell).
COMPOSED_AUX_FILE = "BASIS_ADMM_BANDFLOW"


@dataclass(frozen=True)
class BasisSource:
    """A CP2K basis file, the family of double-zeta MOLOPT sets taken from it, and its potentials' file."""

    basis_file: str
    family: str
    potential_file: str


#: Searched in this order for each element. BASIS_MOLOPT covers most of the table but not La–Lu or the
#: actinides; the UCL MOLOPT-SR sets (Ling & Slater, same fitting strategy, GTH-PBE potentials) cover La–Lu,
#: and the AcPP1 MOLOPT sets with their own potentials cover Th (the smallest valence is taken).
BASIS_SOURCES = (
    BasisSource(BASIS_FILE, BASIS_FAMILY, POTENTIAL_FILE),
    BasisSource("BASIS_MOLOPT_UCL", BASIS_FAMILY, POTENTIAL_FILE),
    BasisSource("BASIS_MOLOPT_AcPP1", "DZVP-MOLOPT-GTH", "AcPP1_POTENTIALS"),
)

#: Elements whose basis and pseudopotential come from another source than :data:`BASIS_SOURCES`, in PBE and
#: hybrid runs alike (the mean electrostatic potential that bulk and slab share depends on the
#: pseudopotential). Li: with its 1s shell in the valence (GTH-PBE-q3, admm-dz-q3) every Li hybrid diverged
#: (Li2O 12-atom HSE06: density-matrix change 83.5 in the first step, then energies up to +941,000 Ha); with
#: 1s in the core (GTH-PBE-q1 and its UZH MOLOPT basis) and a compact auxiliary set
#: (:data:`COMPACT_AUX_ELEMENTS`) it converged in 7 steps (docs/engines.md).
ELEMENT_SOURCES = {
    "Li": (BasisSource("BASIS_MOLOPT_UZH", "DZVP-MOLOPT-PBE-GTH", "POTENTIAL_UZH"),),
}
#: Elements whose auxiliary basis is their orbital basis's primitives of exponent at least
#: :data:`MIN_AUX_EXPONENT`, uncontracted (:func:`compact_aux_entry`), instead of the admm-dz set. Al: with
#: admm-dz-q3 both Al bulks tried diverged (Al2SiO5, BeAl2O4); with the compact set (s, p, d at 1.21, 0.45,
#: 0.24 bohr⁻²) the 10-atom Al2O3 HSE06 converged in 8 steps (first-step density-matrix change 0.052), at a
#: high cost: 4827 s of integral pass on half a core, 961 image cells (docs/engines.md).
COMPACT_AUX_ELEMENTS = ("Li", "Al")

PROJECT_NAME = "bandflow"
COORD_FILE = "structure.xyz"

#: Plane-wave cutoff of the finest grid (Ry) and the relative cutoff (Ry) of every bandflow CP2K run.
DEFAULT_CUTOFF = 400.0
DEFAULT_REL_CUTOFF = 50.0
#: k-point spacing (Å⁻¹, 2π included, VASP's KSPACING convention); 0.6 gives MgO(100) 1×1 a 4×4×1 mesh.
DEFAULT_KSPACING = 0.6
#: HSE06: 25 % short-range exact exchange, ω = 0.11 bohr⁻¹ (the HSE06 value of libxc and CP2K's manual).
HSE06_FRACTION = 0.25
HSE06_OMEGA = 0.11
#: Schwarz screening of the exchange integrals (the notes: 1e-6 changes the MgO gap by < 0.01 eV).
DEFAULT_EPS_SCHWARZ = 1e-6
#: A slab must have at least this much vacuum (Å) along c.
MIN_VACUUM = 5.0


# ----------------------------------------------------------------------------------- basis and potentials
@dataclass(frozen=True)
class KindSettings:
    """Basis set, auxiliary (ADMM) basis and pseudopotential names of one element, their files, and its valence."""

    element: str
    basis: str
    potential: str
    aux_basis: str | None
    valence: int
    basis_file: str = BASIS_FILE
    potential_file: str = POTENTIAL_FILE
    #: The file of ``aux_basis``: ``AUX_BASIS_FILE``, or ``basis_file`` when the orbital basis is its own
    #: auxiliary basis (elements without an admm-dz set).
    aux_basis_file: str | None = None
    #: The basis-file entry of ``aux_basis`` when bandflow composes it (``aux_basis_file`` is then
    #: :data:`COMPOSED_AUX_FILE`, written beside the input).
    aux_basis_text: str | None = None


def cp2k_data_dir() -> Path:
    """The CP2K data directory: the ``cp2k_data_dir`` setting, else ``/usr/share/cp2k``."""
    return Path(get_settings().cp2k_data_dir or DEFAULT_CP2K_DATA_DIR)


@cache
def _data_file_entries(path: Path) -> dict[str, list[list[str]]]:
    """Element → name lists of the entries of a CP2K basis/potential file (a line ``El NAME [ALIAS ...]``).

    Written by hand because pymatgen's readers of these files parse every entry in full and need the
    pymatgen-formatted data directory for metadata; only the names are needed here.
    """
    if not path.is_file():
        raise BandflowError(f"CP2K data file not found: {path} (set BANDFLOW_CP2K_DATA_DIR to CP2K's data folder)")
    entries: dict[str, list[list[str]]] = {}
    for line in path.read_text(errors="replace").splitlines():
        tokens = line.split()
        if len(tokens) >= 2 and not line.lstrip().startswith("#") and Element.is_valid_symbol(tokens[0]):
            if not tokens[1][0].isdigit():
                entries.setdefault(tokens[0], []).append(tokens[1:])
    return entries


@dataclass(frozen=True)
class ShellSet:
    """One contracted set of a CP2K basis entry: its header ``n lmin lmax n_exp n_l(lmin) …`` and its rows
    (an exponent, then one coefficient per contraction)."""

    header: tuple[int, ...]
    rows: tuple[tuple[float, ...], ...]

    @property
    def lmin(self) -> int:
        return self.header[1]

    @property
    def lmax(self) -> int:
        return self.header[2]

    def text(self) -> str:
        """The set as CP2K basis-file lines (numbers written so that they read back exactly)."""
        return "\n".join([" " + " ".join(str(v) for v in self.header)]
                         + ["  " + "  ".join(f"{v!r:>14}" for v in row) for row in self.rows])


@cache
def _basis_sets(path: Path) -> dict[str, dict[str, tuple[ShellSet, ...]]]:
    """Element → name (and alias) → contracted sets of each basis entry of the CP2K basis file ``path``.

    Written by hand: pymatgen's reader (``GaussianTypeOrbitalBasisSet``) needs the pymatgen-formatted data
    directory for its metadata and does not write entries back in CP2K's format.
    """
    lines = [line.split() for line in path.read_text(errors="replace").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    found: dict[str, dict[str, tuple[ShellSet, ...]]] = {}
    position = 0
    while position < len(lines):
        tokens = lines[position]
        if not (Element.is_valid_symbol(tokens[0]) and len(tokens) >= 2 and not tokens[1][0].isdigit()):
            position += 1
            continue
        start, sets = position, []
        try:
            n_sets, position = int(lines[position + 1][0]), position + 2
            for _ in range(n_sets):  # each set: "n lmin lmax n_exponents n_shells(l) ...", then its exponents
                header = tuple(int(v) for v in lines[position])
                rows = tuple(tuple(float(v) for v in row) for row in lines[position + 1:position + 1 + header[3]])
                if len(header) < 5 or len(rows) != header[3] or any(len(r) != 1 + sum(header[4:]) for r in rows):
                    raise ValueError("malformed set")
                sets.append(ShellSet(header, rows))
                position += 1 + header[3]
        except (ValueError, IndexError):  # not a basis entry after all (free text in a few files): go on
            position = start + 1
            continue
        found.setdefault(tokens[0], {}).update(dict.fromkeys(tokens[1:], tuple(sets)))
    return found


def _d_shell_aux_basis(data_dir: Path, element: str) -> str | None:
    """The smallest cFIT set of ``element`` in :data:`D_SHELL_AUX_FILE` with d functions, or None."""
    path = data_dir / D_SHELL_AUX_FILE
    if not path.is_file():
        return None
    sets = [(int(m.group(1)), name) for name, shells in _basis_sets(path).get(element, {}).items()
            if max(s.lmax for s in shells) >= 2 and (m := re.fullmatch(r"cFIT(\d+)", name))]
    return min(sets)[1] if sets else None


def _min_exponent(shells: Iterable[ShellSet]) -> float:
    """The most diffuse exponent of ``shells`` (inf if there are none)."""
    return min((row[0] for s in shells for row in s.rows), default=math.inf)


def _entry_text(element: str, name: str, sets: Sequence[ShellSet]) -> str:
    """A basis-file entry of ``element`` called ``name`` made of ``sets``, in CP2K's format."""
    return f"{element} {name}\n {len(sets)}\n" + "\n".join(s.text() for s in sets) + "\n"


def d_shell_aux_entry(base_name: str, base: Sequence[ShellSet], d_name: str, d_source: Sequence[ShellSet],
                      element: str) -> tuple[str, str]:
    """Name and basis-file text of ``base`` (an admm-dz set) with the d-only sets of ``d_source`` added.

    Composed here because no CP2K data file has an auxiliary set for K, Rb, Sr, Cs or Ba with d functions
    and no functions more diffuse than their admm-dz sets' (see :data:`MIN_AUX_EXPONENT`).
    """
    d_sets = [s for s in d_source if s.lmin == s.lmax == 2]
    if not d_sets:
        raise BandflowError(f"{element} {d_name}: no set of d functions only to add to {base_name}")
    name = f"{base_name}-d-{d_name}"
    sets = [*base, *d_sets]
    return name, _entry_text(element, name, sets)


def compact_aux_entry(basis_name: str, basis: Sequence[ShellSet], element: str) -> tuple[str, str]:
    """Name and basis-file text of an auxiliary set made of the primitives of ``basis`` (an orbital basis)
    whose exponent is at least :data:`MIN_AUX_EXPONENT`, each uncontracted over its set's l range.

    Composed here because no CP2K data file has an auxiliary set for Li with its 1s in the core: the
    orbital basis itself as auxiliary basis has a 0.042 bohr⁻² function, and its exchange pair lists did not
    fit in 3 GB for the 12-atom Li2O cell (docs/engines.md). Al's admm-dz-q3 set made its hybrids diverge.
    """
    primitives = dict.fromkeys((row[0], s.lmin, s.lmax) for s in basis for row in s.rows
                               if row[0] >= MIN_AUX_EXPONENT)
    if not primitives:
        raise BandflowError(f"{element} {basis_name}: no primitive of exponent >= {MIN_AUX_EXPONENT} for an "
                            "auxiliary basis")
    sets = [ShellSet((1, lmin, lmax, 1, *[1] * (lmax - lmin + 1)), ((exponent, *[1.0] * (lmax - lmin + 1)),))
            for exponent, lmin, lmax in primitives]
    name = f"{basis_name}-compact"
    return name, _entry_text(element, name, sets)


def _find_name(path: Path, element: str, wanted: Sequence[str]) -> str | None:
    """The first of ``wanted`` that names an entry of ``element`` in ``path`` (case-insensitive)."""
    names = {n.upper() for entry in _data_file_entries(path).get(element, []) for n in entry}
    return next((w for w in wanted if w.upper() in names), None)


def _basis_entry(path: Path, element: str, family: str) -> tuple[str, int] | None:
    """Name and valence of ``element``'s ``family`` basis in ``path``: the entry named plainly ``family``,
    else the one of smallest valence among those named ``family-qN``; None if there is none."""
    found: list[tuple[bool, int, str]] = []
    for names in _data_file_entries(path).get(element, []):
        plain = any(n.upper() == family.upper() for n in names)
        valences = [int(m.group(1)) for n in names if (m := re.fullmatch(rf"{re.escape(family)}-q(\d+)", n, re.I))]
        if valences:
            found.append((not plain, valences[0], names[0]))
    if not found:
        return None
    _, valence, name = min(found)
    return name, valence


def kind_settings(element: str, hybrid: bool = False, data_dir: Path | None = None,
                  aux_family: str = AUX_BASIS_FAMILY, d_shell_aux: bool = True,
                  compact_aux: Iterable[str] = ()) -> KindSettings:
    """The first of :data:`BASIS_SOURCES` with a basis for ``element``, the GTH-PBE potential of the same
    valence and (hybrid) its auxiliary basis of ``aux_family`` (in :data:`AUX_BASIS_FILE`); with
    ``d_shell_aux``, the elements of :data:`D_SHELL_CATIONS` get d functions: their smallest cFIT set with d
    functions if it has no diffuse ones (:data:`MIN_AUX_EXPONENT`), else that family set with the cFIT set's
    d shell added (written to :data:`COMPOSED_AUX_FILE`; a family set with d functions is kept as it is).

    An element without an auxiliary set of that family and valence (La, Ce, Th, …) uses its orbital basis
    as the auxiliary basis: ADMM is then exact for it, at a higher cost of its exchange integrals. Elements
    of :data:`ELEMENT_SOURCES` take their basis and potential from there, and those of
    :data:`COMPACT_AUX_ELEMENTS` the compact auxiliary set of :func:`compact_aux_entry` (Li, Al), and so do
    the elements of ``compact_aux`` (a per-bulk choice, which leaves the other bulks of the element alone).
    """
    data_dir = Path(data_dir or cp2k_data_dir())
    sources = ELEMENT_SOURCES.get(element, BASIS_SOURCES)
    for index, source in enumerate(sources):
        path = data_dir / source.basis_file
        if index and not path.is_file():  # the first file must exist (a clear error); the fallbacks may not
            continue
        if (entry := _basis_entry(path, element, source.family)) is not None:
            break
    else:
        searched = ", ".join(f"{s.family} in {s.basis_file}" for s in sources)
        raise BandflowError(f"{element}: no basis set in {data_dir} ({searched}); "
                            "the CP2K fast protocol supports elements that have one")
    basis, q = entry
    potential = _find_name(data_dir / source.potential_file, element, [f"{POTENTIAL_FAMILY}-q{q}"])
    if potential is None:
        raise BandflowError(f"{element}: no {POTENTIAL_FAMILY}-q{q} pseudopotential in "
                            f"{data_dir / source.potential_file}")
    aux = aux_file = aux_text = None
    if hybrid:
        aux, aux_file = _find_name(data_dir / AUX_BASIS_FILE, element, [f"{aux_family}-q{q}"]), AUX_BASIS_FILE
        if aux is None:
            aux, aux_file = basis, source.basis_file
    if hybrid and (element in COMPACT_AUX_ELEMENTS or element in set(compact_aux)):
        if not (orbital_sets := _basis_sets(data_dir / source.basis_file).get(element, {}).get(basis)):
            raise BandflowError(f"{element}: cannot read the sets of {basis} in {data_dir / source.basis_file}")
        aux, aux_text = compact_aux_entry(basis, orbital_sets, element)
        aux_file = COMPOSED_AUX_FILE
    elif hybrid and d_shell_aux and element in D_SHELL_CATIONS and (d_name := _d_shell_aux_basis(data_dir, element)):
        d_sets = _basis_sets(data_dir / D_SHELL_AUX_FILE)[element][d_name]
        if _min_exponent(d_sets) >= MIN_AUX_EXPONENT or aux_file != AUX_BASIS_FILE:
            aux, aux_file = d_name, D_SHELL_AUX_FILE
        elif not (family_sets := _basis_sets(data_dir / AUX_BASIS_FILE).get(element, {}).get(aux)):
            raise BandflowError(f"{element}: cannot read the sets of {aux} in {data_dir / AUX_BASIS_FILE}")
        elif max(s.lmax for s in family_sets) < 2:  # a family with d functions (admm-dzp) is kept as it is
            aux, aux_text = d_shell_aux_entry(aux, family_sets, d_name, d_sets, element)
            aux_file = COMPOSED_AUX_FILE
    return KindSettings(element=element, basis=basis, potential=potential, aux_basis=aux, valence=q,
                        basis_file=source.basis_file, potential_file=source.potential_file,
                        aux_basis_file=aux_file, aux_basis_text=aux_text)


def element_revisions(elements: Iterable[str]) -> dict[str, str]:
    """The elements of ``elements`` whose kind settings are set apart from the family rule
    (:data:`ELEMENT_SOURCES`, :data:`COMPACT_AUX_ELEMENTS`), each with what it takes instead.

    Part of the settings keys of the bulks that contain them (:meth:`bandflow.flows.SettingsKeys.revised`):
    their results from before a change are not reused, and every other bulk keeps its keys.
    """
    revisions = {}
    for element in sorted(set(elements)):
        choice = [f"{s.basis_file}:{s.family}:{s.potential_file}" for s in ELEMENT_SOURCES.get(element, ())]
        if element in COMPACT_AUX_ELEMENTS:
            choice.append(f"compact-aux>={MIN_AUX_EXPONENT}")
        if choice:
            revisions[element] = " ".join(choice)
    return revisions


def basis_files(kinds: Iterable[KindSettings]) -> list[str]:
    """The basis files ``kinds`` need, in :data:`BASIS_SOURCES` order with the ADMM file last."""
    kinds = list(kinds)
    needed = {k.basis_file for k in kinds} | {k.aux_basis_file for k in kinds if k.aux_basis_file}
    element_files = [s.basis_file for sources in ELEMENT_SOURCES.values() for s in sources]
    order = ([s.basis_file for s in BASIS_SOURCES] + element_files
             + [AUX_BASIS_FILE, D_SHELL_AUX_FILE, COMPOSED_AUX_FILE])
    return [name for name in dict.fromkeys(order) if name in needed]


# ------------------------------------------------------------------------------------------- k-points
def kpoint_mesh(structure: Structure, kspacing: float, slab: bool = False) -> tuple[int, int, int]:
    """Subdivisions ``max(1, ceil(|b_i| / kspacing))`` (VASP's KSPACING rule, |b| with 2π); 1 along c for a slab.

    The same rule as :func:`bandflow.vasp.sets.kpoint_mesh`, so both engines sample alike.
    """
    if not (isinstance(kspacing, int | float) and math.isfinite(kspacing) and kspacing > 0):
        raise BandflowError(f"kspacing must be a positive number of 1/Å, got {kspacing!r}")
    lengths = structure.lattice.reciprocal_lattice.abc
    mesh = [max(1, math.ceil(length / kspacing - 1e-9)) for length in lengths]
    if slab:
        mesh[2] = 1
    return mesh[0], mesh[1], mesh[2]


def gamma_centred_kpoints(mesh: Sequence[int]) -> list[tuple[float, float, float]]:
    """The fractional k-points of a Γ-centred mesh, folded into (−½, ½]."""
    axes = [[(i / n + 0.5) % 1.0 - 0.5 if n > 1 else 0.0 for i in range(n)] for n in mesh]
    axes = [[0.5 if math.isclose(k, -0.5) else k for k in axis] for axis in axes]
    return [(float(a), float(b), float(c)) for a in axes[0] for b in axes[1] for c in axes[2]]


def time_reversal_kpoints(mesh: Sequence[int]) -> list[tuple[tuple[float, float, float], int]]:
    """The Γ-centred mesh with each pair k, −k (modulo a reciprocal lattice vector) kept once, with weight 2.

    Without spin–orbit coupling E(−k) = E(k) and ρ_−k = ρ_k, so the density, energy and band edges are those
    of the full mesh (measured: MgO 4×4×4, total energies equal to 1e-13 Ha; a 35-atom Sr2TiO4 slab, the same
    SCF energies step by step). Written by hand because CP2K 2023.1 aborts on its own reduced grids.
    """
    def folded(k: Sequence[float]) -> tuple[float, ...]:
        return tuple(round((x + 0.5) % 1.0 - 0.5, 9) for x in k)

    weights: dict[tuple[float, ...], int] = {}
    points: dict[tuple[float, ...], tuple[float, float, float]] = {}
    for k in gamma_centred_kpoints(mesh):
        partner = folded([-x for x in k])
        key = partner if partner in weights else folded(k)
        weights[key] = weights.get(key, 0) + 1
        points.setdefault(key, k)
    return [(points[key], weight) for key, weight in weights.items()]


# ----------------------------------------------------------------------------------------- structures
def vacuum_thickness(structure: Structure) -> float:
    """Largest empty gap (Å, normal to the ab plane) between atomic planes along c, periodically."""
    c_frac = np.sort(np.mod(structure.frac_coords[:, 2], 1.0))
    gaps = np.diff(np.append(c_frac, c_frac[0] + 1.0))
    c_normal = structure.volume / np.linalg.norm(np.cross(*structure.lattice.matrix[:2]))
    return float(gaps.max() * c_normal)


def check_slab(structure: Structure) -> None:
    """A slab needs vacuum along c; one clear error otherwise."""
    vacuum = vacuum_thickness(structure)
    if vacuum < MIN_VACUUM:
        raise BandflowError(
            f"{structure.composition.reduced_formula}: only {vacuum:.1f} Å of vacuum along c; a slab needs at "
            f"least {MIN_VACUUM:.0f} Å of vacuum along its third lattice vector"
        )


def xyz_text(structure: Structure) -> str:
    """The structure as an XYZ file (element symbols, Cartesian Å), the order of the sites kept."""
    lines = [str(len(structure)), structure.composition.formula]
    for site in structure:
        symbol = site.specie.symbol if hasattr(site.specie, "symbol") else site.species_string
        lines.append(f"{symbol:2s} " + " ".join(f"{x:16.10f}" for x in site.coords))
    return "\n".join(lines) + "\n"


def fixed_atom_indices(structure: Structure) -> list[int]:
    """1-based indices of the sites whose ``selective_dynamics`` flags are all False (frozen)."""
    flags = structure.site_properties.get("selective_dynamics")
    if flags is None:
        return []
    return [i + 1 for i, f in enumerate(flags) if not any(bool(x) for x in np.atleast_1d(f))]


def n_occupied(structure: Structure, kinds: Mapping[str, KindSettings]) -> int:
    """Doubly occupied orbitals of a closed-shell cell (valence electrons / 2, rounded up)."""
    electrons = sum(kinds[site.specie.symbol].valence for site in structure)
    return (electrons + 1) // 2


# ----------------------------------------------------------------------------------- nested dict → input
def deep_update(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` into a copy of ``base`` (nested dicts merge; ``None`` deletes a key)."""
    out = copy.deepcopy(base)
    for key, value in updates.items():
        match = next((k for k in out if k.upper() == key.upper()), key)
        if value is None:
            out.pop(match, None)
        elif isinstance(value, Mapping) and isinstance(out.get(match), Mapping):
            out[match] = deep_update(out[match], value)
        else:
            out[match] = copy.deepcopy(value)
    return out


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | np.integer | np.floating)


def to_section(name: str, spec: Mapping[str, Any]) -> Section:
    """A pymatgen Section from a nested dict.

    Keys are keyword or subsection names; ``"_"`` holds the section parameter (``&KIND Mg`` →
    ``{"_": "Mg"}``). Values: a scalar or a tuple of scalars is one keyword; a list of tuples is a repeated
    keyword; a dict is a subsection; a list of dicts is a repeated subsection.
    """
    keywords: dict[str, Keyword | KeywordList] = {}
    subsections: dict[str, Section | SectionList] = {}
    for key, value in spec.items():
        if key == "_":
            continue
        if isinstance(value, Mapping):
            subsections[key] = to_section(key, value)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            subsections[key] = SectionList([to_section(key, v) for v in value])
        elif isinstance(value, list):
            keywords[key] = KeywordList([Keyword(key, *(v if isinstance(v, tuple) else (v,))) for v in value])
        elif isinstance(value, tuple):
            keywords[key] = Keyword(key, *value)
        elif _is_scalar(value):
            keywords[key] = Keyword(key, value)
        else:
            raise BandflowError(f"CP2K input: cannot write {key} = {value!r}")
    parameter = spec.get("_")
    parameters = [] if parameter is None else [str(p) for p in np.atleast_1d(parameter)]
    return Section(name, keywords=keywords, subsections=subsections, section_parameters=parameters)


def to_cp2k_input(spec: Mapping[str, Any]) -> Cp2kInput:
    """A pymatgen :class:`Cp2kInput` from the nested dict of its top-level sections."""
    return Cp2kInput(subsections={key: to_section(key, value) for key, value in spec.items()})


# ------------------------------------------------------------------------------------------ generators
@dataclass
class Cp2kStaticSetGenerator(InputGenerator):
    """PBE single point (diagonalisation, Broyden mixing), Γ-only or with a Γ-centred k-point mesh.

    Parameters
    ----------
    kpoints
        k-point subdivisions along a, b, c; ``None`` or ``(1, 1, 1)`` is Γ only.
    cutoff, rel_cutoff
        Multigrid cutoffs (Ry).
    eps_default, eps_scf, max_scf
        Quickstep precision, SCF convergence (Ha) and SCF steps.
    added_mos
        Unoccupied orbitals computed; ``None`` picks max(8, 10 % of the occupied ones).
    wfn_restart
        A wavefunction file to start from (``SCF_GUESS RESTART``).
    v_hartree_cube
        Write the Hartree potential (``*-v_hartree-1_0.cube``) with this stride; ``None`` writes none.
    user_input_settings
        Nested dict merged into the input last (section/keyword names as keys; ``None`` removes a key).
    data_dir
        CP2K data directory for basis and potential look-ups; default the ``cp2k_data_dir`` setting.
    """

    kpoints: tuple[int, int, int] | None = None
    cutoff: float = DEFAULT_CUTOFF
    rel_cutoff: float = DEFAULT_REL_CUTOFF
    eps_default: float = 1e-10
    eps_scf: float = 1e-6
    max_scf: int = 60
    added_mos: int | None = None
    wfn_restart: str | None = None
    v_hartree_cube: tuple[int, int, int] | None = None
    user_input_settings: dict[str, Any] = field(default_factory=dict)
    data_dir: Path | None = None

    hybrid = False
    run_type = "ENERGY"

    def get_input_set(self, structure: Structure) -> Cp2kInputSet:  # type: ignore[override]
        """The input file and the coordinate file of a run on ``structure``."""
        structure = self.prepare_structure(structure)
        spec = deep_update(self.base_input(structure), self.get_input_updates(structure))
        spec = deep_update(spec, self.user_input_settings)
        files = {"coordinates": {"filename": COORD_FILE, "object": xyz_text(structure)}}
        if composed := [k.aux_basis_text for k in self.kinds(structure).values() if k.aux_basis_text]:
            files["aux_basis"] = {"filename": COMPOSED_AUX_FILE, "object": "\n".join(composed)}
        return Cp2kInputSet(to_cp2k_input(spec), optional_files=files)

    def prepare_structure(self, structure: Structure) -> Structure:
        """The structure checked for what CP2K needs here (ordered; elements only)."""
        if not structure.is_ordered:
            raise BandflowError(f"{structure.composition.reduced_formula}: CP2K needs an ordered structure")
        return structure

    def kinds(self, structure: Structure) -> dict[str, KindSettings]:
        """Basis/potential choices of each element of ``structure``."""
        return {el.symbol: kind_settings(el.symbol, hybrid=self.hybrid, data_dir=self.data_dir)
                for el in structure.composition.elements}

    def base_input(self, structure: Structure) -> dict[str, Any]:
        """The settings every bandflow CP2K run shares, as a nested dict."""
        kinds = self.kinds(structure)
        added_mos = self.added_mos if self.added_mos is not None else max(8, n_occupied(structure, kinds) // 10)
        lattice = structure.lattice.matrix
        scf: dict[str, Any] = {
            "EPS_SCF": self.eps_scf,
            "MAX_SCF": self.max_scf,
            "SCF_GUESS": "RESTART" if self.wfn_restart else "ATOMIC",
            "ADDED_MOS": added_mos,
            "DIAGONALIZATION": {"ALGORITHM": "STANDARD"},
            "MIXING": {"METHOD": "BROYDEN_MIXING", "ALPHA": 0.4, "NBROYDEN": 8},
        }
        dft: dict[str, Any] = {
            "BASIS_SET_FILE_NAME": basis_files(kinds.values()),
            "POTENTIAL_FILE_NAME": POTENTIAL_FILE,
            "MGRID": {"CUTOFF": self.cutoff, "REL_CUTOFF": self.rel_cutoff},
            "QS": {"EPS_DEFAULT": self.eps_default},
            "SCF": scf,
            "XC": {"XC_FUNCTIONAL": {"_": "PBE"}},
            "PRINT": {"MO": {"EIGENVALUES": True, "OCCUPATION_NUMBERS": True, "EACH": {"QS_SCF": 0}}},
        }
        if self.wfn_restart:
            dft["WFN_RESTART_FILE_NAME"] = self.wfn_restart
        mesh = self.kpoint_mesh(structure)
        if mesh != (1, 1, 1):
            dft["KPOINTS"] = {
                "SCHEME": "GENERAL",
                "UNITS": "B_VECTOR",
                "FULL_GRID": True,
                "SYMMETRY": False,
                "KPOINT": [(*k, float(weight)) for k, weight in time_reversal_kpoints(mesh)],
            }
        if self.v_hartree_cube:
            dft["PRINT"]["V_HARTREE_CUBE"] = {"STRIDE": tuple(self.v_hartree_cube)}
        kind_sections = []
        for kind in kinds.values():
            basis = [(kind.basis,)] + ([("AUX_FIT", kind.aux_basis)] if kind.aux_basis else [])
            section = {"_": kind.element, "BASIS_SET": basis, "POTENTIAL": kind.potential}
            if kind.potential_file != POTENTIAL_FILE:
                section["POTENTIAL_FILE_NAME"] = kind.potential_file
            kind_sections.append(section)
        return {
            "GLOBAL": {"PROJECT_NAME": PROJECT_NAME, "RUN_TYPE": self.run_type, "PRINT_LEVEL": "MEDIUM"},
            "FORCE_EVAL": {
                "METHOD": "QUICKSTEP",
                "DFT": dft,
                "SUBSYS": {
                    "CELL": {"A": tuple(lattice[0]), "B": tuple(lattice[1]), "C": tuple(lattice[2]),
                             "PERIODIC": "XYZ"},
                    "TOPOLOGY": {"COORD_FILE_NAME": COORD_FILE, "COORD_FILE_FORMAT": "XYZ"},
                    "KIND": kind_sections,
                },
            },
        }

    def kpoint_mesh(self, structure: Structure) -> tuple[int, int, int]:
        """The k-point subdivisions of a run on ``structure``; (1, 1, 1) is Γ only."""
        return tuple(int(n) for n in self.kpoints) if self.kpoints else (1, 1, 1)  # type: ignore[return-value]

    def get_input_updates(self, structure: Structure) -> dict[str, Any]:
        """Changes of this generator to :meth:`base_input` (none for a PBE single point)."""
        return {}


@dataclass
class Cp2kHybridSetGenerator(Cp2kStaticSetGenerator):
    """HSE06 single point with ADMM at Γ, started from a PBE wavefunction (``wfn_restart``).

    HSE06 in CP2K: PBE correlation, PBE exchange scaled to 0 plus the short-range ωPBE exchange scaled by
    −0.25 (``XWPBE``: ``SCALE_X0 1`` restores the full PBE exchange), and 25 % short-range
    (erfc(ωr)/r) Hartree–Fock exchange, ω = 0.11 bohr⁻¹. The exchange integrals are computed in the
    small admm-dz auxiliary basis, or the orbital basis for elements without one (ADMM2: basis projection
    without purification, the ADMM flavour that works with diagonalisation), and screened on the PBE
    density matrix read from the restart file.
    """

    eps_schwarz: float = DEFAULT_EPS_SCHWARZ
    #: 1e-5: band edges move by < 1 meV beyond it. Chosen when Broyden mixing left the residual wandering
    #: between 1e-6 and 1e-4; with density-matrix mixing and DIIS the 16-atom MgO reaches 4e-8 in 10 steps,
    #: but a tighter default would change the settings key and recompute every stored bulk.
    eps_scf: float = 1e-5
    hf_fraction: float = HSE06_FRACTION
    omega: float = HSE06_OMEGA
    #: MAX_MEMORY (MiB) for the exchange integrals kept in memory; beyond it CP2K recomputes the rest at every
    #: SCF step (54-atom Li2O: half of them, so each step would cost half the 97-min integral pass). The
    #: ``hfx_memory_mb`` setting (``BANDFLOW_HFX_MEMORY_MB``) overrides it at input-writing time, outside the
    #: maker's fields, so raising it keeps every settings key and stored bulk.
    max_memory_mb: int = 2000
    screen_on_initial_p: bool = True
    aux_basis_family: str = AUX_BASIS_FAMILY
    d_shell_aux: bool = True
    #: elements given the compact auxiliary set here besides :data:`COMPACT_AUX_ELEMENTS`
    compact_aux_elements: tuple[str, ...] = ()

    hybrid = True

    def kinds(self, structure: Structure) -> dict[str, KindSettings]:
        """Basis/potential choices of each element, with the auxiliary bases of :func:`kind_settings`."""
        return {el.symbol: kind_settings(el.symbol, hybrid=True, data_dir=self.data_dir,
                                         aux_family=self.aux_basis_family, d_shell_aux=self.d_shell_aux,
                                         compact_aux=self.compact_aux_elements)
                for el in structure.composition.elements}

    def kpoint_mesh(self, structure: Structure) -> tuple[int, int, int]:
        """Γ only: CP2K 2023.1 has no exact exchange with k-points (use a Γ-only supercell)."""
        mesh = super().kpoint_mesh(structure)
        if mesh != (1, 1, 1):
            raise BandflowError("CP2K 2023.1 has no Hartree-Fock exchange with k-points: hybrids run at Γ only")
        return mesh

    def get_input_updates(self, structure: Structure) -> dict[str, Any]:
        """ADMM, the HSE06 functional, the exchange section and density-matrix mixing with DIIS."""
        return {
            "FORCE_EVAL": {
                "DFT": {
                    # Broyden mixes only the density on the grid, so the exchange, built from the density
                    # matrix, went unmixed: the 48-atom MgO cell stalled at residuals of 5e-5 to 3e-3.
                    # Mixing the density matrix lets CP2K switch to DIIS (docs/engines.md). Converged band
                    # edges do not depend on the mixer (16-atom MgO: identical to 0.01 meV), so this is no
                    # field and changes no settings key.
                    "SCF": {"MIXING": {"METHOD": "DIRECT_P_MIXING", "NBROYDEN": None}},  # α stays 0.4
                    "AUXILIARY_DENSITY_MATRIX_METHOD": {"METHOD": "BASIS_PROJECTION",
                                                        "ADMM_PURIFICATION_METHOD": "NONE"},
                    "XC": {
                        "XC_FUNCTIONAL": {
                            "_": None,
                            "PBE": {"SCALE_X": 0.0, "SCALE_C": 1.0},
                            "XWPBE": {"SCALE_X": -self.hf_fraction, "SCALE_X0": 1.0, "OMEGA": self.omega},
                        },
                        "HF": {
                            "FRACTION": self.hf_fraction,
                            "SCREENING": {"EPS_SCHWARZ": self.eps_schwarz,
                                          "SCREEN_ON_INITIAL_P": bool(self.screen_on_initial_p and self.wfn_restart)},
                            "INTERACTION_POTENTIAL": {"POTENTIAL_TYPE": "SHORTRANGE", "OMEGA": self.omega},
                            "MEMORY": {"MAX_MEMORY": get_settings().hfx_memory_mb or self.max_memory_mb},
                        },
                    },
                }
            }
        }


@dataclass
class Cp2kSlabStaticSetGenerator(Cp2kStaticSetGenerator):
    """PBE single point of a slab: k-points in the plane from ``kspacing`` (one along c), V_HARTREE cube.

    ``kpoints`` (if given) wins over ``kspacing``.
    """

    kspacing: float = DEFAULT_KSPACING
    v_hartree_cube: tuple[int, int, int] | None = (1, 1, 1)

    def prepare_structure(self, structure: Structure) -> Structure:
        """The slab, checked for vacuum along c."""
        structure = super().prepare_structure(structure)
        check_slab(structure)
        return structure

    def kpoint_mesh(self, structure: Structure) -> tuple[int, int, int]:
        """``kpoints`` if given, else the in-plane mesh from ``kspacing`` with one k-point along c."""
        return super().kpoint_mesh(structure) if self.kpoints else kpoint_mesh(structure, self.kspacing, slab=True)


@dataclass
class Cp2kSlabRelaxSetGenerator(Cp2kSlabStaticSetGenerator):
    """PBE GEO_OPT (L-BFGS) of a slab at fixed cell; sites flagged frozen by ``selective_dynamics`` are fixed."""

    max_geo_steps: int = 200
    max_force: float = 4.5e-4  # Ha/bohr (≈ 0.023 eV/Å), CP2K's default
    v_hartree_cube: tuple[int, int, int] | None = None

    run_type = "GEO_OPT"

    def get_input_updates(self, structure: Structure) -> dict[str, Any]:
        """GEO_OPT settings and the fixed atoms."""
        motion: dict[str, Any] = {
            # L-BFGS, not BFGS: on a 3-layer MgO(100) slab at 600 Ry (2026-12-05) BFGS wandered to MAX_ITER on the
            # grid-rippled energy surface (steps of 0.47 bohr after energy rises), while L-BFGS converged in 5
            # steps (9 SCF runs, 152 s) and CG in 4 (37 SCF runs, 607 s), to the same 0.012 Å rumpling
            "GEO_OPT": {"OPTIMIZER": "LBFGS", "MAX_ITER": self.max_geo_steps, "MAX_FORCE": self.max_force},
            "PRINT": {"TRAJECTORY": {"FORMAT": "XYZ", "EACH": {"GEO_OPT": 1}}},
        }
        fixed = fixed_atom_indices(structure)
        if fixed:  # repeated LIST keywords keep the input lines short
            motion["CONSTRAINT"] = {"FIXED_ATOMS": {"LIST": [tuple(fixed[i:i + 16]) for i in range(0, len(fixed), 16)]}}
        return {"MOTION": motion}
