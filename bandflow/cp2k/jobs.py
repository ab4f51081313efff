"""CP2K makers of bandflow: bulk hybrid band edges, slab potential, slab relaxation.

Why not atomate2's CP2K makers: they need a pymatgen-formatted CP2K data directory, their default hybrid
set aborts CP2K 2023.1 (exact exchange with k-points), and their task documents leave ``vbm``/``cbm`` as
None for these runs. The makers here follow atomate2's conventions (dataclass ``Maker`` with ``name`` and a
``@job`` ``make``), write inputs with :mod:`bandflow.cp2k.sets`, run CP2K through custodian
(:func:`bandflow.cp2k.run.run_cp2k`) in sub-folders of the job's working directory, and parse the outputs
with :mod:`bandflow.cp2k.parsing`.

Bulk band edges (:class:`Cp2kBulkHybridMaker`), in one job:

1. PBE at Γ in a supercell of at most ``max_atoms`` atoms (the smallest one whose faces are at least
   ``min_width`` apart; MgO: the 16-atom 2×2×2 primitive supercell, since the 8-atom conventional cell
   is only 4.21 Å wide);
2. PBE with a Γ-centred k-point mesh (``kspacing``) in the same supercell;
3. HSE06 (ADMM) at Γ in the same supercell, started from and screened on the PBE wavefunction of 1.

Before 3, while |E(Γ) − E(k-mesh)| per atom of 1 and 2 exceeds ``max_sampling_error`` (0.03 eV/atom), 1
and 2 are repeated in the next wider supercell (any shape, at least 15 % wider; up to ``max_grown_atoms``):
the hybrid's band edges converge with the Γ cell, not through the PBE correction (CaO VBM: 1.24 eV off in
8 atoms). With growth on, the ladder starts at the smallest cell at least ``min_hybrid_width`` (7 Å) wide.

CP2K 2023.1 has no exact exchange with k-points, so the hybrid sees only Γ of the supercell. The
k-point correction ``Δ = ε(k-mesh) − ε(Γ)`` of the PBE VBM and CBM (runs 2 and 1) is added to the hybrid
edges: it carries the band-edge position in the Brillouin zone and the effect of the k-sampling on the
density and mean potential, assuming both change little from PBE to HSE06. All eigenvalues are relative to
the cell-mean electrostatic potential, which CP2K sets to zero (G = 0 dropped); the hybrid run writes its
V_HARTREE cube and its mean is reported as ``bulk_average_potential`` (zero up to round-off).
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from jobflow import Maker, job
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.xyz import XYZ
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.cp2k.parsing import Cp2kOutputSummary
from bandflow.cp2k.reuse import forget_runs, keep_run, restore_run, run_key
from bandflow.cp2k.run import OUTPUT_FILE, cp2k_command, run_cp2k
from bandflow.cp2k.schemas import (
    Cp2kBulkHybridOutput,
    Cp2kSlabRelaxOutput,
    Cp2kSlabStaticOutput,
    KPointCorrection,
)
from bandflow.cp2k.sets import (
    AUX_BASIS_FAMILY,
    DEFAULT_CUTOFF,
    DEFAULT_EPS_SCHWARZ,
    DEFAULT_KSPACING,
    DEFAULT_REL_CUTOFF,
    PROJECT_NAME,
    Cp2kHybridSetGenerator,
    Cp2kSlabRelaxSetGenerator,
    Cp2kSlabStaticSetGenerator,
    Cp2kStaticSetGenerator,
    fixed_atom_indices,
    kpoint_mesh,
)
from bandflow.errors import BandflowError
from bandflow.protocols import MAX_GAMMA_SAMPLING_ERROR

#: Multigrid cutoff (Ry) of slab relaxations (see :class:`Cp2kSlabRelaxMaker`).
RELAX_CUTOFF = 600.0
#: A computed bulk gap below this (eV) is rejected: the alignment needs an insulator.
MIN_GAP = 0.1
WFN_FILE = f"{PROJECT_NAME}-RESTART.wfn"
#: The supercell families the Γ cell can grow through (:func:`wider_supercells`).
SUPERCELL_SHAPES = ("all", "diagonal")


# ------------------------------------------------------------------------------------------ supercells
def cell_width(lattice: np.ndarray) -> float:
    """Smallest distance (Å) between opposite faces of a cell (its thinnest direction)."""
    a, b, c = np.asarray(lattice, dtype=float)
    volume = abs(np.dot(a, np.cross(b, c)))
    return float(min(volume / np.linalg.norm(np.cross(*pair)) for pair in ((b, c), (a, c), (a, b))))


def _standard_cells(structure: Structure) -> tuple[Structure, Structure]:
    """The conventional and the primitive standard cell of ``structure``."""
    analyzer = SpacegroupAnalyzer(structure, symprec=1e-3)
    return analyzer.get_conventional_standard_structure(), analyzer.get_primitive_standard_structure()


def _diagonal_multiples(bases: Sequence[Structure], min_atoms: int, max_atoms: int,
                        max_multiple: int) -> list[Structure]:
    """``base * (i, j, k)`` for each base in turn, 1 ≤ i, j, k ≤ ``max_multiple``, with min–max atoms."""
    return [base * multiples for base in bases
            for multiples in itertools.product(range(1, max_multiple + 1), repeat=3)
            if min_atoms <= len(base) * int(np.prod(multiples)) <= max_atoms]


def hermite_normal_forms(index: int) -> Iterator[np.ndarray]:
    """Lower-triangular Hermite normal forms of determinant ``index``: one per distinct sublattice of that
    index (every supercell of ``index`` primitive cells, whatever its shape)."""
    for a in range(1, index + 1):
        if index % a:
            continue
        for c in range(1, index // a + 1):
            if (index // a) % c:
                continue
            f = index // a // c
            # rows generate the sublattice; each off-diagonal entry is reduced modulo its column's diagonal
            for b, d, e in itertools.product(range(a), range(a), range(c)):
                yield np.array([[a, 0, 0], [b, c, 0], [d, e, f]])


_SMALL_COMBINATIONS = np.array([m for m in itertools.product((-1, 0, 1), repeat=3) if m > (0, 0, 0)])


def widest_supercells(structure: Structure, min_atoms: int, max_atoms: int) -> list[Structure]:
    """For each size from ``min_atoms`` to ``max_atoms`` atoms, the widest (:func:`cell_width`) supercell of
    the primitive standard cell among all shapes, in its widest basis (:func:`widest_basis`); fewest atoms
    first.

    Written here because pymatgen's ``CubicSupercellTransformation`` and ASE's ``find_optimal_cell_shape``
    give one cell for one target, not the widest cell of every size. Every sublattice is enumerated once
    through its Hermite normal form (CaO up to 64 atoms: 22,528 lattices, most of them discarded by a bound
    without reduction; about 10 s).
    """
    primitive = _standard_cells(structure)[1]
    cells = []
    for index in range(max(1, -(-min_atoms // len(primitive))), max_atoms // len(primitive) + 1):
        bases = np.array(list(hermite_normal_forms(index))) @ primitive.lattice.matrix
        # a cell is never wider than the lattice's shortest vector, so never wider than the shortest of the
        # vectors Σ m_i b_i (m_i ∈ {-1, 0, 1}): reduce only the lattices where that bound can win
        bound = np.linalg.norm(np.einsum("cj,njk->nck", _SMALL_COMBINATIONS, bases), axis=2).min(axis=1)
        best, best_width = None, -1.0
        for position in np.argsort(-bound, kind="stable"):
            if bound[position] <= best_width:
                break
            reduced = widest_basis(Lattice(bases[position]))
            if (width := cell_width(reduced.matrix)) > best_width + 1e-6:
                best, best_width = reduced, width
        cells.append(_supercell_on(primitive, best))
    return cells


def widest_basis(lattice: Lattice) -> Lattice:
    """A right-handed basis of ``lattice`` with the largest :func:`cell_width` found: the dual of the
    LLL-reduced reciprocal basis (a width is 1/max|b*ᵢ|, so short reciprocal vectors give a wide cell), or the
    LLL-reduced basis when that is wider. ZnO, 16 atoms: 5.52 Å against LLL's 5.21 Å (the dual of the
    Niggli-reduced reciprocal basis gave the same widths on ZnO's 32- and 64-atom cells, 4× slower)."""
    reciprocal = lattice.reciprocal_lattice_crystallographic.get_lll_reduced_lattice().matrix
    candidates = [np.linalg.inv(reciprocal).T, lattice.get_lll_reduced_lattice().matrix]
    best = max(candidates, key=cell_width)
    if np.linalg.det(best) < 0:  # keep the cell right-handed
        best = -best
    return Lattice(best)


def _supercell_on(primitive: Structure, lattice: Lattice) -> Structure:
    """``primitive`` repeated to fill ``lattice`` (a supercell lattice of it)."""
    matrix = np.rint(np.linalg.solve(primitive.lattice.matrix.T, lattice.matrix.T).T).astype(int)
    return primitive.copy().make_supercell(matrix)


def _candidate_cells(structure: Structure, min_atoms: int, max_atoms: int, shapes: str) -> list[Structure]:
    """Supercells of ``structure`` for Γ-only runs: ``diagonal`` (multiples of the primitive or conventional
    standard cell along its axes) or ``all`` (:func:`widest_supercells`)."""
    if shapes == "diagonal":
        return _diagonal_multiples(_standard_cells(structure), min_atoms, max_atoms, 5)
    if shapes == "all":
        return widest_supercells(structure, min_atoms, max_atoms)
    raise BandflowError(f"supercell shapes must be one of {', '.join(SUPERCELL_SHAPES)}, got {shapes!r}")


def gamma_supercell(structure: Structure, max_atoms: int = 16, min_width: float = 4.5) -> Structure:
    """The first cell for a Γ-only hybrid run: diagonal multiples of the primitive or conventional standard cell.

    Among those with at most ``max_atoms`` atoms, the one with the fewest atoms whose width
    (:func:`cell_width`) reaches ``min_width`` Å; if none does, the widest. Ties go to the wider, then to
    the conventional cell. A primitive cell above ``max_atoms`` is used as it is.
    """
    bases = _standard_cells(structure)
    candidates = [(cell, cell_width(cell.lattice.matrix)) for cell in _diagonal_multiples(bases, 1, max_atoms, 4)]
    if not candidates:
        return bases[1]  # the primitive cell
    wide = [c for c in candidates if c[1] >= min_width - 1e-6]
    if wide:
        best = min(wide, key=lambda c: (len(c[0]), -round(c[1], 3)))
    else:
        best = max(candidates, key=lambda c: (round(c[1], 3), -len(c[0])))
    return best[0]


def wider_supercells(structure: Structure, start: Structure, max_atoms: int, shapes: str = "diagonal",
                     min_growth: float = 1.0) -> list[Structure]:
    """Supercells (:func:`_candidate_cells`, ``shapes``) with more atoms than ``start`` and at most
    ``max_atoms``, fewest atoms first, each wider (:func:`cell_width`) than the cell before it by more than
    1 mÅ and by more than the factor ``min_growth``."""
    return _rungs(_candidate_cells(structure, len(start) + 1, max_atoms, shapes), start, min_growth)


def _rungs(cells: Sequence[Structure], start: Structure, min_growth: float) -> list[Structure]:
    """Of ``cells``, those with more atoms than ``start``, fewest atoms first, each wider than the cell before
    it by more than 1 mÅ and by more than the factor ``min_growth``."""
    ladder, width = [], cell_width(start.lattice.matrix)
    for cell in sorted((c for c in cells if len(c) > len(start)),
                       key=lambda c: (len(c), -cell_width(c.lattice.matrix))):
        if (w := cell_width(cell.lattice.matrix)) > max(width + 1e-3, width * min_growth):
            ladder.append(cell)
            width = w
    return ladder


def gamma_cell_ladder(structure: Structure, first: Structure, max_atoms: int, shapes: str = "all",
                      min_growth: float = 1.15, min_width: float = 7.0) -> list[Structure]:
    """The Γ cells the bulk hybrid may grow through, narrowest first: from the smallest cell (``first`` or a
    larger one, :func:`_candidate_cells`) at least ``min_width`` Å wide, or the widest one within
    ``max_atoms`` when none is, then the wider rungs of :func:`wider_supercells`. The exact exchange converges more slowly with
    the cell than the PBE energy that decides where the ladder stops (docs/engines.md)."""
    candidates = [first, *_candidate_cells(structure, len(first) + 1, max_atoms, shapes)]
    wide = [c for c in candidates if cell_width(c.lattice.matrix) >= min_width - 1e-6]
    start = (min(wide, key=lambda c: (len(c), -cell_width(c.lattice.matrix))) if wide
             else max(candidates, key=lambda c: (cell_width(c.lattice.matrix), -len(c))))
    return [start, *_rungs(candidates, start, min_growth)]


def _plain(structure: Structure) -> Structure:
    """``structure`` with element species only (no oxidation states), site properties kept."""
    plain = structure.copy()
    plain.remove_oxidation_states()
    return plain


def _run(generator: Cp2kStaticSetGenerator, structure: Structure, directory: Path,
         files: dict[str, Path] | None = None, kept: list[str] | None = None) -> Cp2kOutputSummary:
    """Write the inputs of ``generator`` for ``structure`` into ``directory`` and run CP2K there.

    With ``kept`` (a list), a finished run with the same inputs is reused instead, a new one is kept for
    later (:mod:`bandflow.cp2k.reuse`), and the run's key is appended to ``kept``.
    """
    def write_inputs() -> None:
        generator.get_input_set(structure).write_input(directory)
        for name, source in (files or {}).items():
            shutil.copyfile(source, directory / name)

    directory.mkdir(parents=True, exist_ok=True)
    write_inputs()
    key = None
    if kept is not None:
        key = run_key(directory, cp2k_command())
        kept.append(key)
        if reused := restore_run(key, directory, OUTPUT_FILE):
            return reused
        write_inputs()  # a restore that failed may have copied the kept run's input (custodian-edited) over ours
    summary = run_cp2k(directory)
    # k-point wavefunctions (tens of MB per slab) and CP2K's backups are not needed by any later step
    for path in {*directory.glob(f"{PROJECT_NAME}-RESTART.kp*"), *directory.glob("*.bak-*")}:
        path.unlink(missing_ok=True)  # the two patterns overlap (bandflow-RESTART.kp.bak-1)
    if key is not None:
        keep_run(key, directory)
    return summary


def _per_atom_difference(gamma: float | None, kmesh: float | None, n_atoms: int) -> float | None:
    """(E_Γ − E_k-mesh) / atoms (eV/atom), or None when a run printed no energy."""
    return None if gamma is None or kmesh is None else (gamma - kmesh) / n_atoms


def _cube_path(directory: Path) -> Path:
    cubes = sorted(directory.glob(f"{PROJECT_NAME}-v_hartree-*.cube"))
    if not cubes:
        raise BandflowError(f"CP2K wrote no V_HARTREE cube in {directory}")
    return cubes[-1]


# --------------------------------------------------------------------------------------- bulk hybrid
@dataclass
class Cp2kBulkHybridMaker(Maker):
    """Bulk HSE06 band edges (ADMM, Γ-only supercell) with a PBE k-point correction; see the module doc.

    Parameters
    ----------
    max_atoms, min_width
        Size limit (atoms) and target width (Å) of the Γ-only supercell (:func:`gamma_supercell`).
    kspacing
        k-point spacing (Å⁻¹, 2π included) of the PBE k-point reference run.
    cutoff, rel_cutoff
        Multigrid cutoffs (Ry) of all three runs.
    eps_schwarz
        Screening threshold of the exchange integrals.
    max_sampling_error, max_grown_atoms
        The Γ cell grows (:func:`wider_supercells`, up to ``max_grown_atoms``) until its PBE energy per atom
        at Γ is within ``max_sampling_error`` (eV/atom) of the k-mesh one: small Γ cells leave the band
        edges unconverged (CaO VBM: 8 atoms 1.24 eV, 16 atoms 0.30 eV below 54 atoms; docs/engines.md).
        Default :data:`~bandflow.protocols.MAX_GAMMA_SAMPLING_ERROR`; None keeps the first cell.
    min_hybrid_width
        With growth on, the ladder starts at the smallest cell at least this wide (Å), or at the widest one
        within ``max_grown_atoms`` when none is that wide: the HSE06 − PBE shift of the VBM converges more slowly with
        the cell than the PBE energy (CaO: −2.25 eV at 4.8 Å, −1.33 at 5.7, −1.00 at 8.3; PbO: −0.59 at 6.1,
        −0.44 at 8.0), even where the PBE sampling error is already below ``max_sampling_error``.
    supercell_shapes, min_growth
        The cells the Γ cell grows through: ``all`` (default), for each size the widest supercell of any
        shape (:func:`widest_supercells`), each rung at least ``min_growth`` times wider than the one before;
        ``diagonal``, multiples of the primitive or conventional cell along its axes (bandflow's first
        ladder: BeO stopped at 4.7 Å within 64 atoms, 7.1 Å with all shapes).
    aux_basis_family, d_shell_aux
        ADMM auxiliary basis family of the hybrid (``BASIS_ADMM_UZH``), and whether K, Ca, Rb, Sr, Cs and Ba
        take a set with d functions instead (their d states form the conduction-band edge; see
        :data:`bandflow.cp2k.sets.D_SHELL_CATIONS`).
    compact_aux_elements
        Elements that take the compact auxiliary set (:func:`bandflow.cp2k.sets.compact_aux_entry`) in this
        bulk only, beside Li and Al everywhere: a spec's ``bulk_settings`` for a bulk whose hybrid diverges
        with the family set (Ga2O3-beta with admm-dz-q13; docs/engines.md) while other bulks of the element
        converge with it (LiGaO2).
    user_input_settings
        Nested dict merged into every input (see :class:`bandflow.cp2k.sets.Cp2kStaticSetGenerator`).

    Every field, defaults included, is part of the bulk step's settings key
    (:class:`bandflow.flows.SettingsKeys`): a new field or a new default recomputes the bulk band edges of
    every campaign (and re-aligns their surfaces, without slab calculations). The fields of
    :attr:`KEYED_WHEN_SET` are the exception: added after bulks were stored, they enter the key only when
    set (not empty), so the bulks that do not use them keep their keys.
    """

    KEYED_WHEN_SET: ClassVar[tuple[str, ...]] = ("compact_aux_elements",)

    name: str = "cp2k bulk hybrid"
    max_atoms: int = 16
    min_width: float = 4.5
    kspacing: float = DEFAULT_KSPACING
    cutoff: float = DEFAULT_CUTOFF
    rel_cutoff: float = DEFAULT_REL_CUTOFF
    eps_schwarz: float = DEFAULT_EPS_SCHWARZ
    max_sampling_error: float | None = MAX_GAMMA_SAMPLING_ERROR
    max_grown_atoms: int = 64
    min_hybrid_width: float = 7.0
    supercell_shapes: str = "all"
    min_growth: float = 1.15
    aux_basis_family: str = AUX_BASIS_FAMILY
    d_shell_aux: bool = True
    compact_aux_elements: tuple[str, ...] = ()
    user_input_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.compact_aux_elements, str) or not all(
                isinstance(e, str) and Element.is_valid_symbol(e) for e in self.compact_aux_elements):
            raise BandflowError(f"compact_aux_elements must be a list of element symbols, got "
                                f"{self.compact_aux_elements!r}")
        self.compact_aux_elements = tuple(sorted(set(self.compact_aux_elements)))
        if self.max_sampling_error is not None and not self.max_sampling_error > 0:
            raise BandflowError(f"max_sampling_error must be a positive energy per atom (eV), got "
                                f"{self.max_sampling_error!r}")
        if self.supercell_shapes not in SUPERCELL_SHAPES:
            raise BandflowError(f"supercell_shapes must be one of {', '.join(SUPERCELL_SHAPES)}, got "
                                f"{self.supercell_shapes!r}")
        if not self.min_hybrid_width >= 0:
            raise BandflowError(f"min_hybrid_width must be a width in Å (≥ 0), got {self.min_hybrid_width!r}")
        if not self.min_growth >= 1:
            raise BandflowError(f"min_growth must be a width ratio of at least 1, got {self.min_growth!r}")
        if int(self.max_atoms) < 1:
            raise BandflowError(f"max_atoms must be a positive number of atoms, got {self.max_atoms}")
        kpoint_mesh(Structure(np.eye(3), ["O"], [[0, 0, 0]]), self.kspacing)  # validates kspacing

    def _common(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "rel_cutoff": self.rel_cutoff,
                "user_input_settings": dict(self.user_input_settings)}

    def gamma_cells(self, plain: Structure) -> list[Structure]:
        """The Γ cells the step tries, narrowest first: the first cell alone without ``max_sampling_error``."""
        first = gamma_supercell(plain, self.max_atoms, self.min_width)
        if not self.max_sampling_error:
            return [first]
        return gamma_cell_ladder(plain, first, self.max_grown_atoms, self.supercell_shapes, self.min_growth,
                                 self.min_hybrid_width)

    def hybrid_generator(self) -> Cp2kHybridSetGenerator:
        """The HSE06 input of the step, restarted from the PBE Γ wavefunction copied in as ``pbe.wfn``."""
        return Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", v_hartree_cube=(1, 1, 1), eps_schwarz=self.eps_schwarz,
                                      aux_basis_family=self.aux_basis_family, d_shell_aux=self.d_shell_aux,
                                      compact_aux_elements=self.compact_aux_elements, **self._common())

    @job
    def make(self, structure: Structure) -> Cp2kBulkHybridOutput:
        """Run PBE (Γ and k-mesh) and HSE06 (Γ) in sub-folders of the working directory."""
        started = time.perf_counter()
        plain = _plain(structure)
        work = Path.cwd()
        cells = self.gamma_cells(plain)
        tried: list[dict[str, Any]] = []
        kept: list[str] = []  # finished PBE runs, kept until this job succeeds (bandflow.cp2k.reuse)
        reused_seconds = 0.0  # what the runs restored from an earlier attempt cost when they ran
        for attempt, cell in enumerate(cells):
            if attempt:  # keep the runs of the smaller cells beside, for the record
                for step in ("pbe_gamma", "pbe_kpoints"):
                    (work / step).rename(work / f"{step}-{tried[-1]['n_atoms']}-atoms")
            mesh = kpoint_mesh(cell, self.kspacing)
            pbe_gamma = _run(Cp2kStaticSetGenerator(**self._common()), cell, work / "pbe_gamma", kept=kept)
            pbe_kmesh = _run(Cp2kStaticSetGenerator(kpoints=mesh, **self._common()), cell, work / "pbe_kpoints",
                             kept=kept)
            reused_seconds += sum(run.wall_time or 0.0 for run in (pbe_gamma, pbe_kmesh) if run.reused)
            sampling_error = _per_atom_difference(pbe_gamma.total_energy, pbe_kmesh.total_energy, len(cell))
            tried.append({"n_atoms": len(cell), "width": cell_width(cell.lattice.matrix),
                          "sampling_error": sampling_error})
            if self.max_sampling_error is None or (sampling_error is not None
                                                   and abs(sampling_error) <= self.max_sampling_error):
                break
        hybrid_generator = self.hybrid_generator()
        hybrid = _run(hybrid_generator, cell, work / "hse06", files={"pbe.wfn": work / "pbe_gamma" / WFN_FILE})
        kinds = hybrid_generator.kinds(cell)

        from bandflow.potential import read_potential

        mean_potential = float(read_potential(_cube_path(work / "hse06")).data.mean())
        gamma, kmesh, hse = pbe_gamma.band_edges(), pbe_kmesh.band_edges(), hybrid.band_edges()
        correction = KPointCorrection(
            vbm=kmesh.vbm - gamma.vbm, cbm=kmesh.cbm - gamma.cbm, kpoints=mesh,
            pbe_gamma_vbm=gamma.vbm, pbe_gamma_cbm=gamma.cbm, pbe_kmesh_vbm=kmesh.vbm, pbe_kmesh_cbm=kmesh.cbm,
        )
        vbm, cbm = hse.vbm + correction.vbm, hse.cbm + correction.cbm
        formula = cell.composition.reduced_formula
        if cbm - vbm < MIN_GAP:
            raise BandflowError(f"{formula}: HSE06 gap {cbm - vbm:.2f} eV is below {MIN_GAP} eV; "
                                "the alignment needs an insulator")
        output = Cp2kBulkHybridOutput(
            vbm=vbm, cbm=cbm, gap=cbm - vbm, bulk_average_potential=mean_potential,
            vbm_gamma=hse.vbm, cbm_gamma=hse.cbm, k_correction=correction, formula=formula,
            n_atoms=len(cell), gamma_cell_width=tried[-1]["width"], supercell_lattice=cell.lattice.matrix.tolist(), energy=float(hybrid.total_energy),
            gamma_sampling_error=sampling_error, cells_tried=tried,
            code_version=hybrid.version,
            wall_time={"pbe_gamma": pbe_gamma.wall_time, "pbe_kpoints": pbe_kmesh.wall_time,
                       "hybrid": hybrid.wall_time, "total": time.perf_counter() - started,
                       "reused": reused_seconds},
            settings={"basis": {el: k.basis for el, k in kinds.items()}, "cutoff": self.cutoff,
                      "rel_cutoff": self.rel_cutoff, "eps_schwarz": self.eps_schwarz,
                      "admm": {el: k.aux_basis for el, k in kinds.items()} | {"method": "BASIS_PROJECTION"},
                      "max_sampling_error": self.max_sampling_error, "supercell_shapes": self.supercell_shapes,
                      "min_growth": self.min_growth, "min_hybrid_width": self.min_hybrid_width,
                      "kspacing": self.kspacing},
            dir_name=str(work),
        )
        forget_runs(kept)  # done: the output goes to the job store, and a rerun of a finished job is rare
        return output


# ------------------------------------------------------------------------------------------------ slabs
@dataclass
class _Cp2kSlabMaker(Maker):
    """Settings the slab makers share.

    Parameters
    ----------
    kspacing
        In-plane k-point spacing (Å⁻¹, 2π included); one k-point along c.
    kpoints
        Explicit mesh (wins over ``kspacing``).
    cutoff, rel_cutoff
        Multigrid cutoffs (Ry).
    user_input_settings
        Nested dict merged into the input last.
    """

    name: str = "cp2k slab"
    kspacing: float = DEFAULT_KSPACING
    kpoints: tuple[int, int, int] | None = None
    cutoff: float = DEFAULT_CUTOFF
    rel_cutoff: float = DEFAULT_REL_CUTOFF
    user_input_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kpoint_mesh(Structure(np.eye(3), ["O"], [[0, 0, 0]]), self.kspacing)  # validates kspacing
        if self.kpoints is not None:
            if len(self.kpoints) != 3 or any(int(n) < 1 for n in self.kpoints):
                raise BandflowError(f"kpoints must be three positive integers, got {self.kpoints}")
            self.kpoints = tuple(int(n) for n in self.kpoints)  # type: ignore[assignment]

    def _generator_kwargs(self) -> dict[str, Any]:
        return {"kspacing": self.kspacing, "kpoints": self.kpoints, "cutoff": self.cutoff,
                "rel_cutoff": self.rel_cutoff, "user_input_settings": dict(self.user_input_settings)}


@dataclass
class Cp2kSlabStaticMaker(_Cp2kSlabMaker):
    """PBE slab single point with k-points; returns the analysis of its electrostatic potential.

    Parameters
    ----------
    period
        Interlayer spacing (Å) of the macroscopic average; None detects it from the atoms.
    store_cube
        Also return the potential grid, which jobflow puts into the job store's ``data`` store.
    """

    name: str = "cp2k slab potential"
    period: float | None = None
    store_cube: bool = False

    @job(data="v_hartree_cube")
    def make(self, structure: Structure) -> Cp2kSlabStaticOutput:
        """Run the slab in ``./slab_static`` and analyse its V_HARTREE cube with :mod:`bandflow.potential`."""
        from bandflow.potential import analyze_potential, read_potential

        slab = _plain(structure)
        generator = Cp2kSlabStaticSetGenerator(**self._generator_kwargs())
        directory = Path.cwd() / "slab_static"
        summary = _run(generator, slab, directory)
        grid = read_potential(_cube_path(directory))
        analysis = analyze_potential(grid, axis=2, period=self.period)
        try:
            edges = summary.band_edges()
            vbm, cbm = edges.vbm, edges.cbm
        except BandflowError:
            vbm = cbm = None
        cube = None
        if self.store_cube:
            cube = {"data": grid.data, "lattice": grid.lattice, "units": "eV",
                    "structure": grid.structure.as_dict() if grid.structure is not None else None}
        return Cp2kSlabStaticOutput(
            potential=analysis.to_dict(profile=True), energy=float(summary.total_energy), vbm=vbm, cbm=cbm,
            kpoints=generator.kpoint_mesh(slab), n_atoms=len(slab), formula=slab.composition.reduced_formula,
            code_version=summary.version, wall_time=summary.wall_time,
            settings={"basis": {el: k.basis for el, k in generator.kinds(slab).items()}, "cutoff": self.cutoff,
                      "rel_cutoff": self.rel_cutoff, "kspacing": self.kspacing},
            dir_name=str(directory), v_hartree_cube=cube,
        )


@dataclass
class Cp2kSlabRelaxMaker(_Cp2kSlabMaker):
    """PBE relaxation of a slab (GEO_OPT, L-BFGS, fixed cell) for the ``accurate`` protocol.

    Sites whose ``selective_dynamics`` flags are all False stay fixed (``FIXED_ATOMS``); a slab without the
    flags gets its central third fixed (:func:`bandflow.forcefields.fix_central_layers`).
    """

    name: str = "cp2k slab relax"
    #: Forces need a finer grid than energies and potentials: on a 3-layer MgO(100) slab (Mg with its
    #: 2s2p semicore, 4×4×1 k-points) the surface-Mg force was 0.85 Ha/bohr at 300 Ry, 0.06 at 400 Ry and
    #: 0.0006 at 600 Ry, while the potential step changed by 0.03 eV from 400 to 600 Ry.
    cutoff: float = RELAX_CUTOFF
    max_geo_steps: int = 200

    @job
    def make(self, structure: Structure) -> Cp2kSlabRelaxOutput:
        """Relax in ``./slab_relax``; the relaxed slab keeps the input's site order and properties."""
        slab = _plain(structure)
        if "selective_dynamics" not in slab.site_properties:
            from bandflow.forcefields import fix_central_layers

            slab = fix_central_layers(slab)
        generator = Cp2kSlabRelaxSetGenerator(max_geo_steps=self.max_geo_steps, **self._generator_kwargs())
        directory = Path.cwd() / "slab_relax"
        summary = _run(generator, slab, directory)
        frames = XYZ.from_file(directory / f"{PROJECT_NAME}-pos-1.xyz").all_molecules
        relaxed = Structure(slab.lattice, slab.species, frames[-1].cart_coords, coords_are_cartesian=True,
                            site_properties=slab.site_properties)
        return Cp2kSlabRelaxOutput(
            structure=relaxed.as_dict(), energy=float(summary.total_energy), n_steps=len(frames) - 1,
            fixed_atoms=fixed_atom_indices(slab), kpoints=generator.kpoint_mesh(slab),
            code_version=summary.version, wall_time=summary.wall_time, dir_name=str(directory),
        )
