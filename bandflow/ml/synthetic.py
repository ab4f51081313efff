"""Synthetic band edges for tests and benchmarks: a known function of each slab's local environments.

Not physics: a stand-in target that a model can only fit by learning what the real one depends on
(element, coordination, depth below the surface), so training, splits and the attention can be tested
without DFT. The model never sees this function, only slabs and the numbers it returns.

    IP  = 5 + 0.5 χ̄_cations + Σ_i w_i u_i / Σ_i w_i,   w_i = exp(−depth_i / 1.5 Å)
          u_i = 0.35 ΔCN_i (oxygen),  0.9 (χ_i − 1.5) − 0.2 ΔCN_i (cations)
    gap = 1 + 1.6 (χ̄_cations − 0.8) − 0.25 Σ_i w_i ΔCN_i / Σ_i w_i
    EA  = IP − gap

ΔCN_i is the number of cation–oxygen bonds atom i lost relative to the most coordinated atom of its
element in the slab; bonds are shorter than 1.25 × the sum of the atomic radii.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Element, Structure

from bandflow.bulk import load_bulk
from bandflow.ml.data import SlabRecord
from bandflow.ml.neighbours import neighbour_list, slab_geometry
from bandflow.surfaces import nonpolar_surfaces

SMALL_BINARY_OXIDES = (
    "MgO", "CaO", "SrO", "BaO", "CdO", "ZnO", "BeO", "TiO2-rutile", "SnO2", "GeO2", "CeO2", "ThO2", "Li2O",
)
"""Binary oxides of the bulk library with small surface cells (fast tests)."""

_BOND_SCALE = 1.25


def coordination_numbers(slab: Structure) -> np.ndarray:
    """Cation–oxygen bonds of every atom of the slab."""
    geometry, _ = slab_geometry(slab)
    radii = np.array([Element.from_Z(int(z)).atomic_radius or 1.5 for z in geometry.numbers], dtype=float)
    pairs = neighbour_list(geometry, cutoff=_BOND_SCALE * 2 * radii.max())
    i, j = pairs.centers, pairs.neighbours
    distance = np.linalg.norm(pairs.vectors, axis=1)
    is_oxygen = geometry.numbers == 8
    bonded = (distance < _BOND_SCALE * (radii[i] + radii[j])) & (is_oxygen[i] != is_oxygen[j])
    return np.bincount(i[bonded], minlength=len(geometry)).astype(float)


def synthetic_band_edges(slab: Structure) -> tuple[float, float]:
    """(IP, EA) in eV of the synthetic function above."""
    geometry, depth = slab_geometry(slab)
    numbers = geometry.numbers
    cn = coordination_numbers(slab)
    lost = np.zeros_like(cn)
    for z in np.unique(numbers):
        mask = numbers == z
        lost[mask] = cn[mask].max() - cn[mask]
    chi = np.array([Element.from_Z(int(z)).X for z in numbers])
    is_oxygen = numbers == 8
    weight = np.exp(-depth / 1.5)
    per_atom = np.where(is_oxygen, 0.35 * lost, 0.9 * (chi - 1.5) - 0.2 * lost)
    cation_chi = chi[~is_oxygen].mean()
    ip = 5.0 + 0.5 * cation_chi + float((weight * per_atom).sum() / weight.sum())
    gap = 1.0 + 1.6 * (cation_chi - 0.8) - 0.25 * float((weight * lost).sum() / weight.sum())
    return ip, ip - gap


def perturbed(slab: Structure, rng: np.random.Generator, strain: float = 0.02, rattle: float = 0.03) -> Structure:
    """A copy with a random in-plane strain (up to ``strain``) and atoms displaced by up to ``rattle`` Å."""
    matrix = slab.lattice.matrix.copy()
    matrix[:2] *= 1.0 + rng.uniform(-strain, strain, size=(2, 1))
    cart = slab.frac_coords @ matrix + rng.uniform(-rattle, rattle, size=(len(slab), 3))
    return Structure(matrix, slab.species, cart, coords_are_cartesian=True)


def synthetic_records(
    bulk_names: Sequence[str] = SMALL_BINARY_OXIDES,
    n_variants: int = 2,
    min_thickness: float = 8.0,
    vacuum: float = 10.0,
    min_atoms: int = 0,
    seed: int = 0,
) -> list[SlabRecord]:
    """Nonpolar (hkl ≤ 1) slabs of the library bulks, each as ``n_variants`` perturbed copies (in-plane
    supercells up to ``min_atoms`` atoms), with synthetic IP/EA; grouped by bulk compound."""
    rng = np.random.default_rng(seed)
    records = []
    for name in bulk_names:
        for entry in nonpolar_surfaces(load_bulk(name), max_index=1, min_thickness=min_thickness, vacuum=vacuum):
            base = entry.slab.copy()
            while len(base) < min_atoms:
                base.make_supercell([2, 1, 1] if base.lattice.a <= base.lattice.b else [1, 2, 1])
            for variant in range(n_variants):
                slab = perturbed(base, rng)
                ip, ea = synthetic_band_edges(slab)
                records.append(SlabRecord(slab, ip, ea, group=name, id=f"{entry.id}#{variant}"))
    return records
