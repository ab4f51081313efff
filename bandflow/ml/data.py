"""Training data: slab records, the cached descriptor inputs of many slabs, batches and train/val/test splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Structure

from bandflow.errors import BandflowError
from bandflow.ml.descriptor import SoapSettings, density_coefficients, element_pair_spectra
from bandflow.ml.neighbours import slab_geometry
from bandflow.ml.runtime import torch_threads


@dataclass(frozen=True)
class SlabRecord:
    """One unrelaxed slab with its targets (eV; None when unknown) and the bulk compound it was cut from."""

    structure: Structure
    ip: float | None
    ea: float | None
    group: str
    id: str = ""


@dataclass(frozen=True)
class SlabBatch:
    """The cached inputs of a few slabs, atoms and rows renumbered from 0 (see ``SlabFeatures``); rows
    sorted by element pair."""

    spectra: torch.Tensor
    row_atom: torch.Tensor
    row_elements: torch.Tensor
    atom_element: torch.Tensor
    atom_depth: torch.Tensor
    atom_slab: torch.Tensor
    n_slabs: int

    @property
    def n_atoms(self) -> int:
        return len(self.atom_element)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> torch.Tensor:
    """Concatenation of arange(start, start + count) for each pair."""
    counts_t = torch.as_tensor(counts, dtype=torch.int64)
    total = int(counts_t.sum())
    shift = torch.as_tensor(starts, dtype=torch.int64) - (torch.cumsum(counts_t, 0) - counts_t)
    return torch.repeat_interleave(shift, counts_t, output_size=total) + torch.arange(total)


@dataclass(frozen=True)
class SlabFeatures:
    """Everything about a set of slabs that does not depend on learnable weights, computed once.

    Per atom: element and depth below the nearer surface; per (atom, element pair of its slab) row: the
    element-pair power spectrum (``bandflow.ml.descriptor.PairSpectra``), of which L-SOAP and standard
    SOAP are fixed or learnable bilinear contractions.
    """

    settings: SoapSettings
    spectra: torch.Tensor
    row_atom: torch.Tensor
    row_elements: torch.Tensor
    atom_element: torch.Tensor
    atom_depth: torch.Tensor
    atom_offsets: np.ndarray
    row_offsets: np.ndarray

    @classmethod
    def from_structures(
        cls, structures: Sequence[Structure], settings: SoapSettings, dtype: torch.dtype = torch.float32
    ) -> SlabFeatures:
        if not structures:
            raise BandflowError("no slabs to featurise")
        geometries, depths = zip(*(slab_geometry(structure) for structure in structures), strict=True)
        with torch_threads(1):
            spectra = element_pair_spectra(density_coefficients(geometries, settings, dtype=dtype), settings.l_max)
        return cls(
            settings=settings,
            spectra=spectra.values,
            row_atom=spectra.row_atom,
            row_elements=spectra.row_elements,
            atom_element=torch.from_numpy(np.concatenate([g.numbers for g in geometries])),
            atom_depth=torch.from_numpy(np.concatenate(depths)).to(dtype),
            atom_offsets=spectra.atom_offsets,
            row_offsets=spectra.row_offsets,
        )

    def __len__(self) -> int:
        return len(self.atom_offsets) - 1

    @property
    def dtype(self) -> torch.dtype:
        return self.spectra.dtype

    def share_memory(self) -> None:
        """Move the tensors to shared memory (worker processes then read them without a copy)."""
        for tensor in (self.spectra, self.row_atom, self.row_elements, self.atom_element, self.atom_depth):
            tensor.share_memory_()

    def elements(self) -> list[int]:
        """Atomic numbers present in any slab."""
        return sorted(set(self.atom_element.tolist()))

    def batch(self, indices: Sequence[int] | np.ndarray) -> SlabBatch:
        """The slabs ``indices`` (in that order) as one batch."""
        indices = np.asarray(indices, dtype=np.int64)
        atom_counts = np.diff(self.atom_offsets)[indices]
        row_counts = np.diff(self.row_offsets)[indices]
        atoms = _ranges(self.atom_offsets[indices], atom_counts)
        rows = _ranges(self.row_offsets[indices], row_counts)
        atom_shift = torch.as_tensor(np.cumsum(atom_counts) - atom_counts - self.atom_offsets[indices])
        row_slab = torch.repeat_interleave(torch.arange(len(indices)), torch.as_tensor(row_counts))
        # rows grouped by element pair: the network applies one weight matrix per pair to a contiguous block
        pair_key = self.row_elements[rows, 0] * 256 + self.row_elements[rows, 1]
        by_pair = torch.argsort(pair_key, stable=True)
        rows, row_slab = rows[by_pair], row_slab[by_pair]
        return SlabBatch(
            spectra=self.spectra[rows],
            row_atom=self.row_atom[rows] + atom_shift[row_slab],
            row_elements=self.row_elements[rows],
            atom_element=self.atom_element[atoms],
            atom_depth=self.atom_depth[atoms],
            atom_slab=torch.repeat_interleave(torch.arange(len(indices)), torch.as_tensor(atom_counts)),
            n_slabs=len(indices),
        )


SPLIT_MODES = ("compound", "random")


def split_indices(
    groups: Sequence[str], mode: str = "compound", val_fraction: float = 0.15, test_fraction: float = 0.15,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train/val/test indices. ``compound``: every bulk compound (group) falls wholly into one subset, so
    the test measures prediction for compounds the model never saw; ``random``: slabs are shuffled freely.
    """
    if mode not in SPLIT_MODES:
        raise BandflowError(f"unknown split {mode!r}; choose one of {', '.join(SPLIT_MODES)}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise BandflowError(f"invalid split fractions val={val_fraction}, test={test_fraction}")
    n = len(groups)
    rng = np.random.default_rng(seed)
    if mode == "random":
        units = [np.array([i]) for i in rng.permutation(n)]
    else:
        labels = np.asarray(groups)
        unique = sorted(set(groups))
        units = [np.flatnonzero(labels == unique[i]) for i in rng.permutation(len(unique))]
    subsets: dict[str, list[int]] = {"test": [], "val": [], "train": []}
    position = 0
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        while fraction > 0 and position < len(units) and (not subsets[name] or len(subsets[name]) < fraction * n):
            subsets[name].extend(units[position].tolist())
            position += 1
    for unit in units[position:]:
        subsets["train"].extend(unit.tolist())
    if not subsets["train"]:
        what = "slabs" if mode == "random" else "bulk compounds"
        raise BandflowError(f"{len(units)} {what} are too few for a train/val/test split")
    return {name: np.sort(np.asarray(idx, dtype=np.int64)) for name, idx in subsets.items()}
