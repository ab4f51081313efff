"""The time-per-surface model: slab steps as a power of the slab's atom count."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from bandflow.timing import (
    EXPONENT_BOUNDS,
    MIN_SAMPLES,
    JobDurations,
    SizeScaling,
    bulk_scalings,
    fit_size_scaling,
    parse_walltime,
)


def test_fit_recovers_a_power_law_and_keeps_the_measured_total():
    samples = [(n, 0.5 * n ** 1.6) for n in (10, 20, 30, 45, 60, 80)]
    scaling = fit_size_scaling(samples)
    assert scaling.exponent == pytest.approx(1.6) and scaling.coefficient == pytest.approx(0.5)
    assert scaling.n_timed == 6 and scaling.seconds(40) == pytest.approx(0.5 * 40 ** 1.6)
    noisy = [(n, t * f) for (n, t), f in zip(samples, (1.3, 0.8, 1.1, 0.7, 1.2, 0.9), strict=True)]
    fitted = fit_size_scaling(noisy)
    assert fitted.total(n for n, _ in noisy) == pytest.approx(sum(t for _, t in noisy))  # unbiased on the timed
    assert 1.2 < fitted.exponent < 2.0


def test_no_fit_from_too_few_or_too_alike_surfaces():
    assert fit_size_scaling([(n, float(n)) for n in range(10, 10 + MIN_SAMPLES - 1)]) is None
    assert fit_size_scaling([(n, float(n)) for n in (20, 22, 24, 26, 28)]) is None  # 28 < 1.5 × 20
    assert fit_size_scaling([(10, 5.0), (20, 0.0), (30, math.nan), (40, 9.0), (60, 3.0)]) is None  # 3 usable


def test_exponent_is_bounded_and_rescaled_keeps_it():
    steep = fit_size_scaling([(n, n ** 6.0) for n in (10, 20, 30, 40, 50)])
    assert steep.exponent == EXPONENT_BOUNDS[1]
    falling = fit_size_scaling([(n, 1000.0 / n) for n in (10, 20, 30, 40, 50)])
    assert falling.exponent == EXPONENT_BOUNDS[0] and falling.seconds(99) == pytest.approx(falling.seconds(10))
    campaign = SizeScaling(exponent=2.0, coefficient=0.1, n_timed=50)
    bulk = campaign.rescaled([(10, 30.0), (20, 120.0)])  # three times the campaign's pace, same growth
    assert (bulk.exponent, bulk.n_timed) == (2.0, 2) and bulk.coefficient == pytest.approx(0.3)
    assert campaign.rescaled([]) is campaign


def test_largest_slab_that_fits_inverts_the_scaling():
    scaling = SizeScaling(exponent=2.0, coefficient=0.25, n_timed=6)
    assert scaling.largest(scaling.seconds(40)) == 40  # exactly at the limit still fits
    assert scaling.largest(scaling.seconds(40) - 1) == 39 and scaling.largest(10.0) == 6 and scaling.largest(0.1) == 0
    flat = SizeScaling(exponent=0.0, coefficient=300.0, n_timed=5)  # time does not grow with size
    assert flat.largest(300.0) is None and flat.largest(299.0) == 0


@pytest.mark.parametrize(("text", "seconds"), [
    # Slurm's --time (and squeue -o %L): a bare number is minutes, two fields minutes and seconds
    ("30", 1800), ("30:00", 1800), ("1:30", 90), ("2:00:00", 7200), ("0:45:30", 2730), ("1-12", 129600),
    ("1-0:30", 88200), ("1-00:00:00", 86400), ("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("2.5h", 9000),
    ("45s", 45), ("1d", 86400), (" 1H ", 3600),
])
def test_walltime_as_slurm_writes_it(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1h30", "abc", "0", "-5", "1:2:3:4", "-1:00", "1:75", "2:60:00", "nan",
                                  "inf", "1-2:3:4:5", "soon"])
def test_walltime_refuses_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="a walltime is MM, MM:SS, H:MM:SS"):
        parse_walltime(text)


def test_expected_job_lengths():
    durations = JobDurations(bulk_seconds=3600.0, surface_seconds=300.0,
                             scaling=SizeScaling(exponent=2.0, coefficient=0.5, n_timed=9), atoms={"s": 20})
    assert durations.expected("bulk_edges") == 3600.0
    assert durations.expected("slab_relax", "s") == durations.expected("slab_potential", "s") == 200.0
    assert durations.expected("slab_potential", "unknown") == 300.0  # not in the plan: the flat mean
    assert durations.expected("alignment", "s") == durations.expected("slab_structure", "s") == 0.0
    # a bulk timed at its own pace: its surfaces go by it, the others by the common scaling
    paced = JobDurations(bulk_seconds=3600.0, surface_seconds=300.0, scaling=durations.scaling,
                         atoms={"s": 20, "t": 20}, bulk_of={"s": "HfO2", "t": "ZrO2"},
                         bulk_scalings={"HfO2": durations.scaling.rescaled([(10, 100.0), (20, 400.0)])})
    assert paced.expected("slab_potential", "s") == pytest.approx(400.0)
    assert paced.expected("slab_potential", "t") == 200.0
    # two quick first slabs do not let larger ones start: a faster own pace counts from three timed surfaces
    quick = durations.scaling.rescaled([(10, 10.0), (20, 40.0)])  # a fifth of the common pace, two surfaces
    early = replace(paced, bulk_scalings={"HfO2": quick})
    assert early.paces() == {} and early.expected("slab_potential", "s") == 200.0
    later = replace(paced, bulk_scalings={"HfO2": durations.scaling.rescaled([(10, 10.0), (20, 40.0), (10, 10.0)])})
    assert later.expected("slab_potential", "s") == pytest.approx(40.0)
    untimed = JobDurations(bulk_seconds=None, surface_seconds=None, scaling=None, atoms={})
    assert untimed.expected("bulk_edges") is None and untimed.expected("slab_relax", "s") is None


def test_a_bulk_with_enough_timed_surfaces_gets_its_own_pace():
    campaign = SizeScaling(exponent=2.0, coefficient=0.1, n_timed=50)
    own = bulk_scalings({"HfO2": [(10, 20.0), (20, 80.0)], "MgO": [(10, 5.0)], "ZrO2": [(10, 10.0), (0, 1.0)]},
                        campaign)
    assert set(own) == {"HfO2"}  # one usable surface is too few to judge a pace by
    assert (own["HfO2"].exponent, own["HfO2"].coefficient) == pytest.approx((2.0, 0.2))
    assert bulk_scalings({"HfO2": [(10, 20.0), (20, 80.0)]}, None) == {}
