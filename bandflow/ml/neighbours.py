"""Periodic neighbour lists (vesin) and the slab geometry the descriptor needs (unwrapped positions, depth).

vesin is a cell-list neighbour search 30–50× faster than ASE's; it returns every pair (i, j, shift) within
the cutoff, periodic images of the same atom included, which is what a periodic SOAP needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin
from pymatgen.core import Structure

from bandflow.errors import BandflowError

SLAB_PBC = (True, True, False)
"""Slabs are periodic in the surface plane only: no atom sees another across the vacuum."""


@dataclass(frozen=True)
class Geometry:
    """Cartesian positions, cell, periodicity and atomic numbers of one structure (Å)."""

    positions: np.ndarray
    cell: np.ndarray
    pbc: tuple[bool, bool, bool]
    numbers: np.ndarray

    def __len__(self) -> int:
        return len(self.numbers)


@dataclass(frozen=True)
class NeighbourList:
    """All ordered pairs i → j within the cutoff; ``vectors`` = r_j − r_i (+ lattice shift)."""

    centers: np.ndarray
    neighbours: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)


def neighbour_list(geometry: Geometry, cutoff: float, n_threads: int = 1, full: bool = True) -> NeighbourList:
    """Periodic neighbour list of ``geometry``: both i → j and j → i if ``full``, else each pair once."""
    if len(geometry) == 0:
        raise BandflowError("cannot build a neighbour list for a structure without atoms")
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=full, sorted=full, n_threads=n_threads)
    centers, neighbours, vectors = calculator.compute(
        points=geometry.positions, box=geometry.cell, periodic=list(geometry.pbc), quantities="ijD"
    )
    return NeighbourList(centers.astype(np.int64), neighbours.astype(np.int64), vectors)


def bulk_geometry(structure: Structure) -> Geometry:
    """Geometry of a 3D-periodic structure."""
    return Geometry(structure.cart_coords, structure.lattice.matrix.copy(), (True, True, True),
                    np.asarray(structure.atomic_numbers, dtype=np.int64))


def slab_geometry(structure: Structure) -> tuple[Geometry, np.ndarray]:
    """Geometry of a slab (periodic in a, b; vacuum along c) and each atom's depth below the nearer surface (Å).

    The slab may be wrapped across the cell boundary along c: the largest gap in the fractional c
    coordinates is taken as the vacuum and the atoms are unwrapped so the slab is contiguous.
    """
    if len(structure) == 0:
        raise BandflowError("the slab has no atoms")
    lattice = structure.lattice.matrix
    normal = np.cross(lattice[0], lattice[1])
    normal /= np.linalg.norm(normal)
    c_height = float(lattice[2] @ normal)
    if c_height <= 0:
        raise BandflowError("slab lattice is not right-handed with c pointing out of the a-b plane")
    frac_c = np.mod(structure.frac_coords[:, 2], 1.0)
    order = np.sort(frac_c)
    gaps = np.diff(np.concatenate([order, order[:1] + 1.0]))
    vacuum_top = order[int(np.argmax(gaps))]  # last atom before the vacuum gap
    shifted = np.mod(frac_c - vacuum_top, 1.0)
    shifted[shifted == 0.0] = 1.0  # the atom at the gap edge is the slab's top, not its bottom
    frac = structure.frac_coords.copy()
    frac[:, 2] = shifted + vacuum_top
    frac[:, 2] -= np.floor(frac[:, 2].min())  # keep a slab that was not wrapped where it was
    positions = frac @ lattice
    heights = positions @ normal
    depth = np.minimum(heights.max() - heights, heights - heights.min())
    geometry = Geometry(positions, lattice.copy(), SLAB_PBC, np.asarray(structure.atomic_numbers, dtype=np.int64))
    return geometry, depth
