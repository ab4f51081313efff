"""How long a surface takes: a power law in the slab's atom count, fitted to a campaign's timed surfaces.

The slab steps grow faster than linearly with the slab (on the reference campaigns atoms^1.5 to
atoms^2.5: a 60-atom slab takes 5–15× a 20-atom one), and the surfaces left in a campaign are rarely the size of those
done first, so a flat mean per surface misjudges the time left. No kept library estimates this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: fewer timed surfaces than this, or atom counts spanning less than :data:`MIN_SIZE_RATIO`, fit no exponent
MIN_SAMPLES = 5
MIN_SIZE_RATIO = 1.5
#: the exponent is kept within these bounds (timings beside other runs are noisy)
EXPONENT_BOUNDS = (0.0, 3.0)


@dataclass(frozen=True)
class SizeScaling:
    """``seconds(n) = coefficient × n ** exponent``, fitted to ``n_timed`` surfaces whose total it keeps."""

    exponent: float
    coefficient: float
    n_timed: int

    def seconds(self, n_atoms: int) -> float:
        """The expected time of the slab steps of one surface of ``n_atoms`` atoms."""
        return self.coefficient * n_atoms ** self.exponent

    def total(self, atom_counts: Iterable[int]) -> float:
        """The expected time of the slab steps of surfaces of these sizes."""
        return sum(self.seconds(n) for n in atom_counts)

    def rescaled(self, samples: Sequence[tuple[int, float]]) -> SizeScaling:
        """The same exponent with the coefficient that keeps the total of ``samples`` (too few, or too alike in
        size, to fit an exponent of their own: a bulk with a few surfaces done, sized by the whole campaign's)."""
        atoms = sum(n ** self.exponent for n, _ in samples)
        if not samples or atoms <= 0:
            return self
        return SizeScaling(exponent=self.exponent, coefficient=sum(t for _, t in samples) / atoms,
                           n_timed=len(samples))


def fit_size_scaling(samples: Sequence[tuple[int, float]]) -> SizeScaling | None:
    """Fit ``seconds ∝ atoms ** p`` to ``(n_atoms, seconds)`` samples; None where they cannot fix ``p``.

    The exponent is the least-squares slope of log seconds on log atoms (within :data:`EXPONENT_BOUNDS`); the
    coefficient then makes the fitted times of the samples add up to their measured total, so the estimate
    for surfaces the size of those timed is the plain mean.
    """
    usable = [(n, t) for n, t in samples if n > 0 and t > 0 and math.isfinite(t)]
    if len(usable) < MIN_SAMPLES:
        return None
    atoms = np.array([n for n, _ in usable], float)
    seconds = np.array([t for _, t in usable], float)
    if atoms.max() < MIN_SIZE_RATIO * atoms.min():
        return None
    slope = float(np.polyfit(np.log(atoms), np.log(seconds), 1)[0])
    exponent = min(max(slope, EXPONENT_BOUNDS[0]), EXPONENT_BOUNDS[1])
    return SizeScaling(exponent=exponent, coefficient=float(seconds.sum() / (atoms ** exponent).sum()),
                       n_timed=len(usable))
