"""The alignment step re-takes the slab-centre average over the ideal slab's period."""

import gzip
import json
from pathlib import Path

import pytest
from pymatgen.core import Structure

from bandflow.alignment import ideal_period_centre, surface_document
from bandflow.potential import IDEAL_PERIOD_TOLERANCE, PERIOD_TOLERANCE, analyze_potential, detect_period
from bandflow.protocols import get_protocol
from tests.test_potential import ORTHO, PERIOD, V_IN, V_VAC, slab_grid

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "ternary_oxides_fast.jsonl.gz"


def misdetected_analysis(wrong_period: float = 1.7 * PERIOD) -> tuple[dict, Structure]:
    """A potential analysis whose period came out wrong from relaxed atoms, and the ideal slab."""
    grid = slab_grid(ORTHO)
    analysis = analyze_potential(grid, period=wrong_period, plateau_tolerance=1e-8).to_dict(profile=True)
    analysis["period_source"] = "atoms"  # as if detected from (relaxed) atoms
    return analysis, grid.structure


def test_the_centre_is_retaken_over_the_ideal_period():
    analysis, ideal = misdetected_analysis()
    assert abs(analysis["slab_center_average"] - V_IN) > 0.1  # the wrong window leaves ripple in
    fixed = ideal_period_centre(analysis, ideal.as_dict())
    assert fixed["period"] == pytest.approx(PERIOD, abs=1e-6)
    assert fixed["period_source"] == "ideal slab"
    assert fixed["slab_center_average"] == pytest.approx(V_IN, abs=1e-6)
    assert fixed["center_variation"] < 1e-6
    assert fixed["potential_step"] == pytest.approx(V_VAC - V_IN, abs=1e-6)
    assert fixed["relaxed_atoms_period"] == pytest.approx(1.7 * PERIOD)
    assert fixed["relaxed_atoms_center_average"] == analysis["slab_center_average"]


def test_an_analysis_restored_from_a_document_is_retaken_too():
    """A surface document keeps z, planar and slab_center (``bandflow.dataset.PLANAR_PROFILE``), not the period."""
    analysis, ideal = misdetected_analysis()
    restored = {k: analysis[k] for k in ("vacuum_level_top", "vacuum_level_bottom", "slab_center_average",
                                         "z", "planar", "slab_center")}
    fixed = ideal_period_centre(restored, ideal)
    assert fixed["slab_center_average"] == pytest.approx(V_IN, abs=1e-6) and fixed["period_source"] == "ideal slab"
    assert "relaxed_atoms_period" not in fixed  # nothing known about the first analysis's period


def test_a_given_period_or_a_missing_profile_is_left_alone():
    analysis, ideal = misdetected_analysis()
    given = {**analysis, "period_source": "given"}
    assert ideal_period_centre(given, ideal) is given
    no_profile = {k: v for k, v in analysis.items() if k != "planar"}
    assert ideal_period_centre(no_profile, ideal) is no_profile
    assert ideal_period_centre(analysis, None) is analysis


def test_surface_document_records_the_period_and_aligns_with_it():
    analysis, ideal = misdetected_analysis()
    surface = {"surface_id": "MgO-225-100-t0-test", "bulk_name": "MgO", "formula": "MgO",
               "miller_index": [1, 0, 0], "termination": "0", "structure_unrelaxed": ideal.as_dict()}
    vbm, cbm = 2.0, 8.0
    doc = surface_document(surface, get_protocol("fast", "cp2k").model_dump(), {"vbm": vbm, "cbm": cbm},
                           ideal, {"potential": analysis})
    assert doc.period == pytest.approx(PERIOD, abs=1e-6) and doc.period_source == "ideal slab"
    assert doc.center_variation < 1e-6
    assert doc.ip == pytest.approx(V_VAC - V_IN - vbm, abs=1e-6)
    assert doc.extra["relaxed_atoms"]["period"] == pytest.approx(1.7 * PERIOD)


def test_ideal_slab_period_of_mgtio3_110():
    """The loose tolerance meant for relaxed atoms passes a near-repeat of this ideal slab first."""
    with gzip.open(REFERENCE, "rt") as handle:
        doc = next(d for d in map(json.loads, handle) if d["surface_id"].startswith("MgTiO3-148-110-t0"))
    slab = Structure.from_dict(doc["structure_unrelaxed"])
    assert detect_period(slab, tolerance=PERIOD_TOLERANCE) == pytest.approx(2.40, abs=0.01)
    assert detect_period(slab, tolerance=IDEAL_PERIOD_TOLERANCE) == pytest.approx(2.53, abs=0.01)


def test_an_ideal_slab_without_a_repeat_keeps_the_analysis_and_says_why():
    analysis, _ = misdetected_analysis()
    lone = Structure(ORTHO, ["Mg", "O"], [[0, 0, 0.5], [0.5, 0.5, 0.52]])  # no layer repeats
    kept = ideal_period_centre(analysis, lone)
    assert kept["slab_center_average"] == analysis["slab_center_average"] and "ideal_period_error" in kept


def test_the_macroscopic_profile_follows_the_retaken_period():
    analysis, ideal = misdetected_analysis()
    fixed = ideal_period_centre(analysis, ideal)
    inner = [v for z, v in zip(fixed["z"], fixed["macroscopic"], strict=True) if abs(z - fixed["slab_center"]) < 1.0]
    assert max(inner) - min(inner) < 1e-6 and max(abs(v - V_IN) for v in inner) < 1e-6


def test_a_period_given_to_the_potential_maker_is_kept():
    analysis, ideal = misdetected_analysis()
    surface = {"surface_id": "MgO-225-100-t0-test", "bulk_name": "MgO", "formula": "MgO", "miller_index": [1, 0, 0],
               "termination": "0", "structure_unrelaxed": ideal.as_dict(), "slab_period_given": True}
    doc = surface_document(surface, get_protocol("fast", "cp2k").model_dump(), {"vbm": 2.0, "cbm": 8.0},
                           ideal, {"potential": analysis})
    assert doc.slab_center_average == analysis["slab_center_average"] and doc.period == pytest.approx(1.7 * PERIOD)
    assert "slab_period_given" in surface  # the caller's dict is not changed
