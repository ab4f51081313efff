"""What the cut of a slab leaves at its faces: the cation–oxygen bonds it breaks per area of a face, and how
far the outermost cation stands out of the outermost oxygen plane.

The broken-bond count tells a cut between molecular units (the Sb4O6 cages of senarmontite Sb2O3: none broken)
from one through them (several per nm²), which moves the surface dipole and so the IP. pymatgen's
local-environment classes give coordination numbers site by site at far higher cost and do not compare a
slab with its bulk, so the count here is a few lines over pymatgen's neighbour list. The cation height tells
the faces of one cut apart (MgSiO3 (001): Mg or Si outermost), whose outward cation layer lowers the IP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure

from bandflow.errors import BandflowError

#: A cation–O pair is a bond when it is at most this many times the cation's shortest O distance in the bulk.
BOND_TOLERANCE = 1.2


def bond_cutoffs(bulk: Structure, tolerance: float = BOND_TOLERANCE) -> dict[str, float]:
    """Per cation element of ``bulk``: ``tolerance`` × its shortest distance to an oxygen (Å)."""
    centres, neighbours, _, distances = bulk.get_neighbor_list(5.0)
    symbols = np.array([site.specie.symbol for site in bulk])
    shortest: dict[str, float] = {}
    for centre, neighbour, distance in zip(centres, neighbours, distances, strict=True):
        if symbols[centre] != "O" and symbols[neighbour] == "O":
            shortest[symbols[centre]] = min(shortest.get(symbols[centre], np.inf), float(distance))
    missing = sorted({s for s in symbols if s != "O"} - set(shortest))
    if missing:
        raise BandflowError(f"{bulk.composition.reduced_formula}: no oxygen within 5 Å of {', '.join(missing)}")
    return {element: tolerance * distance for element, distance in shortest.items()}


def count_bonds(structure: Structure, cutoffs: dict[str, float]) -> int:
    """Cation–oxygen pairs of ``structure`` within the cation's cutoff, periodic images included."""
    centres, neighbours, _, distances = structure.get_neighbor_list(max(cutoffs.values()))
    symbols = np.array([site.specie.symbol for site in structure])
    is_bond = (symbols[neighbours] == "O") & (symbols[centres] != "O")
    limit = np.array([cutoffs.get(s, 0.0) for s in symbols])[centres]
    return int(np.count_nonzero(is_bond & (distances <= limit)))


def broken_bond_densities(slabs: Sequence[Structure], bulk: Structure,
                          tolerance: float = BOND_TOLERANCE) -> list[float]:
    """Cation–O bonds per nm² that cutting each slab out of ``bulk`` broke on each of its two faces (the
    bulk's cutoffs and bonds per atom counted once for all of them).

    Each slab must be stoichiometric (its bonds are compared with the bulk's per atom) and have its surface
    normal along c with the vacuum inside the cell, as bandflow's slabs do.
    """
    formula = bulk.composition.reduced_formula
    for slab in slabs:
        if slab.composition.reduced_formula != formula:
            raise BandflowError(f"slab {slab.composition.reduced_formula} is not stoichiometric with its bulk "
                                f"{formula}: broken bonds are counted per bulk atom")
    cutoffs = bond_cutoffs(bulk, tolerance)
    per_atom = count_bonds(bulk, cutoffs) / len(bulk)
    densities = []
    for slab in slabs:
        broken = per_atom * len(slab) - count_bonds(slab, cutoffs)
        a, b = slab.lattice.matrix[:2]
        face_nm2 = float(np.linalg.norm(np.cross(a, b))) / 100.0
        densities.append(round(broken, 9) / (2.0 * face_nm2))  # the bulk count per atom is a float
    return densities


def broken_bond_density(slab: Structure, bulk: Structure, tolerance: float = BOND_TOLERANCE) -> float:
    """:func:`broken_bond_densities` of one slab."""
    return broken_bond_densities([slab], bulk, tolerance)[0]


def outermost_cation_height(slab: Structure) -> float:
    """How far the outermost cation stands above the outermost oxygen along the surface normal (Å), the mean
    of the two faces: positive where a cation layer is outermost, negative where oxygen is.

    The slab may wrap across the cell's c boundary; its vacuum is the widest gap between atoms along c.
    """
    oxygen = np.array([site.specie.symbol == "O" for site in slab])
    if not oxygen.any() or oxygen.all():
        raise BandflowError(f"slab {slab.composition.reduced_formula} has no cation or no oxygen to compare")
    a, b, c = slab.lattice.matrix
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    fractional = np.mod(slab.frac_coords[:, 2], 1.0)
    ordered = np.sort(fractional)
    gaps = np.diff(np.append(ordered, ordered[0] + 1.0))
    start = ordered[(int(np.argmax(gaps)) + 1) % len(ordered)]  # the lowest atom above the vacuum
    heights = np.mod(fractional - start, 1.0) * float(np.dot(c, normal))
    top = heights[~oxygen].max() - heights[oxygen].max()
    bottom = heights[oxygen].min() - heights[~oxygen].min()
    return float((top + bottom) / 2.0)
