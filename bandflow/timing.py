"""How long a surface takes: a power law in the slab's atom count, fitted to a campaign's timed surfaces.

The slab steps grow faster than linearly with the slab (on the reference campaigns atoms^1.5 to
atoms^2.5: a 60-atom slab takes 5–15× a 20-atom one), and the surfaces left in a campaign are rarely the size of those
done first, so a flat mean per surface misjudges the time left. No kept library estimates this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: fewer timed surfaces than this, or atom counts spanning less than :data:`MIN_SIZE_RATIO`, fit no exponent
MIN_SAMPLES = 5
MIN_SIZE_RATIO = 1.5
#: the exponent is kept within these bounds (timings beside other runs are noisy)
EXPONENT_BOUNDS = (0.0, 3.0)


@dataclass(frozen=True)
class SizeScaling:
    """``seconds(n) = coefficient × n ** exponent``, fitted to ``n_timed`` surfaces whose total it keeps;
    ``borrowed``: the exponent is another set's (:meth:`rescaled`), only the coefficient is these surfaces'."""

    exponent: float
    coefficient: float
    n_timed: int
    borrowed: bool = False

    def seconds(self, n_atoms: int) -> float:
        """The expected time of the slab steps of one surface of ``n_atoms`` atoms."""
        return self.coefficient * n_atoms ** self.exponent

    def largest(self, seconds: float) -> int | None:
        """The largest atom count whose slab steps are expected to take at most ``seconds`` (0: none fits;
        None: every size fits, a scaling that does not grow with size and fits)."""
        if self.exponent <= 0:
            return None if self.coefficient <= seconds else 0
        return int(math.floor((seconds / self.coefficient) ** (1.0 / self.exponent) * (1 + 1e-12)))

    def total(self, atom_counts: Iterable[int]) -> float:
        """The expected time of the slab steps of surfaces of these sizes."""
        return sum(self.seconds(n) for n in atom_counts)

    def rescaled(self, samples: Sequence[tuple[int, float]]) -> SizeScaling:
        """The same exponent with the coefficient that keeps the total of ``samples`` (too few, or too alike in
        size, to fit an exponent of their own: a bulk with a few surfaces done, sized by the whole campaign's)."""
        usable = _usable(samples)
        if not usable:
            return self
        return SizeScaling(exponent=self.exponent,
                           coefficient=sum(t for _, t in usable) / sum(n ** self.exponent for n, _ in usable),
                           n_timed=len(usable), borrowed=True)


def _usable(samples: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Samples with a positive atom count and a positive, finite time."""
    return [(n, t) for n, t in samples if n > 0 and t > 0 and math.isfinite(t)]


def fit_size_scaling(samples: Sequence[tuple[int, float]]) -> SizeScaling | None:
    """Fit ``seconds ∝ atoms ** p`` to ``(n_atoms, seconds)`` samples; None where they cannot fix ``p``.

    The exponent is the least-squares slope of log seconds on log atoms (within :data:`EXPONENT_BOUNDS`); the
    coefficient then makes the fitted times of the samples add up to their measured total, so the estimate
    for surfaces the size of those timed is the plain mean.
    """
    usable = _usable(samples)
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


#: a bulk with at least this many timed surfaces is sized at its own pace (:func:`bulk_scalings`)
MIN_BULK_SAMPLES = 2


def bulk_scalings(samples: Mapping[str, Sequence[tuple[int, float]]],
                  scaling: SizeScaling | None) -> dict[str, SizeScaling]:
    """Per bulk (``samples``: its timed surfaces' ``(n_atoms, seconds)``) with at least
    :data:`MIN_BULK_SAMPLES` of them: ``scaling``'s exponent with the coefficient of its own surfaces.

    The elements set the pace as much as the size does (an Al2O3 slab takes about a third of the time of a ZrO2
    slab of the same size: coefficients 0.10 and 0.32 s per atom**2.07, 2026-12-07). Measured on the 302 timed documents of the reference campaigns, each surface predicted from all the
    others (``benchmarks/eta_backtest.py --documents``): the median error of its slab time fell from 38 % (one
    coefficient for all) to 31 %, the mean from 64 % to 49 %.
    """
    if scaling is None:
        return {}
    return {bulk: scaling.rescaled(own) for bulk, own in samples.items() if len(_usable(own)) >= MIN_BULK_SAMPLES}


#: a bulk's own pace faster than the campaign's is trusted for a walltime decision from this many timed surfaces
TRUSTED_FAST_SAMPLES = 3

#: the slab steps that take engine time (the structure hand-over and the alignment take none)
SLAB_STEPS = ("slab_relax", "slab_potential")
#: the steps judged against a walltime
TIMED_STEPS = ("bulk_edges", *SLAB_STEPS)

#: a job starts under a walltime only if its expected length times this fits in the time left (the
#: expectation is a mean; a bulk hybrid cut off by the end of an allocation is lost whole)
WALLTIME_MARGIN = 1.25

_WALLTIME_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_WALLTIME_FORMS = "MM, MM:SS, H:MM:SS, D-H, D-H:MM, D-H:MM:SS (as Slurm's --time), or with units: 90m, 2h, 1h30m"


def parse_walltime(text: str) -> float:
    """Seconds in a walltime written as Slurm's ``--time`` takes it (and ``squeue -o %L`` prints the time
    left): ``MM``, ``MM:SS``, ``H:MM:SS``, ``D-H``, ``D-H:MM``, ``D-H:MM:SS``; or with units (``90m``, ``2h``,
    ``1h30m``, ``45s``). A bare number is minutes and two fields are minutes and seconds, as in Slurm; PBS's
    ``walltime=HH:MM:SS`` reads the same."""
    value = text.strip().lower()
    try:
        if value and value[-1] in _WALLTIME_UNITS:
            seconds, number = 0.0, ""
            for char in value:
                if char in _WALLTIME_UNITS:
                    seconds += float(number) * _WALLTIME_UNITS[char]
                    number = ""
                else:
                    number += char
        else:
            days, dash, clock = value.partition("-") if "-" in value else ("", "", value)
            fields = [float(f) for f in clock.split(":")]
            if any(f < 0 for f in fields) or any(f >= 60 for f in fields[1:]) or (dash and not days):
                raise ValueError
            if dash:  # D-H, D-H:MM, D-H:MM:SS
                if len(fields) > 3:
                    raise ValueError
                seconds = float(days) * 86400.0 + sum(f * u for f, u in zip(fields, (3600.0, 60.0, 1.0),
                                                                              strict=False))
            elif len(fields) == 3:  # H:MM:SS
                seconds = fields[0] * 3600.0 + fields[1] * 60.0 + fields[2]
            elif len(fields) <= 2:  # MM, MM:SS
                seconds = fields[0] * 60.0 + (fields[1] if len(fields) == 2 else 0.0)
            else:
                raise ValueError
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a walltime is {_WALLTIME_FORMS}; got {text!r}")
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
    #: the longest attempt of a job (by uuid) stopped before it finished (``bandflow.activity.stopped_seconds``)
    stopped: dict[str, float] = field(default_factory=dict)
    #: per bulk name, its own pace (:func:`bulk_scalings`); the surfaces of other bulks go by ``scaling``
    bulk_scalings: dict[str, SizeScaling] = field(default_factory=dict)
    #: bulk name by surface id
    bulk_of: dict[str, str] = field(default_factory=dict)

    def paces(self) -> dict[str, SizeScaling]:
        """Per bulk, the pace a walltime decision goes by: ``bulk_scalings``, except that a bulk timed on fewer
        than :data:`TRUSTED_FAST_SAMPLES` surfaces is not taken as faster than ``scaling`` (two quick first
        slabs would let larger ones start; a job cut off by the walltime loses its work, one left for a later
        allocation loses nothing). A slower own pace counts from :data:`MIN_BULK_SAMPLES` on."""
        if self.scaling is None:
            return dict(self.bulk_scalings)
        # the per-bulk scalings share ``scaling``'s exponent (SizeScaling.rescaled), so coefficients compare paces
        return {name: own for name, own in self.bulk_scalings.items()
                if own.n_timed >= TRUSTED_FAST_SAMPLES or own.coefficient >= self.scaling.coefficient}

    def scaling_for(self, surface_id: str | None) -> SizeScaling | None:
        """The size scaling of this surface's slab steps: its bulk's own pace where :meth:`paces` has it, else
        ``scaling``."""
        return self.paces().get(self.bulk_of.get(surface_id or "", ""), self.scaling)

    def expected(self, step: str, surface_id: str | None = None, uuid: str | None = None) -> float | None:
        """Seconds a job of ``step`` is expected to take (None: not known). A slab relaxation or slab potential
        counts as all the slab steps of its surface (their split between relaxation and potential is not
        recorded), sized by its atoms where a scaling is known, at its bulk's own pace where that is known; an
        alignment or structure hand-over as nothing.
        A job (``uuid``) with an attempt stopped unfinished takes at least as long as that attempt ran."""
        if step == "bulk_edges":
            expected = self.bulk_seconds
        elif step in SLAB_STEPS:
            n_atoms = self.atoms.get(surface_id or "")
            scaling = self.scaling_for(surface_id)
            expected = scaling.seconds(n_atoms) if scaling and n_atoms else self.surface_seconds
        else:
            expected = 0.0
        if uuid in self.stopped:
            return max(expected or 0.0, self.stopped[uuid])
        return expected
