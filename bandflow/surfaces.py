"""Nonpolar slab enumeration: every symmetric, stoichiometric, dipole-free termination of a bulk oxide.

For each symmetry-distinct orientation (hkl) up to a maximum index, the bulk is cut into planes
parallel to (hkl); every gap between planes is a candidate termination. A slab of whole repeat units
cut at a gap is stoichiometric by construction; it is accepted (``nonpolar``) when a symmetry operation
of the bulk maps the slab onto itself upside down, so both faces are equivalent and the dipole normal to
the surface vanishes (Tasker types I and II). Orientations without such a termination are returned as
polar entries with the reason (Tasker III dipole, or two inequivalent faces).

Slab geometry: a and b span the primitive surface cell (a along x, b in the xy plane, gamma >= 90°),
c is along z, exactly perpendicular to the surface, and the vacuum is split equally above and below.
Sites are grouped by element (electronegativity order, as pymatgen sorts) and sorted by height, then
in-plane position within each element; lattice parameters and fractional
coordinates are rounded to ``DECIMALS`` so that the same input gives the identical structure.

Miller indices refer to the conventional standard cell of the bulk (pymatgen/spglib setting; 3-index
hkl for hexagonal cells, so wurtzite (10-10) is (1, 0, 0)).

Why not pymatgen's ``SlabGenerator`` pipeline: it gives the same terminations for the test oxides (see
tests/test_surfaces.py), but (a) ``get_symmetrically_distinct_miller_indices`` uses the symmetry of the
*lattice*, which merges orientations that the crystal's point group keeps distinct (corundum
(101)/(10-1), bixbyite (210)/(201)); (b) its oriented cells are in-plane supercells reduced afterwards by
``get_primitive_structure``, which dominates the cost (~60-130 ms per slab, see
benchmarks/bench_surfaces.py). Here the primitive surface cell comes directly from integer algebra
on the primitive lattice, and symmetry/dipole of a termination are decided from the bulk symmetry
operations before any slab is built.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import spglib
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.vasp import Poscar
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.bulk import BulkOxide, oxidation_states, validate_oxide
from bandflow.errors import BandflowError

DECIMALS = 6  # rounding of slab lattice parameters (Å, degrees) and fractional coordinates
BULK_SYMPREC = 0.01  # Å, symmetry tolerance for the bulk (the slab is cut from the idealised bulk)
PLANE_TOL = 0.1  # Å, smallest gap between planes where a slab may be cut (as pymatgen's ftol)
LAYER_TOL = 0.3  # Å, atoms closer than this along the normal form one layer when describing terminations
CUT_TOL = 1e-3  # Å, tolerance when matching cut positions under symmetry operations
DIPOLE_TOL = 1e-3  # e/Å, dipole per area above which a slab counts as polar (as pymatgen's Slab.is_polar)
#: A slab spans at least this many interlayer periods along the normal (outermost atoms apart), so that one
#: period at its centre is bulk-like. Measured 2026-12-04: the 1.6- and 1.9-period slabs of Sr2TiO4 (001)
#: and MgTiO3 (001) had macroscopic averages varying by 1.15 and 0.86 eV within a period of the centre.
MIN_PERIODS = 2.0


@dataclass(frozen=True)
class SurfaceEntry:
    """One termination of one orientation of a bulk oxide (a slab, or a polar orientation's candidate).

    ``thickness`` is the distance between the outermost atomic planes, ``area`` the surface-cell area.
    For polar entries ``slab`` is None and ``n_atoms``/``thickness`` describe the rejected candidate.
    """

    id: str
    bulk_name: str
    formula: str
    miller_index: tuple[int, int, int]
    termination: int
    nonpolar: bool
    reason: str | None
    slab: Structure | None
    n_atoms: int
    thickness: float
    area: float
    spacegroup_number: int | None = None
    tasker_type: str | None = None  # "I" neutral layers, "II" charged layers without dipole, "III" dipole
    surface_layer: str | None = None  # outermost layer (within LAYER_TOL) per surface cell, top face
    dipole: float = 0.0  # e/Å: dipole normal to the surface per area of one repeat unit (0 when nonpolar)
    n_repeat_units: int = 0
    #: Thickened beyond ``min_thickness`` to span :data:`MIN_PERIODS` interlayer periods.
    period_thickened: bool = False

    @property
    def model_key(self) -> str:
        """What names this slab model in job uuids: the surface id, plus a mark for a slab thickened by the
        period rule (2026-12-04), so that a store holding the thinner model of that surface computes the
        new one instead of skipping it; every other surface keeps the uuids it had."""
        return f"{self.id}|{MIN_PERIODS:g}-periods" if self.period_thickened else self.id

    def to_dict(self, with_structure: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; ``with_structure`` adds the slab as a pymatgen dict (``structure``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "bulk_name": self.bulk_name,
            "formula": self.formula,
            "spacegroup_number": self.spacegroup_number,
            "miller_index": list(self.miller_index),
            "termination": self.termination,
            "nonpolar": self.nonpolar,
            "reason": self.reason,
            "tasker_type": self.tasker_type,
            "surface_layer": self.surface_layer,
            "dipole": self.dipole,
            "n_atoms": self.n_atoms,
            "n_repeat_units": self.n_repeat_units,
            "period_thickened": self.period_thickened,
            "thickness": self.thickness,
            "area": self.area,
        }
        if with_structure:
            out["structure"] = self.slab.as_dict() if self.slab is not None else None
        return out


@dataclass(frozen=True)
class _PreparedBulk:
    """The idealised bulk (conventional frame) and everything needed for every orientation."""

    name: str
    formula: str
    spacegroup_number: int
    canonical: str  # rounded, order-independent text of the conventional cell (hashed into ids)
    lattice: np.ndarray  # conventional lattice, Cartesian rows
    primitive_in_conv: np.ndarray  # rows: primitive translations in conventional fractional coordinates
    symbols: list[str]  # primitive cell
    cart_coords: np.ndarray  # primitive cell, Cartesian
    charges: np.ndarray  # formal charge per primitive-cell site
    conv_rotations: np.ndarray  # (m, 3, 3) point-group operations, conventional fractional basis
    cart_rotations: np.ndarray  # (m, 3, 3) the same operations in Cartesian coordinates
    cart_translations: np.ndarray  # (m, 3) their translations (modulo the lattice), Cartesian


@dataclass(frozen=True)
class _OrientedCell:
    """A primitive bulk cell with a, b in the (hkl) plane; c' spans one repeat unit along the normal."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    normal: np.ndarray
    spacing: float  # height of one repeat unit along the normal (Å)
    symbols: list[str]
    frac: np.ndarray  # (n, 3) in the a, b, c' basis, wrapped to [0, 1)
    charges: np.ndarray


@dataclass(frozen=True)
class _Termination:
    cut: float  # fractional height (c' units) of the cut, in the middle of a gap between planes
    gap: float  # Å
    symmetric: bool
    dipole: float  # e/Å per repeat unit
    bottom_layer: str
    top_layer: str
    charged_layers: bool


class _OneSearchAnalyzer(SpacegroupAnalyzer):
    """A SpacegroupAnalyzer that takes the refined cell from the symmetry dataset it already holds.

    spglib's dataset carries the standardised, idealised cell (``std_lattice``/``std_positions``/
    ``std_types``), identical to what ``spglib.refine_cell`` returns; pymatgen calls ``refine_cell``,
    a second full symmetry search that doubles the cost (~50 ms for a cubic F cell).
    """

    def get_refined_structure(self, keep_site_properties: bool = False) -> Structure:
        data = self.get_symmetry_dataset()
        species = [self._unique_species[i - 1] for i in data.std_types]
        return Structure(data.std_lattice, species, data.std_positions).get_sorted_structure()


def _prepare(bulk: BulkOxide | Structure, symprec: float) -> _PreparedBulk:
    if isinstance(bulk, BulkOxide):
        name, structure = bulk.name, bulk.structure
    elif isinstance(bulk, Structure):
        structure = validate_oxide(bulk, bulk.composition.reduced_formula)
        name = structure.composition.reduced_formula
    else:
        raise BandflowError(f"expected a BulkOxide or a pymatgen Structure, got {type(bulk).__name__}")
    charges_by_element = oxidation_states(structure)
    try:
        sga = _OneSearchAnalyzer(structure, symprec=symprec)
        conv = sga.get_conventional_standard_structure()  # idealised: positions exactly symmetric
        primitive_in_conv = np.asarray(sga.get_conventional_to_primitive_transformation_matrix(), dtype=float)
        number = sga.get_space_group_number()
    except Exception as exc:  # spglib failures surface as several exception types
        raise BandflowError(f"{name}: symmetry analysis failed: {exc}") from None

    # The primitive cell in the conventional frame: conventional sites folded into P·A_conv.
    conv_symbols = [site.specie.symbol for site in conv]
    prim_lattice = primitive_in_conv @ conv.lattice.matrix
    prim_frac = np.round(conv.cart_coords @ np.linalg.inv(prim_lattice), 8) % 1.0
    unique: dict[tuple, int] = {}
    for i, (symbol, f) in enumerate(zip(conv_symbols, prim_frac, strict=True)):
        unique.setdefault((symbol, *(np.round(f, 5) % 1.0)), i)
    keep = sorted(unique.values())
    if abs(len(keep) - len(conv) * np.linalg.det(primitive_in_conv)) > 1e-6:
        raise BandflowError(f"{name}: could not reduce the conventional cell to a primitive cell")
    symbols = [conv_symbols[i] for i in keep]
    numbers = [Element(sym).Z for sym in symbols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's notice about its error handling
        symmetry = spglib.get_symmetry((prim_lattice, prim_frac[keep], numbers), symprec=symprec)
    if symmetry is None:
        raise BandflowError(f"{name}: symmetry analysis of the primitive cell failed")
    # Row-vector convention r = f·A: a fractional operation f -> W f + t is r -> (A^T W A^-T) r + t·A.
    prim_rot = symmetry["rotations"].astype(float)
    transposed, inv_transposed = prim_lattice.T, np.linalg.inv(prim_lattice).T
    cart_rotations = np.einsum("ij,mjk,kl->mil", transposed, prim_rot, inv_transposed)
    conv_rotations = np.rint(np.einsum("ij,mjk,kl->mil", primitive_in_conv.T, prim_rot,
                                       np.linalg.inv(primitive_in_conv.T))).astype(int)

    lattice = conv.lattice
    sites = sorted(
        (sym, *(round(float(x), 4) % 1.0 + 0.0 for x in f)) for sym, f in zip(conv_symbols, conv.frac_coords, strict=True)
    )
    canonical = json.dumps(
        {"spacegroup": number, "abc": [round(x, 4) for x in lattice.abc],
         "angles": [round(x, 4) for x in lattice.angles], "sites": sites},
        separators=(",", ":"),
    )
    return _PreparedBulk(
        name=name,
        formula=structure.composition.reduced_formula,
        spacegroup_number=number,
        canonical=canonical,
        lattice=lattice.matrix.copy(),
        primitive_in_conv=primitive_in_conv,
        symbols=symbols,
        cart_coords=prim_frac[keep] @ prim_lattice,
        charges=np.array([charges_by_element[sym] for sym in symbols], dtype=float),
        conv_rotations=conv_rotations,
        cart_rotations=cart_rotations,
        cart_translations=symmetry["translations"] @ prim_lattice,
    )


def _miller_key(hkl: tuple[int, int, int]) -> tuple[int, ...]:
    """pymatgen's ordering: low max index first, then low index sum, then larger h, k, l first."""
    h, k, l = hkl  # noqa: E741
    return (max(abs(h), abs(k), abs(l)), abs(h) + abs(k) + abs(l), -h, -k, -l)


def distinct_miller_indices(rotations: Sequence[np.ndarray], max_index: int) -> list[tuple[int, int, int]]:
    """Miller indices up to ``max_index`` that are distinct under the crystal's Laue group.

    ``rotations`` are the point-group operations in the fractional basis of the cell the indices refer
    to. Written here instead of pymatgen's ``get_symmetrically_distinct_miller_indices`` because that
    uses the lattice's (holohedral) symmetry and so merges orientations that the crystal keeps distinct.
    (hkl) and (-h-k-l) give the same slab, so the inversion is always added.
    """
    # A plane h·f = const maps under f -> W f to (h W^-1)·f = const.
    inverse_rotations = np.rint(np.linalg.inv(np.asarray(rotations, dtype=float))).astype(int)
    seen: set[tuple[int, ...]] = set()
    distinct: list[tuple[int, int, int]] = []
    indices = range(-max_index, max_index + 1)
    for hkl in sorted(itertools.product(indices, indices, indices), key=_miller_key):
        if math.gcd(*hkl) != 1 or next(i for i in hkl if i != 0) < 0 or hkl in seen:
            continue
        distinct.append(hkl)
        images = np.einsum("j,mjk->mk", np.asarray(hkl), inverse_rotations)
        seen.update(map(tuple, images.tolist()))
        seen.update(map(tuple, (-images).tolist()))
    return distinct


def _unimodular_completion(h: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer vectors u1, u2, u3 with u1·h = u2·h = 0, u3·h = 1 and det = ±1 (h coprime).

    Euclid's algorithm as row operations on the identity; u1, u2 then span every lattice vector in the
    plane, so the cell they make with u3 is primitive.
    """
    rows = [np.eye(3, dtype=np.int64)[i] for i in range(3)]
    v = [int(x) for x in h]
    while sum(1 for x in v if x != 0) > 1:
        pivot = min((i for i in range(3) if v[i] != 0), key=lambda i: (abs(v[i]), i))
        for j in range(3):
            if j != pivot and v[j] != 0:
                q = v[j] // v[pivot]
                v[j] -= q * v[pivot]
                rows[j] = rows[j] - q * rows[pivot]
    last = next(i for i in range(3) if v[i] != 0)
    in_plane = [rows[i] for i in range(3) if i != last]
    return in_plane[0], in_plane[1], rows[last] * v[last]  # v[last] = ±1 because h is coprime


def _canonical_plane_basis(
    u1: np.ndarray, u2: np.ndarray, basis: np.ndarray, normal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest in-plane basis (Lagrange-Gauss), right-handed about ``normal``, gamma >= 90°.

    Comparisons use a tolerance and ties go to the smaller integer coefficients, so the choice does not
    depend on floating-point noise (e.g. 60° vs 120° for hexagonal nets).
    """

    def cart(u: np.ndarray) -> np.ndarray:
        return u @ basis

    eps = 1e-8 * float(np.dot(cart(u1), cart(u1)) + np.dot(cart(u2), cart(u2)))
    while True:
        if np.dot(cart(u2), cart(u2)) < np.dot(cart(u1), cart(u1)) - eps:
            u1, u2 = u2, u1
        mu = math.floor(np.dot(cart(u1), cart(u2)) / np.dot(cart(u1), cart(u1)) + 0.5 - 1e-9)
        if mu == 0:
            break
        u2 = u2 - mu * u1
    candidates = []
    for p, q in ((u1, u2), (u2, u1)):
        for sp in (1, -1):
            for sq in (1, -1):
                a, b = sp * p, sq * q
                ca, cb = cart(a), cart(b)
                if np.dot(np.cross(ca, cb), normal) <= 0 or np.dot(ca, cb) > eps:
                    continue
                key = (round(float(np.linalg.norm(ca)), 6), round(float(np.linalg.norm(cb)), 6),
                       tuple(-int(x) for x in a), tuple(-int(x) for x in b))
                candidates.append((key, a, b))
    _, a, b = min(candidates, key=lambda item: item[0])
    return a, b


def _oriented_cell(bulk: _PreparedBulk, hkl: tuple[int, int, int]) -> _OrientedCell:
    primitive = bulk.primitive_in_conv @ bulk.lattice  # Cartesian rows of the primitive lattice
    # The conventional Miller index in the primitive basis: h_p = P h, scaled to coprime integers.
    h_prim = bulk.primitive_in_conv @ np.asarray(hkl, dtype=float)
    h_prim = np.rint(h_prim * 6).astype(np.int64)  # centring denominators are 2 or 3
    h_prim //= math.gcd(*(int(x) for x in h_prim))
    normal = np.asarray(hkl, dtype=float) @ np.linalg.inv(bulk.lattice).T  # reciprocal vector of hkl
    normal /= np.linalg.norm(normal)

    u1, u2, u3 = _unimodular_completion(h_prim)
    ua, ub = _canonical_plane_basis(u1, u2, primitive, normal)
    a, b, c = ua @ primitive, ub @ primitive, u3 @ primitive
    spacing = float(np.dot(c, normal))
    if spacing <= 0:  # impossible when u3·h_p = 1; guards the algebra above
        raise RuntimeError(f"internal error: stacking vector of {hkl} points against the surface normal")

    frac = np.round(bulk.cart_coords @ np.linalg.inv(np.array([a, b, c])), 10) % 1.0
    return _OrientedCell(
        a=a, b=b, c=c, normal=normal, spacing=spacing,
        symbols=bulk.symbols, frac=frac, charges=bulk.charges,
    )


def _layer_formula(symbols: Sequence[str]) -> str:
    """Composition of one plane per surface cell, cations first: "Ti2O2", "O", "SrO"."""
    counts = {s: symbols.count(s) for s in set(symbols)}
    ordered = sorted(counts, key=lambda s: (Element(s).X, s))
    return "".join(f"{s}{'' if counts[s] == 1 else counts[s]}" for s in ordered)


def _terminations(bulk: _PreparedBulk, cell: _OrientedCell, plane_tol: float) -> list[_Termination]:
    """Candidate cuts (gaps between planes), merged when a bulk symmetry maps one onto another.

    A bulk operation that maps the normal n to sigma*n (sigma = ±1) moves a cut at height z to
    sigma*z + n·t. A slab of whole repeat units cut at z is symmetric iff an operation with sigma = -1
    maps the cut onto itself (modulo the repeat unit): then it maps the slab's atoms onto themselves
    upside down. This is exact and independent of the slab thickness, unlike a tolerance-based
    symmetry search on each built slab.
    """
    d = cell.spacing
    heights = cell.frac[:, 2]
    order = np.argsort(heights, kind="stable")
    z = heights[order]
    gaps = np.diff(np.append(z, z[0] + 1.0)) * d  # gap above each atom, the last one wraps around
    cut_after = [i for i in range(len(z)) if gaps[i] > plane_tol]
    cuts = [((z[i] + gaps[i] / d / 2) % 1.0, float(gaps[i])) for i in cut_after]

    # sigma = ±1 for operations mapping n to ±n; the others do not preserve the set of planes.
    sigma = np.rint(np.einsum("mji,j,i->m", bulk.cart_rotations, cell.normal, cell.normal) * 1e6) / 1e6
    offsets = (bulk.cart_translations @ cell.normal) / d
    shifts = np.unique(np.round(offsets[sigma == 1] % 1.0, 9))
    flips = np.unique(np.round(offsets[sigma == -1] % 1.0, 9))

    def same(x: float, y: float) -> bool:
        delta = (x - y) % 1.0
        return min(delta, 1.0 - delta) * d < CUT_TOL

    def find(x: float) -> int | None:
        return next((j for j, (s, _) in enumerate(cuts) if same(s, x)), None)

    area = float(np.linalg.norm(np.cross(cell.a, cell.b)))
    terminations, taken = [], set()
    for i, (s, gap) in enumerate(cuts):
        if i in taken:
            continue  # a symmetry-equivalent cut was already taken
        # The operations form a group, so the images of a cut are exactly its equivalence class.
        taken |= {find(s + offset) for offset in shifts} | {find(-s + offset) for offset in flips}
        rel = (heights - s) % 1.0  # heights within the repeat unit that starts at this cut
        order = np.argsort(rel, kind="stable")
        layer = np.empty(len(rel), dtype=int)  # layer number from the bottom face up (rumpling merged)
        layer[order] = np.concatenate(([0], np.cumsum(np.diff(rel[order]) * d > max(plane_tol, LAYER_TOL))))
        layer_charges = np.bincount(layer, weights=cell.charges)
        bottom = np.flatnonzero(rel <= rel.min() + LAYER_TOL / d)  # outermost atoms of each face
        top = np.flatnonzero(rel >= rel.max() - LAYER_TOL / d)
        terminations.append(
            _Termination(
                cut=s,
                gap=gap,
                symmetric=any(same(-s + offset, s) for offset in flips),
                dipole=float(np.dot(cell.charges, rel)) * d / area,
                bottom_layer=_layer_formula([cell.symbols[k] for k in bottom]),
                top_layer=_layer_formula([cell.symbols[k] for k in top]),
                charged_layers=bool(np.any(np.abs(layer_charges) > 1e-6)),
            )
        )
    terminations.sort(key=lambda t: (-round(t.gap, 3), round(t.cut, 6)))
    return terminations


def _stacking_period(cell: _OrientedCell, cut: float, vacuum: float) -> float | None:
    """The interlayer period along the normal (Å): the repeat of a three-unit slab's planes, which may be a
    fraction of the repeat unit (a centred or screw-related stacking). None if none is found."""
    from bandflow.potential import IDEAL_PERIOD_TOLERANCE, detect_period  # the rule of the analysis

    probe = _build_slab(cell, cut, 2 * cell.spacing + 1e-6, vacuum)
    try:
        return detect_period(probe, tolerance=IDEAL_PERIOD_TOLERANCE)
    except BandflowError:
        return None


def _slab_thickness(cell: _OrientedCell, cut: float, min_thickness: float, vacuum: float) -> float:
    """``min_thickness``, raised to :data:`MIN_PERIODS` interlayer periods where those are longer."""
    period = _stacking_period(cell, cut, vacuum)
    return max(min_thickness, MIN_PERIODS * period) if period else min_thickness


def _slab_layout(cell: _OrientedCell, cut: float, min_thickness: float) -> tuple[np.ndarray, int, float]:
    """Heights within one repeat unit above the cut, the number of repeat units and the slab thickness."""
    rel = (cell.frac[:, 2] - cut) % 1.0
    extent = float(rel.max() - rel.min()) * cell.spacing
    n_units = max(1, math.ceil((min_thickness - extent) / cell.spacing - 1e-9) + 1)
    return rel, n_units, extent + (n_units - 1) * cell.spacing


def _build_slab(cell: _OrientedCell, cut: float, min_thickness: float, vacuum: float) -> Structure:
    rel, n_units, thickness = _slab_layout(cell, cut, min_thickness)
    # c' = alpha a + beta b + spacing n: stacking a repeat unit shifts atoms in plane by (alpha, beta).
    in_plane = cell.c - cell.spacing * cell.normal
    alpha, beta = np.linalg.lstsq(np.array([cell.a, cell.b]).T, in_plane, rcond=None)[0]
    layers = rel[None, :] + np.arange(n_units)[:, None]  # (n_units, n_atoms) in repeat units
    x = (cell.frac[None, :, 0] + layers * alpha).ravel()
    y = (cell.frac[None, :, 1] + layers * beta).ravel()
    heights = (layers * cell.spacing).ravel()
    symbols = cell.symbols * n_units

    length_a = round(float(np.linalg.norm(cell.a)), DECIMALS)
    length_b = round(float(np.linalg.norm(cell.b)), DECIMALS)
    cos_gamma = np.dot(cell.a, cell.b) / (np.linalg.norm(cell.a) * np.linalg.norm(cell.b))
    gamma = math.radians(round(math.degrees(math.acos(max(-1.0, min(1.0, cos_gamma)))), DECIMALS))
    length_c = round(thickness + vacuum, DECIMALS)
    # Built by hand rather than Lattice.from_parameters so that the zeros are exact (c ⟂ a, b exactly).
    b_x, b_y = (round(length_b * f(gamma), 12) + 0.0 for f in (math.cos, math.sin))  # cos 90° -> exactly 0
    lattice = Lattice([[length_a, 0.0, 0.0], [b_x, b_y, 0.0], [0.0, 0.0, length_c]])

    frac = np.column_stack((x, y, (heights - heights.min() + vacuum / 2) / length_c))
    frac = np.round(frac, DECIMALS)
    frac[:, :2] %= 1.0
    frac = np.round(frac, DECIMALS) + 0.0  # 1.0 -> 0.0 and -0.0 -> 0.0 after wrapping
    # Species in blocks (by electronegativity, as Structure.get_sorted_structure), each bottom to top:
    # one block per element keeps POSCAR/POTCAR and CP2K kinds simple.
    rank = {sym: (Element(sym).X, sym) for sym in set(symbols)}
    order = sorted(range(len(symbols)), key=lambda i: (rank[symbols[i]], frac[i, 2], frac[i, 0], frac[i, 1]))
    return Structure(lattice, [symbols[i] for i in order], frac[order])


def _miller_label(hkl: tuple[int, int, int]) -> str:
    return "".join(str(i) if i >= 0 else f"m{-i}" for i in hkl)


def surface_id(bulk_canonical: str, formula: str, spacegroup: int, hkl: tuple[int, int, int],
               termination: int, nonpolar: bool, layers: str) -> str:
    """``<formula>-<spacegroup>-<hkl>-t<termination>-<8 hex>``; the hash covers the rounded bulk cell,
    the Miller index, the termination index and its outermost layers (sha256, stable across machines)."""
    payload = json.dumps(
        {"bulk": bulk_canonical, "hkl": list(hkl), "termination": termination, "nonpolar": nonpolar,
         "layers": layers},
        sort_keys=True, separators=(",", ":"),
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:8]
    return f"{formula}-{spacegroup}-{_miller_label(hkl)}-t{termination}-{digest}"


def _validate_parameters(max_index: int, min_thickness: float, vacuum: float) -> None:
    if isinstance(max_index, bool) or not isinstance(max_index, numbers.Integral) or max_index < 1:
        raise BandflowError(f"max index must be a positive integer (1 gives (100), (110), (111)...), got {max_index}")
    if max_index > 6:
        raise BandflowError(f"max index {max_index} is too large (at most 6)")
    if not min_thickness > 0 or not math.isfinite(min_thickness):
        raise BandflowError(f"minimum slab thickness must be a positive number of Å, got {min_thickness}")
    if not vacuum > 0 or not math.isfinite(vacuum):
        raise BandflowError(f"vacuum must be a positive number of Å, got {vacuum}")


def enumerate_surfaces(
    bulk: BulkOxide | Structure,
    max_index: int = 1,
    min_thickness: float = 10.0,
    vacuum: float = 15.0,
    plane_tol: float = PLANE_TOL,
    symprec: float = BULK_SYMPREC,
) -> list[SurfaceEntry]:
    """All nonpolar terminations of every distinct orientation up to ``max_index``, plus one polar
    entry per termination of each orientation that has no nonpolar termination.

    Orientations come in pymatgen's order ((100), (110), (111), ...); within an orientation terminations
    are numbered from 0, widest gap between the cut planes first. Polar entries have ``slab=None``.
    """
    _validate_parameters(max_index, min_thickness, vacuum)
    max_index = int(max_index)
    prepared = _prepare(bulk, symprec)
    entries: list[SurfaceEntry] = []
    for hkl in distinct_miller_indices(prepared.conv_rotations, max_index):
        cell = _oriented_cell(prepared, hkl)
        area = round(float(np.linalg.norm(np.cross(cell.a, cell.b))), 4)
        terminations = _terminations(prepared, cell, plane_tol)
        accepted = [t for t in terminations if t.symmetric and abs(t.dipole) < DIPOLE_TOL]
        for index, term in enumerate(accepted or terminations):
            nonpolar = bool(accepted)
            least = _slab_thickness(cell, term.cut, min_thickness, vacuum) if nonpolar else min_thickness
            _, n_units, thickness = _slab_layout(cell, term.cut, least)
            thickened = n_units > _slab_layout(cell, term.cut, min_thickness)[1]
            slab = _build_slab(cell, term.cut, least, vacuum) if nonpolar else None
            if nonpolar:
                reason, tasker = None, "II" if term.charged_layers else "I"
            elif abs(term.dipole) >= DIPOLE_TOL:
                reason = (f"polar (Tasker III): dipole {term.dipole:+.3f} e/Å per repeat unit normal to the "
                          f"surface; faces {term.bottom_layer} (bottom) and {term.top_layer} (top)")
                tasker = "III"
            else:
                reason = (f"faces not equivalent: {term.bottom_layer} (bottom) and {term.top_layer} (top); "
                          "no stoichiometric slab has both faces alike (zero dipole)")
                tasker = None
            layers = f"{term.bottom_layer}|{term.top_layer}"
            entries.append(
                SurfaceEntry(
                    id=surface_id(prepared.canonical, prepared.formula, prepared.spacegroup_number, hkl, index,
                                  nonpolar, layers),
                    bulk_name=prepared.name,
                    formula=prepared.formula,
                    miller_index=hkl,
                    termination=index,
                    nonpolar=nonpolar,
                    reason=reason,
                    slab=slab,
                    n_atoms=len(cell.symbols) * n_units,
                    thickness=round(thickness, 4),
                    area=area,
                    spacegroup_number=prepared.spacegroup_number,
                    tasker_type=tasker,
                    surface_layer=term.top_layer,
                    dipole=0.0 if nonpolar else round(term.dipole, 6),
                    n_repeat_units=n_units,
                    period_thickened=thickened,
                )
            )
    return entries


def nonpolar_surfaces(
    bulk: BulkOxide | Structure,
    max_index: int = 1,
    min_thickness: float = 10.0,
    vacuum: float = 15.0,
    plane_tol: float = PLANE_TOL,
    symprec: float = BULK_SYMPREC,
) -> list[SurfaceEntry]:
    """Only the nonpolar entries of :func:`enumerate_surfaces`."""
    entries = enumerate_surfaces(bulk, max_index, min_thickness, vacuum, plane_tol=plane_tol, symprec=symprec)
    return [e for e in entries if e.nonpolar]


def write_surfaces(entries: Sequence[SurfaceEntry], directory: str | Path) -> list[Path]:
    """Write ``<id>.cif`` and ``<id>.POSCAR`` for each nonpolar entry plus ``surfaces.json`` (all entries).

    Everything is written to a temporary folder first and moved into ``directory`` only when complete,
    so a failure leaves nothing behind. Existing files of the same name are replaced.
    """
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise BandflowError(f"{directory} exists and is not a folder")
    parent = directory if directory.exists() else directory.parent
    if not parent.exists():
        raise BandflowError(f"cannot write to {directory}: {parent} does not exist")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".bandflow-surfaces-", dir=parent))
    except OSError as exc:
        raise BandflowError(f"cannot write to {directory}: {exc.strerror}") from None
    try:
        names = []
        for entry in entries:
            if entry.slab is None:
                continue
            entry.slab.to(filename=str(staging / f"{entry.id}.cif"))
            Poscar(entry.slab, comment=f"{entry.id} {entry.formula} {entry.miller_index}").write_file(
                staging / f"{entry.id}.POSCAR"
            )
            names += [f"{entry.id}.cif", f"{entry.id}.POSCAR"]
        (staging / "surfaces.json").write_text(json.dumps([e.to_dict() for e in entries], indent=2) + "\n")
        names.append("surfaces.json")
        if not directory.exists():
            os.replace(staging, directory)
            return [directory / n for n in names]
        for n in names:
            os.replace(staging / n, directory / n)
        return [directory / n for n in names]
    except OSError as exc:
        raise BandflowError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
