"""Elemental property vectors (pymatgen data): the input of L-SOAP's learnable element embedding.

An element the model never saw still has a sensible embedding because it is a learnable map of these
properties, not a free lookup-table entry.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
from pymatgen.core import Element

from bandflow.errors import BandflowError

PROPERTY_NAMES = (
    "electronegativity",
    "atomic_radius",
    "period",
    "group",
    "valence_electrons",
    "first_ionization_energy",
    "electron_affinity",
    "mendeleev_number",
    "block_s",
    "block_p",
    "block_d",
    "block_f",
)
MAX_ATOMIC_NUMBER = 103


def _raw_properties(z: int) -> list[float]:
    element = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ionization = element.ionization_energies[0] if element.ionization_energies else None
        values = [
            element.X,
            element.atomic_radius,
            element.row,
            element.group,
            element.group if element.group <= 12 else element.group - 10,
            ionization,
            element.electron_affinity,
            element.mendeleev_no,
        ]
        block = element.block
    numeric = [np.nan if v is None else float(v) for v in values]
    return numeric + [float(block == b) for b in "spdf"]


@cache
def _property_table() -> np.ndarray:
    """Standardised properties of Z = 1..103 (row Z−1); missing values are the column mean."""
    table = np.array([_raw_properties(z) for z in range(1, MAX_ATOMIC_NUMBER + 1)], dtype=np.float64)
    mean = np.nanmean(table, axis=0)
    table = np.where(np.isnan(table), mean, table)
    std = table.std(axis=0)
    return (table - table.mean(axis=0)) / np.where(std > 0, std, 1.0)


def element_properties(atomic_numbers: np.ndarray | list[int]) -> np.ndarray:
    """(len(atomic_numbers), len(PROPERTY_NAMES)) standardised property vectors."""
    numbers = np.asarray(atomic_numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 1 or numbers.max() > MAX_ATOMIC_NUMBER):
        raise BandflowError(f"atomic numbers must be between 1 and {MAX_ATOMIC_NUMBER}, got {sorted(set(numbers))}")
    return _property_table()[numbers - 1]
