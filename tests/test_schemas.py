"""Validation and JSON round trips of the store documents."""

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError
from pymatgen.core import Lattice, Structure

from bandflow.errors import BandflowError
from bandflow.schemas import ModelDoc, PredictionDoc, SurfaceDoc, validate_document


def rocksalt() -> Structure:
    return Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def surface_fields(**changes) -> dict:
    fields = dict(
        surface_id="MgO-100-0", bulk_name="MgO", formula="MgO", miller_index=[1, 0, 0], termination=0,
        structure_unrelaxed=rocksalt(), ip=7.1, ea=1.2, bulk_vbm=1.0, bulk_cbm=6.9, bulk_gap=5.9,
        engine="cp2k", functional_bulk="HSE06", functional_slab="PBE", protocol="fast",
    )
    fields.update(changes)
    return fields


def test_surface_doc_fills_derived_fields_and_normalises():
    doc = SurfaceDoc(**surface_fields(formula="Mg2O2", chemsys="O-Mg"))
    assert doc.formula == "MgO"
    assert doc.chemsys == "Mg-O" and doc.n_cation_species == 1
    assert doc.termination == "0" and doc.miller_index == (1, 0, 0)
    assert doc.structure_unrelaxed["@class"] == "Structure"
    assert Structure.from_dict(doc.structure_unrelaxed) == rocksalt()
    assert doc.state == "successful" and doc.source == "bandflow"
    assert doc.created_at.tzinfo is not None and doc.created_at.microsecond % 1000 == 0


def test_surface_doc_json_round_trip_is_exact():
    doc = SurfaceDoc(**surface_fields(extra={"profile": np.linspace(0, 1, 3), "pair": (1, 2)}))
    again = SurfaceDoc.model_validate_json(doc.model_dump_json())
    assert again == doc
    assert json.loads(doc.model_dump_json())["extra"] == {"profile": [0.0, 0.5, 1.0], "pair": [1, 2]}


def test_naive_and_other_zone_datetimes_become_utc():
    naive = SurfaceDoc(**surface_fields(created_at=datetime(2025, 1, 2, 3, 4, 5, 123456)))
    assert naive.created_at == datetime(2025, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    shifted = SurfaceDoc(**surface_fields(created_at=datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))))
    assert shifted.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"miller_index": [0, 0, 0]}, "must not be (0, 0, 0)"),
        ({"miller_index": [1, 0]}, "miller_index"),
        ({"ip": math.nan}, "finite number"),
        ({"ea": math.inf}, "finite number"),
        ({"bulk_gap": -0.1}, "greater than or equal to 0"),
        ({"ip": -1.0, "ea": -2.0}, "greater than 0"),
        ({"ea": 7.5}, "IP - EA is the gap"),
        ({"bulk_cbm": 0.5}, "below bulk_vbm"),
        ({"ip": None}, "needs ip and ea"),
        ({"state": "failed"}, "needs a failure_reason"),
        ({"state": "running"}, "'successful' or 'failed'"),
        ({"source": "elsewhere"}, "'bandflow' or 'import'"),
        ({"formula": "Mg"}, "no oxygen"),
        ({"formula": "Xx2O"}, "cannot read the formula"),
        ({"chemsys": "Al-O"}, "does not match formula"),
        ({"n_cation_species": 2}, "does not match formula"),
        ({"spacegroup_number": 231}, "less than or equal to 230"),
        ({"structure_unrelaxed": {"lattice": 1}}, "not a valid Structure dict"),
        ({"structure_unrelaxed": "POSCAR"}, "must be a pymatgen Structure"),
        ({"extra": {"x": object()}}, "cannot be stored as JSON"),
        ({"surface_id": ""}, "at least 1 character"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
    ],
)
def test_surface_doc_rejects_bad_values(changes, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SurfaceDoc(**surface_fields(**changes))


def test_failed_surface_needs_no_energies():
    doc = SurfaceDoc(**surface_fields(state="failed", failure_reason="SCF did not converge", ip=None, ea=None))
    assert doc.ip is None and doc.failure_reason == "SCF did not converge"


def test_validation_is_repeated_on_assignment():
    doc = SurfaceDoc(**surface_fields())
    with pytest.raises(ValidationError, match="finite number"):
        doc.ip = math.nan


def test_prediction_doc():
    doc = PredictionDoc(
        surface_id="MgO-100-0", bulk_name="MgO", formula="MgO", miller_index=(1, 0, 0),
        structure_unrelaxed=rocksalt(), ip=7.0, ea=1.0, ip_std=0.2, ea_std=0.3, model_id="lsoap-v1",
        model_version=1, code_version="0.1.0",
    )
    assert doc.chemsys == "Mg-O" and PredictionDoc.model_validate_json(doc.model_dump_json()) == doc
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PredictionDoc(**{**doc.model_dump(), "ip_std": -0.1})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        PredictionDoc(**{**doc.model_dump(), "model_version": 0})


def test_model_doc():
    doc = ModelDoc(name="lsoap-ipea", descriptor="lsoap", code_version="0.1.0", hyperparameters={"r_cut": 6.0},
                   metrics={"ip_mae": 0.2}, training_surface_ids=["MgO-100-0"])
    assert doc.model_id is None and doc.version is None
    assert ModelDoc.model_validate_json(doc.model_dump_json()) == doc
    with pytest.raises(ValidationError, match="'lsoap' or 'soap'"):
        ModelDoc(name="x", descriptor="mace", code_version="0.1.0")
    with pytest.raises(ValidationError, match="finite number"):
        ModelDoc(name="x", descriptor="soap", code_version="0.1.0", metrics={"ip_mae": math.nan})


def test_validate_document_gives_one_line_bandflow_error():
    assert validate_document(SurfaceDoc, surface_fields()).formula == "MgO"
    with pytest.raises(BandflowError) as info:
        validate_document(SurfaceDoc, surface_fields(ip=math.nan, miller_index=[0, 0, 0]))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("invalid SurfaceDoc: miller_index:") and "(and 1 more problem)" in message
