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


#: a job starts under a walltime only if its expected length times this fits in the time left (the
#: expectation is a mean; a bulk hybrid cut off by the end of an allocation is lost whole)
WALLTIME_MARGIN = 1.25

_WALLTIME_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_walltime(text: str) -> float:
    """Seconds in a walltime as batch systems write it: ``H:MM``, ``H:MM:SS``, ``D-HH:MM:SS``, or with units
    (``90m``, ``2h``, ``1h30m``, ``45s``); a bare number is seconds."""
    value = text.strip().lower()
    try:
        if ":" in value or "-" in value:
            days, dash, clock = value.rpartition("-")
            parts = [float(p) for p in clock.split(":")]
            if not 2 <= len(parts) <= 3 or any(p < 0 for p in parts) or (dash and not days):
                raise ValueError
            seconds = sum(p * f for p, f in zip(parts, (3600.0, 60.0, 1.0), strict=False))
            seconds += 86400.0 * float(days) if days else 0.0
        elif value and value[-1] in _WALLTIME_UNITS:
            seconds, number = 0.0, ""
            for char in value:
                if char in _WALLTIME_UNITS:
                    seconds += float(number) * _WALLTIME_UNITS[char]
                    number = ""
                else:
                    number += char
        else:
            seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a walltime is H:MM, H:MM:SS, D-HH:MM:SS, 90m, 2h, 1h30m or seconds; got {text!r}")
    return seconds


@dataclass(frozen=True)
class JobDurations:
    """The expected length of a campaign's jobs, from its timed ones, to judge what fits before a deadline."""

    #: mean bulk job (None: none timed yet)
    bulk_seconds: float | None
    #: mean slab steps of one surface (None: none timed yet)
    surface_seconds: float | None
    scaling: SizeScaling | None
    #: slab atoms by surface id
    atoms: dict[str, int]

    def expected(self, step: str, surface_id: str | None = None) -> float | None:
        """Seconds a job of ``step`` is expected to take (None: not known). A slab relaxation or slab potential
        counts as all the slab steps of its surface, sized by its atoms where a scaling is known (their split
        between relaxation and potential is not recorded); an alignment or structure hand-over as nothing."""
        if step == "bulk_edges":
            return self.bulk_seconds
        if step in ("slab_relax", "slab_potential"):
            n_atoms = self.atoms.get(surface_id or "")
            return self.scaling.seconds(n_atoms) if self.scaling and n_atoms else self.surface_seconds
        return 0.0
