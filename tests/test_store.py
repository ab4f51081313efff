"""The results store on both backends: embedded montydb (real, on disk) and mongomock."""

import multiprocessing
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.schemas import ModelDoc, PredictionDoc, SurfaceDoc
from bandflow.settings import get_settings
from bandflow.store import BandflowStore, LockedMontyStore, dangling_jobs, redact_uri
from tests.test_schemas import rocksalt, surface_fields

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path, settings_env):
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"), BANDFLOW_STORE_URI=None)
    return tmp_path / "data"


@pytest.fixture(params=["montydb", "mongomock"])
def store(request, data_dir):
    store = BandflowStore.from_settings() if request.param == "montydb" else BandflowStore.in_memory()
    yield store
    store.close()


def mgo(surface_id="MgO-100-0", **changes) -> dict:
    return surface_fields(surface_id=surface_id, **changes)


def prediction(surface_id="MgO-100-0", model_id="lsoap-v1", **changes) -> dict:
    fields = dict(surface_id=surface_id, bulk_name="MgO", formula="MgO", miller_index=[1, 0, 0],
                  structure_unrelaxed=rocksalt(), ip=7.0, ea=1.0, model_id=model_id, model_version=1,
                  code_version="0.1.0")
    return {**fields, **changes}


def test_embedded_store_is_montydb_sqlite_under_data_dir(data_dir):
    store = BandflowStore.from_settings()
    assert isinstance(store.surfaces, LockedMontyStore) and store.surfaces.storage == "sqlite"
    assert Path(store.surfaces.database_path) == (data_dir / "store").resolve()
    assert set(store.job_store.additional_stores) == {"data"}
    store.upsert_surface(mgo())
    store.close()
    reopened = BandflowStore.from_settings()  # a new connection reads what the first one wrote
    assert [d.surface_id for d in reopened.query_surfaces()] == ["MgO-100-0"]


def test_upsert_surface_updates_never_duplicates(store):
    first = store.upsert_surface(mgo())
    time.sleep(0.01)
    second = store.upsert_surface(SurfaceDoc(**mgo(ip=7.3, ea=1.1)))
    assert store.surfaces.count() == 1
    assert second.ip == 7.3 and second.created_at == first.created_at and second.updated_at > first.updated_at
    other_protocol = store.upsert_surface(mgo(protocol="accurate"))
    assert store.surfaces.count() == 2 and other_protocol.protocol == "accurate"
    # a failure (say, of a re-alignment with a new bulk method) does not replace a successful result
    kept = store.upsert_surface(mgo(state="failed", failure_reason="SCF", ip=None, ea=None))
    assert kept.state == "successful" and kept.ip == 7.3 and store.surfaces.count() == 2
    failed = store.upsert_surface(mgo("MgO-110-0", miller_index=[1, 1, 0], state="failed", failure_reason="SCF",
                                      ip=None, ea=None))
    assert failed.state == "failed" and failed.ip is None and store.surfaces.count() == 3
    assert [d.surface_id for d in store.query_surfaces(protocol="fast", state="failed")] == ["MgO-110-0"]
    retried = store.upsert_surface(mgo("MgO-110-0", miller_index=[1, 1, 0]))  # a success replaces a failure
    assert retried.state == "successful" and retried.failure_reason is None


def test_upsert_rejects_invalid_documents_with_one_line(store):
    with pytest.raises(BandflowError, match=r"^invalid SurfaceDoc: miller_index: .*\(0, 0, 0\)"):
        store.upsert_surface(mgo(miller_index=[0, 0, 0]))
    assert store.surfaces.count() == 0


def test_query_surfaces_filters(store):
    store.upsert_surface(mgo())
    store.upsert_surface(mgo("MgO-110-0", miller_index=[1, 1, 0], source="import"))
    spinel = rocksalt().copy()
    spinel.replace_species({"Mg": "Zn"})
    store.upsert_surface(mgo("ZnAl2O4-100-0", bulk_name="ZnAl2O4", formula="ZnAl2O4", structure_unrelaxed=spinel))
    store.upsert_surface(mgo("MgO-111-0", miller_index=[1, 1, 1], state="failed", failure_reason="x", ip=None, ea=None))

    def ids(**filters):
        return [d.surface_id for d in store.query_surfaces(**filters)]

    assert ids() == ["ZnAl2O4-100-0", "MgO-100-0", "MgO-110-0"]  # by formula: Al2ZnO4 < MgO
    assert ids(formula="Mg2O2") == ["MgO-100-0", "MgO-110-0"]
    assert ids(miller=(1, 0, 0)) == ["ZnAl2O4-100-0", "MgO-100-0"] == ids(miller="1 0 0") == ids(miller="100")
    assert ids(chemsys="O-Zn-Al") == ["ZnAl2O4-100-0"]
    assert ids(n_cation_species=2) == ["ZnAl2O4-100-0"] and ids(n_cation_species=1) == ["MgO-100-0", "MgO-110-0"]
    assert ids(source="import") == ["MgO-110-0"]
    assert ids(state=None) == ["ZnAl2O4-100-0", "MgO-100-0", "MgO-110-0", "MgO-111-0"]
    assert ids(state="failed") == ["MgO-111-0"]
    assert ids(protocol="accurate") == []
    assert len(ids(since=datetime.now(UTC) - timedelta(minutes=5))) == 3
    assert ids(since=datetime.now(UTC) + timedelta(minutes=5)) == []
    assert len(ids(since=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())) == 3
    docs = store.query_surfaces(formula="MgO", miller=[1, 0, 0])
    assert isinstance(docs[0], SurfaceDoc) and docs[0].structure_unrelaxed["@class"] == "Structure"


@pytest.mark.parametrize(
    ("filters", "message"),
    [({"formula": "Mg"}, "no oxygen"), ({"miller": [0, 0, 0]}, "not all zero"), ({"miller": "1 0"}, "three"),
     ({"chemsys": "Mg-Qq"}, "chemical system"), ({"state": "done"}, "unknown state"), ({"since": "yesterday"}, "ISO")],
)
def test_query_surfaces_rejects_bad_filters(store, filters, message):
    with pytest.raises(BandflowError, match=message):
        store.query_surfaces(**filters)


def test_predictions_keyed_by_surface_and_model(store):
    store.upsert_prediction(prediction())
    store.upsert_prediction(PredictionDoc(**prediction(ip=7.5)))
    store.upsert_prediction(prediction(model_id="lsoap-v2", model_version=2))
    store.upsert_prediction(prediction("MgO-110-0", miller_index=[1, 1, 0]))
    assert store.predictions.count() == 3
    assert [p.ip for p in store.query_predictions(surface_id="MgO-100-0", model_id="lsoap-v1")] == [7.5]
    assert [p.surface_id for p in store.query_predictions(miller=[1, 1, 0])] == ["MgO-110-0"]
    assert len(store.query_predictions(formula="MgO", model_id="lsoap-v2")) == 1
    with pytest.raises(BandflowError, match="invalid PredictionDoc: ip"):
        store.upsert_prediction(prediction(ip=float("nan")))


def test_batch_upsert_of_predictions_replaces_by_key(store):
    store.upsert_prediction(prediction())
    store.upsert_prediction(prediction("MgO-111-0", miller_index=[1, 1, 1]))
    batch = [prediction(ip=7.5), prediction("MgO-110-0", miller_index=[1, 1, 0]),
             prediction("MgO-110-0", miller_index=[1, 1, 0], ip=7.25)]
    assert store.upsert_predictions(batch) == 2
    assert store.predictions.count() == 3
    assert {p.surface_id: p.ip for p in store.query_predictions()}["MgO-100-0"] == 7.5
    assert [p.ip for p in store.query_predictions(surface_id="MgO-110-0")] == [7.25]
    with pytest.raises(BandflowError, match="invalid PredictionDoc: ip"):
        store.upsert_predictions([prediction("MgO-311-0"), prediction(ip=float("nan"))])
    assert store.predictions.count() == 3 and not store.query_predictions(surface_id="MgO-311-0")


def test_models_are_versioned_per_name_with_checked_weights(store):
    base = ModelDoc(name="lsoap-ipea", descriptor="lsoap", code_version="0.1.0", metrics={"ip_mae": 0.3})
    first = store.save_model(base, b"\x00weights-v1")
    second = store.save_model(base.model_copy(update={"parent_model_id": first.model_id}), b"weights-v2" * 1000)
    # created in the same instant as the others (as within one millisecond): the one saved last is the newest
    other = store.save_model(ModelDoc(name="soap-baseline", descriptor="soap", code_version="0.1.0",
                                      created_at=base.created_at), b"w")
    assert (first.model_id, first.version, second.model_id, second.version) == ("lsoap-ipea-v1", 1, "lsoap-ipea-v2", 2)
    assert other.version == 1 and second.weights_size == 10_000

    doc, weights = store.load_model(name="lsoap-ipea")
    assert doc == second and weights == b"weights-v2" * 1000 and doc.parent_model_id == "lsoap-ipea-v1"
    assert store.load_model(model_id="lsoap-ipea-v1")[1] == b"\x00weights-v1"
    assert store.load_model()[0].model_id == "soap-baseline-v1"  # newest of all
    assert [m.model_id for m in store.list_models()] == ["lsoap-ipea-v1", "lsoap-ipea-v2", "soap-baseline-v1"]

    with pytest.raises(BandflowError, match="no model stored with model_id 'nope'"):
        store.load_model(model_id="nope")
    with pytest.raises(BandflowError, match="is stored already"):
        store.save_model(base.model_copy(update={"model_id": "lsoap-ipea-v1"}), b"x")
    with pytest.raises(BandflowError, match="non-empty bytes"):
        store.save_model(base, b"")
    assert store.models.count() == 3 and store.model_weights.count() == 3  # nothing half-written

    blob = store.model_weights.query_one({"model_id": "lsoap-ipea-v1"})
    store.model_weights.update({**blob, "weights_b64": "AAAA"}, key="model_id")
    with pytest.raises(BandflowError, match="corrupt"):
        store.load_model(model_id="lsoap-ipea-v1")


def test_mongo_backend_has_unique_indexes():
    store = BandflowStore.in_memory()
    surfaces = store.surfaces._collection.index_information()
    assert surfaces["surface_protocol"]["unique"] and {"formula_1", "chemsys_1", "miller_index_1"} <= set(surfaces)
    assert store.predictions._collection.index_information()["surface_model"]["unique"]
    assert store.models._collection.index_information()["name_version"]["unique"]


def test_counts_and_query_cli(data_dir):
    store = BandflowStore.from_settings()
    store.upsert_surface(mgo())
    store.upsert_surface(mgo("MgO-111-0", miller_index=[1, 1, 1], state="failed", failure_reason="x", ip=None, ea=None))
    store.upsert_prediction(prediction())
    assert store.counts() == {"surfaces_successful": 1, "surfaces_failed": 1, "predictions": 1, "models": 0,
                              "job_outputs": 0}
    runner = CliRunner()
    result = runner.invoke(app, ["query", "--formula", "MgO", "--miller", "1", "0", "0", "--json"])
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(result.stdout)
    assert [(r["id"], r["formula"], r["miller_index"], r["ip"], r["ea"], r["protocol"]) for r in rows] == [
        ("MgO-100-0", "MgO", [1, 0, 0], 7.1, 1.2, "fast")]
    csv_lines = runner.invoke(app, ["query", "--state", "all", "--csv"]).stdout.splitlines()
    assert csv_lines[0].startswith("id,formula,miller_index") and len(csv_lines) == 3 and "1 1 1" in csv_lines[2]
    predictions = json.loads(runner.invoke(app, ["query", "--predictions", "--json"]).stdout)
    assert predictions[0]["model_id"] == "lsoap-v1" and predictions[0]["id"] == "MgO-100-0"
    table = runner.invoke(app, ["query"]).stdout
    assert "MgO-100-0" in table and "7.10" in table
    bad = runner.invoke(app, ["query", "--formula", "Mg"])
    assert isinstance(bad.exception, BandflowError)


def test_unreachable_mongodb_gives_one_clear_error_without_password(data_dir, monkeypatch, settings_env):
    monkeypatch.setattr("bandflow.store.MONGO_TIMEOUT_MS", 300)
    settings_env(BANDFLOW_STORE_URI="mongodb://bandflow:Sup3r%40Secret@127.0.0.1:1/results?authSource=admin")
    start = time.perf_counter()
    with pytest.raises(BandflowError) as info:
        BandflowStore.from_settings()
    message = str(info.value)
    assert time.perf_counter() - start < 10
    assert "Sup3r" not in message and "Secret" not in message and "\n" not in message
    assert message.startswith("cannot use the MongoDB at mongodb://bandflow:***@127.0.0.1:1/results")
    with pytest.raises(BandflowError) as info:
        BandflowStore.from_uri("mongodb://user:hunter2@", timeout_ms=300)  # not even a valid URI
    assert "hunter2" not in str(info.value)
    assert redact_uri("mongodb+srv://u:p@x.example.org/db") == "mongodb+srv://u:***@x.example.org/db"
    assert redact_uri("mongodb://host:27017/db") == "mongodb://host:27017/db"


def test_jobflow_config_points_workers_at_the_same_store(data_dir, tmp_path):
    store = BandflowStore.from_settings()
    path = store.write_jobflow_config(tmp_path / "jobflow.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    worker = (
        "from jobflow import SETTINGS\n"
        "store = SETTINGS.JOB_STORE\n"
        "store.connect()\n"
        "print(type(store.docs_store).__name__)\n"
        "store.docs_store.update({'uuid': 'from-worker', 'index': 1, 'output': 42}, key=['uuid', 'index'])\n"
    )
    env = {**os.environ, "JOBFLOW_CONFIG_FILE": str(path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", worker], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "LockedMontyStore"
    assert store.job_store.query_one({"uuid": "from-worker"})["output"] == 42


def _open_fresh_store_and_write(path: str, key: int) -> None:
    store = LockedMontyStore("docs", database_path=path, storage="sqlite")
    store.connect()
    store.update({"k": key}, key="k")


def test_many_processes_opening_a_new_montydb_store(tmp_path):
    """16 processes connect to a store that does not exist yet and write (plain MontyStore: ~25 % crash)."""
    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "fresh")
    workers = [context.Process(target=_open_fresh_store_and_write, args=(path, k)) for k in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 16
    check = LockedMontyStore("docs", database_path=path, storage="sqlite")
    check.connect()
    assert sorted(d["k"] for d in check.query()) == list(range(16))


def _connect_and_write(worker: int, n_docs: int) -> None:
    get_settings.cache_clear()
    store = BandflowStore.from_settings()
    for i in range(n_docs):
        store.upsert_surface(mgo(f"MgO-w{worker}-{i}"))
    store.upsert_surface(mgo("MgO-shared", ip=7.0 + worker / 100))
    store.save_model(ModelDoc(name="shared", descriptor="soap", code_version="0"), f"w{worker}".encode())
    store.close()


def test_concurrent_processes_connect_and_write_safely(data_dir):
    """8 processes connect at once (montydb rewrites its config on connect) and write: nothing lost."""
    n_workers, n_docs = 8, 5
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_connect_and_write, args=(w, n_docs)) for w in range(n_workers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * n_workers
    store = BandflowStore.from_settings()
    assert store.surfaces.count() == n_workers * n_docs + 1
    assert store.surfaces.count({"surface_id": "MgO-shared"}) == 1
    assert sorted(m.version for m in store.list_models("shared")) == list(range(1, n_workers + 1))


def test_a_signal_during_a_job_store_write_waits_until_document_and_outputs_are_written(monkeypatch):
    """SIGTERM between jobflow's write of a job document and of its additional-store output used to leave a
    document pointing at nothing; the store holds the signal until both are written, then acts on it."""
    import os
    import signal

    from jobflow.core.schemas import JobStoreDocument

    store = BandflowStore.in_memory()
    store.job_store.connect()
    real_update = store.job_store.docs_store.update

    def update_then_signal(*args, **kwargs):
        real_update(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives after the document, before its outputs

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        monkeypatch.setattr(store.job_store.docs_store, "update", update_then_signal)
        document = JobStoreDocument(uuid="u1", index=1, output={"trajectory": [1, 2, 3]}, completed_at="2026-12-07",
                                    metadata={}, hosts=[], name="relax")
        with pytest.raises(SystemExit) as stopped:
            store.job_store.update(document.model_dump(), key=["uuid", "index"], save={"data": "trajectory"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.value.code == 143
    assert store.job_store.get_output("u1", load=True)["trajectory"] == [1, 2, 3]
    assert dangling_jobs(store.job_store) == []
    store.job_store.additional_stores["data"].remove_docs({})  # what a SIGKILL in that moment leaves
    assert dangling_jobs(store.job_store) == [("u1", 1, "relax")]
    assert dangling_jobs(store.job_store, older_than_s=10 ** 12) == []  # a write that may still be going on


def test_dangling_jobs_looks_only_at_the_jobs_it_is_given(store):
    """A run scans only its campaign's jobs (a shared database holds many others); a document whose object is
    there is not reported; on both backends (montydb filters here, MongoDB in the query)."""
    from jobflow.core.schemas import JobStoreDocument

    store.job_store.connect()
    for uuid in ("ours", "ours-intact", "someone-elses"):
        document = JobStoreDocument(uuid=uuid, index=1, output={"trajectory": [1]}, completed_at="2026-12-07",
                                    metadata={}, hosts=[], name=uuid)
        store.job_store.update(document.model_dump(), key=["uuid", "index"], save={"data": "trajectory"})
    blobs = store.job_store.additional_stores["data"]
    for uuid in ("ours", "someone-elses"):
        ref = store.job_store.docs_store.query_one({"uuid": uuid})["output"]["trajectory"]["blob_uuid"]
        blobs.remove_docs({"blob_uuid": ref})
    assert sorted(dangling_jobs(store.job_store)) == [("ours", 1, "ours"), ("someone-elses", 1, "someone-elses")]
    assert dangling_jobs(store.job_store, uuids=["ours", "ours-intact"]) == [("ours", 1, "ours")]
    assert dangling_jobs(store.job_store, uuids=[]) == []


def test_dangling_jobs_reads_no_stored_object(monkeypatch):
    """On MongoDB the objects are in GridFS, where a query for their ``blob_uuid`` downloads each one (maggma
    reads the file unless every asked property is a top-level field of it): the check must not query them."""
    from jobflow.core.schemas import JobStoreDocument

    store = BandflowStore.in_memory()
    store.job_store.connect()
    document = JobStoreDocument(uuid="u1", index=1, output={"trajectory": [1]}, completed_at="2026-12-07",
                                metadata={}, hosts=[], name="relax")
    store.job_store.update(document.model_dump(), key=["uuid", "index"], save={"data": "trajectory"})

    def download(*args, **kwargs):
        raise AssertionError("a stored object was read")

    monkeypatch.setattr(store.job_store.additional_stores["data"], "query", download)
    assert dangling_jobs(store.job_store, uuids=["u1"]) == []


def test_mongo_backend_indexes_the_job_lookups():
    store = BandflowStore.in_memory()
    assert "uuid_1" in store.job_store.docs_store._collection.index_information()
    assert "blob_uuid_1" in store.job_store.additional_stores["data"]._collection.index_information()
