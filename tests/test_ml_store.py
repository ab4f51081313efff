"""The model against a temporary results store: train, predict, import, retrain, transfer (CLI and jobflow)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from bandflow.bulk import load_bulk
from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.ml.synthetic import perturbed, synthetic_band_edges
from bandflow.ml.workflow import parse_query
from bandflow.schemas import SurfaceDoc
from bandflow.store import BandflowStore
from bandflow.surfaces import nonpolar_surfaces

BINARIES = ("MgO", "CaO", "ZnO", "TiO2-rutile", "SnO2", "CdO")
TERNARIES = ("CuAlO2", "CuGaO2", "Sr2TiO4", "LiNbO3", "LaAlO3")
FAST = ["--max-epochs", "15"]


def surface_docs(bulks, protocol="fast", variants=2, seed=0) -> list[SurfaceDoc]:
    """Stored-surface documents with synthetic IP/EA (``bandflow.ml.synthetic``)."""
    rng = np.random.default_rng(seed)
    docs = []
    for name in bulks:
        for entry in nonpolar_surfaces(load_bulk(name), max_index=1, min_thickness=6, vacuum=8):
            for variant in range(variants):
                slab = perturbed(entry.slab, rng) if variant else entry.slab
                ip, ea = synthetic_band_edges(slab)
                docs.append(SurfaceDoc(
                    surface_id=entry.id if variant == 0 else f"{entry.id}-v{variant}", bulk_name=entry.bulk_name,
                    formula=entry.formula, miller_index=entry.miller_index, termination=str(entry.termination),
                    structure_unrelaxed=slab.as_dict(), ip=ip, ea=ea, engine="synthetic", functional_bulk="none",
                    functional_slab="none", protocol=protocol,
                ))
    return docs


@pytest.fixture
def store(tmp_path, settings_env):
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"), BANDFLOW_STORE_URI=None)
    with BandflowStore.from_settings() as opened:
        yield opened


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, BandflowError):
        return result, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result, None


def test_train_and_predict_commands(store, tmp_path):
    docs = surface_docs(BINARIES)
    for doc in docs:
        store.upsert_surface(doc)
    parity = tmp_path / "parity.png"
    result, error = invoke("train", "--split", "random", "--members", "2", *FAST, "--parity", str(parity), "--json")
    assert error is None and result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["model_id"] == "lsoap-ipea-v1" and out["n_surfaces"] == len(docs)
    assert set(out["metrics"]) == {"train", "val", "test"}
    assert set(out["metrics"]["test"]["ea"]) == {"mae", "rmse", "r2"}
    assert parity.stat().st_size > 1000
    (model,) = store.list_models()
    assert model.descriptor == "lsoap" and model.metrics["test_ip_mae"] == pytest.approx(out["metrics"]["test"]["ip"]["mae"])
    assert sorted(model.training_surface_ids) == sorted(d.surface_id for d in docs)

    folder = tmp_path / "importance"
    folder.mkdir()
    result, error = invoke("predict", "MgO", "CeO2", "--importance", str(folder), "--json")
    assert error is None, error
    rows = json.loads(result.output)
    assert {r["formula"] for r in rows} == {"MgO", "CeO2"}
    ceria = [r for r in rows if r["formula"] == "CeO2"]
    assert all(r["unseen_elements"] == ["Ce"] and r["ea"] <= r["ip"] for r in ceria)
    stored = store.query_predictions(model_id="lsoap-ipea-v1")
    assert len(stored) == len(rows) and all(p.ip_std is not None for p in stored)
    assert {p.formula: p.unseen_elements for p in stored} == {"MgO": [], "CeO2": ["Ce"]}  # stored with the value
    shown, error = invoke("query", "--predictions", "--formula", "CeO2")
    assert error is None and all(line.endswith("lsoap-ipea-v1 (unseen Ce)") for line in shown.output.splitlines()[1:])
    table, error = invoke("query", "--predictions", "--formula", "CeO2", "--csv")
    assert error is None and {row["unseen_elements"] for row in csv.DictReader(io.StringIO(table.output))} == {"Ce"}
    mgo = [r for r in rows if r["formula"] == "MgO"]
    assert all(r["dft_ip"] is not None for r in mgo)  # the DFT value is reported next to the prediction ...
    for doc in docs:  # ... and left as it was
        assert store.query_surfaces(surface_id=doc.surface_id)[0].ip == pytest.approx(doc.ip)
    assert len(list(folder.glob("*.json"))) == len(rows) and len(list(folder.glob("*.png"))) == len(rows)

    result, error = invoke("predict", "MgO", "SrO", "--missing", "--json")
    assert error is None
    assert {r["formula"] for r in json.loads(result.output)} == {"SrO"}  # MgO has DFT results

    _, error = invoke("predict")
    assert "give bulk names" in error


def test_train_refuses_mixed_protocols_and_bad_queries(store):
    for doc in surface_docs(BINARIES[:3], protocol="fast", variants=1) + surface_docs(BINARIES[:3], "accurate", 1):
        store.upsert_surface(doc)
    _, error = invoke("train", *FAST)
    assert "several protocols" in error
    _, error = invoke("train", "--query", "colour=red")
    assert "unknown query key" in error
    _, error = invoke("train", "--query", "formula=SrO")
    assert "no successful stored surfaces" in error
    assert parse_query(["miller=1,-1,0", "n_cation_species=2"]) == {"miller": (1, -1, 0), "n_cation_species": 2}
    result, error = invoke("train", "--query", "protocol=accurate", "--split", "random", "--members", "1", *FAST)
    assert error is None and "stored model lsoap-ipea-v1" in result.output


def test_import_validates_each_record(store, tmp_path):
    good = [json.loads(d.model_dump_json()) for d in surface_docs(BINARIES[:2], variants=1)]
    missing_field = {k: v for k, v in good[0].items() if k != "protocol"} | {"surface_id": "no-protocol"}
    inverted = good[1] | {"surface_id": "inverted", "ip": 3.0, "ea": 4.0}
    broken_structure = good[1] | {"surface_id": "bad-structure", "structure_unrelaxed": {"lattice": "none"}}
    path = tmp_path / "surfaces.jsonl.gz"
    lines = [json.dumps(good[0]), json.dumps(missing_field), "{not json", json.dumps(inverted),
             json.dumps(broken_structure), *map(json.dumps, good[1:])]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    result, error = invoke("import", str(path))
    assert "4 of 8 records rejected" in error
    assert "record 2 (no-protocol): protocol: Field required" in result.output
    assert "record 3: not JSON" in result.output
    assert "record 4 (inverted)" in result.output and "gap" in result.output
    assert "record 5 (bad-structure): structure_unrelaxed" in result.output
    stored = store.query_surfaces()
    assert sorted(d.surface_id for d in stored) == sorted(d["surface_id"] for d in good)
    assert all(d.source == "import" for d in stored)

    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(path.read_bytes()[:60])
    _, error = invoke("import", str(truncated))
    assert "cannot read" in error
    assert len(store.query_surfaces()) == len(good)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    _, error = invoke("import", str(empty))
    assert error == f"{empty}: no records; nothing imported"


def test_retrain_after_new_surfaces(store):
    initial = surface_docs(BINARIES[:4], variants=1)
    for doc in initial:
        store.upsert_surface(doc)
    result, error = invoke("train", "--split", "random", "--members", "2", *FAST)
    assert error is None, error
    invoke("predict", "MgO")
    result, error = invoke("retrain", "--json")
    assert error is None and json.loads(result.output)["model_id"] is None  # nothing new yet
    added = surface_docs(BINARIES[4:], variants=1)
    for doc in added:
        store.upsert_surface(doc)
    result, error = invoke("retrain", "--json")
    assert error is None, error
    out = json.loads(result.output)
    assert out["model_id"] == "lsoap-ipea-v2" and out["parent_model_id"] == "lsoap-ipea-v1"
    assert sorted(out["new_surfaces"]) == sorted(d.surface_id for d in added)
    assert out["repredicted"] == len(store.query_predictions(model_id="lsoap-ipea-v1")) > 0
    assert len(store.query_predictions(model_id="lsoap-ipea-v2")) == out["repredicted"]
    new_model = store.load_model("lsoap-ipea-v2")[0]
    assert new_model.parent_model_id == "lsoap-ipea-v1" and len(new_model.training_surface_ids) == len(initial) + len(added)
    result, error = invoke("retrain")
    assert error is None and "up to date" in result.output


def test_transfer_to_ternaries(store, tmp_path):
    for doc in surface_docs(BINARIES, variants=1) + surface_docs(TERNARIES, variants=1, seed=5):
        store.upsert_surface(doc)
    _, error = invoke("train", "--query", "n_cation_species=1", "--split", "random", "--members", "1", *FAST)
    assert error is None, error
    plot = tmp_path / "transfer.png"
    result, error = invoke("transfer", "--from", "lsoap-ipea-v1", "--fractions", "0.5,1", *FAST, "--plot", str(plot),
                           "--json")
    assert error is None, error
    out = first = json.loads(result.output)
    assert [c["method"] for c in out["curves"]] == ["L-SOAP fine-tuned", "L-SOAP from scratch", "SOAP from scratch",
                                                    "source model, not fine-tuned",
                                                    "baseline: mean of the target training surfaces"]
    as_is, baseline = out["curves"][3]["points"], out["curves"][4]["points"]
    assert as_is[0]["test"] == as_is[1]["test"] and as_is[0]["n_train"] == 0  # no target data: one value
    assert baseline[0]["n_train"] < baseline[1]["n_train"] and baseline[1]["test"]["ip"]["mae"] > 0
    assert all(len(c["points"]) == 2 for c in out["curves"])
    assert all(p["test"]["ip"]["mae"] is not None for c in out["curves"] for p in c["points"])
    assert out["n_test"] > 0 and not set(out["test_groups"]) & {"MgO", "ZnO"}
    assert plot.stat().st_size > 1000
    _, error = invoke("transfer", "--from", "lsoap-ipea-v1", "--fractions", "0,2")
    assert "fractions" in error
    # repeats: other test compounds per seed; every point is the mean of its repeats, with their range
    result, error = invoke("transfer", "--from", "lsoap-ipea-v1", "--fractions", "0.5,1", *FAST, "--repeats", "3",
                           "--json", "--plot", str(tmp_path / "transfer3.png"))
    assert error is None, error
    out = json.loads(result.output)
    assert out["repeats"] == 3 and [s["seed"] for s in out["splits"]] == [0, 1, 2]
    assert len({tuple(s["test_groups"]) for s in out["splits"]}) > 1, "each repeat draws its own test compounds"
    assert sorted({g for s in out["splits"] for g in s["test_groups"]}) == out["test_groups"]
    for curve in out["curves"]:
        for point in curve["points"]:
            maes = [each["ip"]["mae"] for each in point["test_each"]]
            assert len(maes) == 3 and point["test"]["ip"]["mae"] == pytest.approx(sum(maes) / 3)
            assert point["test_range"]["ip"] == [min(maes), max(maes)]
    assert out["splits"][0]["test_groups"] == first["test_groups"]  # repeat 0 is the single study
    assert out["curves"][0]["points"][0]["test_each"][0] == first["curves"][0]["points"][0]["test"]
    assert (tmp_path / "transfer3.png").stat().st_size > 1000
    assert out["verdict"]["ip"]["repeats"] == 3 and out["verdict"]["ip"]["fraction"] == 1.0
    result, error = invoke("transfer", "--from", "lsoap-ipea-v1", "--fractions", "0.5,1", *FAST, "--repeats", "2")
    assert error is None and "2 repeats" in result.output
    assert re.search(r"verdict: At 100% of the pool .* in \d of 2 repeats", result.output)
    assert len(re.findall(r"\d\.\d-\d\.\d/\d\.\d-\d\.\d", result.output)) == 5 * 2  # a range per method and fraction
    _, error = invoke("transfer", "--from", "lsoap-ipea-v1", "--repeats", "0")
    assert "repeats must be at least 1" in error


def test_crossval_command(store, tmp_path):
    for doc in surface_docs(BINARIES[:4], variants=1):
        store.upsert_surface(doc)
    plot = tmp_path / "cv.png"
    result, error = invoke("crossval", "--members", "1", *FAST, "--plot", str(plot), "--json")
    assert error is None, error
    out = json.loads(result.output)
    assert out["n_compounds"] == 4 and [f["compound"] for f in out["folds"]] == sorted({"MgO", "CaO", "ZnO", "TiO2"})
    assert len(out["surfaces"]) == out["n_surfaces"] and all(s["ip"] is not None for s in out["surfaces"])
    assert set(out["overall"]) == {"model", "baseline"} and plot.stat().st_size > 1000
    result, error = invoke("crossval", "--members", "1", *FAST)
    assert error is None and "held out" in result.output and result.output.rstrip().splitlines()[-1].startswith("all")
    assert store.models.count() == 0  # cross-validation stores nothing
    _, error = invoke("crossval", "--query", "formula=MgO")
    assert "at least 3 compounds" in error


def test_train_job_runs_in_jobflow(store):
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from bandflow.ml.jobs import train_model_job

    for doc in surface_docs(BINARIES[:4], variants=1):
        store.upsert_surface(doc)
    job = train_model_job(split="random", n_members=1, max_epochs=5, name="from-jobflow")
    responses = run_locally(job, store=JobStore(MemoryStore()), log=False, ensure_success=True)
    output = responses[job.uuid][1].output
    assert output["model_id"] == "from-jobflow-v1" and "test" in output["metrics"]
    assert store.list_models()[0].model_id == "from-jobflow-v1"


def test_retrain_job_runs_on_a_fireworks_worker(store, tmp_path, monkeypatch):
    """Train, add new surfaces, then the retrain job goes through flow_to_workflow, the LaunchPad and a
    worker, and stores the next version."""
    from jobflow import Flow

    from bandflow.ml.jobs import retrain_model_job
    from bandflow.queue import firework_state_counts, launch, submit_flows

    for variable in ("BANDFLOW_STORE_URI", "BANDFLOW_LAUNCHPAD_FILE", "MONGOMOCK_SERVERSTORE_FILE"):
        monkeypatch.delenv(variable, raising=False)
    for doc in surface_docs(BINARIES[:4], variants=1):
        store.upsert_surface(doc)
    result, error = invoke("train", "--split", "random", "--members", "1", *FAST)
    assert error is None, error
    added = surface_docs(BINARIES[4:], variants=1)
    for doc in added:
        store.upsert_surface(doc)
    submit_flows(Flow([retrain_model_job(max_epochs=5)]))
    assert launch(launch_dir=tmp_path / "fw", poll_s=0.1, strm_lvl="ERROR") == 1
    assert firework_state_counts()["COMPLETED"] == 1
    newest = store.list_models()
    assert {m.model_id for m in newest} == {"lsoap-ipea-v1", "lsoap-ipea-v2"}
    output = store.job_store.query_one({"name": "retrain_model_job"})["output"]
    assert output["model_id"] == "lsoap-ipea-v2" and sorted(output["new_surfaces"]) == sorted(d.surface_id for d in added)
