"""Campaign checkpoints: a run stopped before its alignments continues in another store without recomputing."""

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bandflow.checkpoint import (
    BLOB_LOCATIONS,
    checkpoint_documents,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.runner import run_campaign
from bandflow.spec import load_spec
from bandflow.store import BandflowStore
from tests.engines_for_tests import EXPECTED_EA, EXPECTED_IP
from tests.test_flows import executions, write_spec


def fresh_store(tmp_path: Path, settings_env, name: str) -> BandflowStore:
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / name))
    return BandflowStore.from_settings()


def stop_before_alignment(store: BandflowStore) -> None:
    """The state of a campaign killed after its bulk and slab steps: no alignment, no surface document."""
    store.job_store.remove_docs({"metadata.bandflow_step": "alignment"})
    store.surfaces.remove_docs({})


def test_checkpoint_carries_bulk_and_slab_work_to_a_new_store(store, tmp_path, settings_env):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    first = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    n_surfaces = len(first)
    assert checkpoint_documents(spec, store) == []  # all aligned: nothing to carry
    stale = tmp_path / "ckpt.jsonl.gz"
    stale.write_bytes(b"an earlier checkpoint")
    assert save_checkpoint(spec, store, stale) == 0 and stale.exists()  # kept unless asked
    assert save_checkpoint(spec, store, stale, remove_when_empty=True) == 0 and not stale.exists()

    stop_before_alignment(store)
    docs = checkpoint_documents(spec, store)
    steps = sorted(d["metadata"]["bandflow_step"] for d in docs)
    # the relaxations are left out: their structure jobs ran, so nothing reads them
    assert steps == ["bulk_edges"] + ["slab_potential"] * n_surfaces + ["slab_structure"] * n_surfaces
    assert save_checkpoint(spec, store, tmp_path / "ckpt.jsonl.gz") == len(docs)

    fresh = fresh_store(tmp_path, settings_env, "fresh")
    ran_before = executions(tmp_path)
    assert load_checkpoint(fresh, read_checkpoint(tmp_path / "ckpt.jsonl.gz")) == len(docs)
    summary = run_campaign(spec, store=fresh, progress=False)
    assert not summary.failed and summary.ran == n_surfaces  # the alignments only
    assert executions(tmp_path) == ran_before  # no engine step ran again
    aligned = {d.surface_id: d for d in fresh.query_surfaces(protocol="fast")}
    assert aligned.keys() == first.keys()
    for surface_id, doc in aligned.items():  # the same numbers as the uninterrupted run
        assert doc.ip == pytest.approx(first[surface_id].ip) and doc.ea == pytest.approx(first[surface_id].ea)
        assert doc.ip == pytest.approx(EXPECTED_IP, abs=0.05) and doc.ea == pytest.approx(EXPECTED_EA, abs=0.05)
        assert doc.extra["wall_time"] == first[surface_id].extra["wall_time"]


def test_a_finished_alignment_without_its_document_is_not_carried(store, tmp_path):
    """Its surface document is what ``export`` carries; a carried alignment job would block it for good."""
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    store.surfaces.remove_docs({})  # the documents are gone, the alignment jobs are not
    steps = [d["metadata"]["bandflow_step"] for d in checkpoint_documents(spec, store)]
    assert "alignment" not in steps and "bulk_edges" in steps and "slab_potential" in steps


def test_outputs_in_an_additional_store_go_back_there(store, tmp_path, settings_env):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    stop_before_alignment(store)
    potential = store.job_store.query_one({"metadata.bandflow_step": "slab_potential"}, load=True)
    potential = {k: v for k, v in potential.items() if k != "_id"}
    key = next(iter(potential["output"]))
    store.job_store.update(potential, key=["uuid", "index"], save={"data": [key]})  # as a large output would be
    assert "blob_uuid" in store.job_store.query_one({"uuid": potential["uuid"]}, load=False)["output"][key]

    carried = next(d for d in checkpoint_documents(spec, store) if d["uuid"] == potential["uuid"])
    assert carried[BLOB_LOCATIONS] == {"data": [["output", key]]}
    assert carried["output"][key] == potential["output"][key]  # the value itself travels in the file
    other = fresh_store(tmp_path, settings_env, "other")
    with pytest.raises(BandflowError, match="additional stores this job store does not have: nostore"):
        load_checkpoint(other, [{**carried, "uuid": "first"}, {**carried, BLOB_LOCATIONS: {"nostore": [["output"]]}}])
    assert other.job_store.query_one({"uuid": "first"}) is None  # nothing loaded
    load_checkpoint(other, [carried])
    assert "blob_uuid" in other.job_store.query_one({"uuid": potential["uuid"]}, load=False)["output"][key]
    assert other.job_store.query_one({"uuid": potential["uuid"]}, load=True)["output"][key] == potential["output"][key]


def test_a_carried_relaxation_keeps_only_its_final_ionic_step(store, tmp_path, settings_env):
    """A run killed between a relaxation and its structure job: the trajectory does not travel, the result does."""
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    first = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    stop_before_alignment(store)
    store.job_store.remove_docs({"metadata.bandflow_step": "slab_structure"})
    relaxations = []
    for doc in store.job_store.query({"metadata.bandflow_step": "slab_relax"}, load=True):
        doc = {k: v for k, v in doc.items() if k != "_id"}
        final = doc["output"]
        steps = [{"structure": final, "energy": -1.0 * i} for i in range(3)]
        doc["output"] = {"output": {"structure": final, "ionic_steps": steps}}  # atomate2's task document shape
        store.job_store.update(doc, key=["uuid", "index"])
        relaxations.append(doc)
    assert relaxations

    carried = [d for d in checkpoint_documents(spec, store) if d["metadata"]["bandflow_step"] == "slab_relax"]
    assert len(carried) == len(relaxations)
    for doc in carried:
        assert doc["output"]["output"]["ionic_steps"] == [{"structure": doc["output"]["output"]["structure"],
                                                           "energy": -2.0}]
    assert len(store.job_store.query_one({"metadata.bandflow_step": "slab_relax"}, load=True)["output"]["output"]
               ["ionic_steps"]) == 3  # the origin store keeps the whole trajectory

    save_checkpoint(spec, store, tmp_path / "ckpt.jsonl.gz")
    fresh = fresh_store(tmp_path, settings_env, "fresh")
    load_checkpoint(fresh, read_checkpoint(tmp_path / "ckpt.jsonl.gz"))
    assert not run_campaign(spec, store=fresh, progress=False).failed
    for doc in fresh.query_surfaces(protocol="fast"):  # the structure job read the carried final structure
        assert doc.ip == pytest.approx(first[doc.surface_id].ip)


@pytest.mark.parametrize(("content", "message"), [
    (json.dumps({"uuid": "u1", "index": 1, "output": {}, "completed_at": "x"}) + "\n{not json\n",
     r"bad.jsonl.gz:2: not JSON"),
    (json.dumps({"uuid": "u2", "output": {}}) + "\n", r"bad.jsonl.gz:1: not a job document \(no index, completed_at\)"),
    # the value types too, before anything is stored: a bad second line must not leave the first one loaded
    (json.dumps({"uuid": "u1", "index": 1, "output": {}, "completed_at": "x"}) + "\n"
     + json.dumps({"uuid": {"$bad": 1}, "index": 1, "output": {}, "completed_at": "x"}) + "\n",
     r"bad.jsonl.gz:2: not a job document \(uuid is not a string\)"),
    (json.dumps({"uuid": "u3", "index": "1", "output": {}, "completed_at": "x"}) + "\n",
     r"bad.jsonl.gz:1: not a job document \(index is not an integer\)"),
    (json.dumps({"uuid": "u4", "index": 1, "output": {}, "completed_at": "x", "bandflow_blob_locations": ["data"]})
     + "\n", r"bad.jsonl.gz:1: not a job document \(bandflow_blob_locations is not"),
])
def test_a_bad_checkpoint_line_is_named(tmp_path, content, message):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(content)
    with pytest.raises(BandflowError, match=message):
        read_checkpoint(path)


def test_an_unreadable_checkpoint_is_one_error(tmp_path):
    with pytest.raises(BandflowError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.jsonl.gz")
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(gzip.compress(b'{"uuid": "u1"}\n' * 200)[:10] + b"\xff" * 40)  # header, then junk
    with pytest.raises(BandflowError, match="cannot read"):
        read_checkpoint(damaged)


def test_checkpoint_commands(store, tmp_path, monkeypatch, settings_env, capsys):
    from bandflow.cli import main

    spec_path = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(spec_path), store=store, progress=False)
    runner = CliRunner()
    nothing = runner.invoke(app, ["checkpoint", "save", str(spec_path), str(tmp_path / "c.jsonl.gz")])
    assert isinstance(nothing.exception, BandflowError) and "nothing written" in str(nothing.exception)
    assert not (tmp_path / "c.jsonl.gz").exists()
    stop_before_alignment(store)
    saved = runner.invoke(app, ["checkpoint", "save", str(spec_path), str(tmp_path / "c.jsonl.gz")])
    assert saved.exit_code == 0, saved.output
    n = len(read_checkpoint(tmp_path / "c.jsonl.gz"))
    assert f"wrote {n} job documents" in saved.output

    other = fresh_store(tmp_path, settings_env, "other")
    loaded = runner.invoke(app, ["checkpoint", "load", str(tmp_path / "c.jsonl.gz")])
    assert loaded.exit_code == 0 and f"loaded {n} job documents" in loaded.output, loaded.output
    assert other.job_store.count() == n

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "never"))
    monkeypatch.setattr("sys.argv", ["bandflow", "checkpoint", "load", str(tmp_path / "none.jsonl.gz")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path / 'none.jsonl.gz'}"
    assert not (tmp_path / "never").exists()  # the store was not even created
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for command in (["checkpoint", "load", str(empty)], ["import", str(empty)], ["import", str(tmp_path / "none")]):
        monkeypatch.setattr("sys.argv", ["bandflow", *command])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()  # no store for a file with nothing to put in it
