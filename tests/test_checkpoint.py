"""Campaign checkpoints: a run stopped before its alignments continues in another store without recomputing."""

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bandflow.checkpoint import checkpoint_documents, load_checkpoint, read_checkpoint, save_checkpoint
from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.runner import run_campaign
from bandflow.settings import get_settings
from bandflow.spec import load_spec
from bandflow.store import BandflowStore
from tests.engines_for_tests import EXPECTED_EA, EXPECTED_IP
from tests.test_flows import executions, write_spec


def fresh_store(tmp_path: Path, monkeypatch, name: str) -> BandflowStore:
    monkeypatch.setenv("BANDFLOW_DATA_DIR", str(tmp_path / name))
    get_settings.cache_clear()
    return BandflowStore.from_settings()


def stop_before_alignment(store: BandflowStore) -> None:
    """The state of a campaign killed after its bulk and slab steps: no alignment, no surface document."""
    store.job_store.remove_docs({"metadata.bandflow_step": "alignment"})
    store.surfaces.remove_docs({})


def test_checkpoint_carries_bulk_and_slab_work_to_a_new_store(store, tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    first = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    n_surfaces = len(first)
    assert save_checkpoint(spec, store, tmp_path / "ckpt.jsonl.gz") == 0  # all aligned: nothing to carry
    assert not (tmp_path / "ckpt.jsonl.gz").exists()

    stop_before_alignment(store)
    docs = checkpoint_documents(spec, store)
    steps = sorted(d["metadata"]["bandflow_step"] for d in docs)
    # the relaxations are left out: their structure jobs ran, so nothing reads them
    assert steps == ["bulk_edges"] + ["slab_potential"] * n_surfaces + ["slab_structure"] * n_surfaces
    assert save_checkpoint(spec, store, tmp_path / "ckpt.jsonl.gz") == len(docs)

    fresh = fresh_store(tmp_path, monkeypatch, "fresh")
    ran_before = executions(tmp_path)
    assert load_checkpoint(fresh, tmp_path / "ckpt.jsonl.gz") == len(docs)
    summary = run_campaign(spec, store=fresh, progress=False)
    assert not summary.failed and summary.ran == n_surfaces  # the alignments only
    assert executions(tmp_path) == ran_before  # no engine step ran again
    aligned = {d.surface_id: d for d in fresh.query_surfaces(protocol="fast")}
    assert aligned.keys() == first.keys()
    for surface_id, doc in aligned.items():  # the same numbers as the uninterrupted run
        assert doc.ip == pytest.approx(first[surface_id].ip) and doc.ea == pytest.approx(first[surface_id].ea)
        assert doc.ip == pytest.approx(EXPECTED_IP, abs=0.05) and doc.ea == pytest.approx(EXPECTED_EA, abs=0.05)
        assert doc.extra["wall_time"] == first[surface_id].extra["wall_time"]
    get_settings.cache_clear()


def test_a_bad_checkpoint_line_is_named_and_nothing_is_loaded(store, tmp_path):
    good = {"uuid": "u1", "index": 1, "output": {"x": 1}, "completed_at": "2026-12-04T10:00:00"}
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(good) + "\n" + json.dumps({"uuid": "u2", "output": {}}) + "\n")
    with pytest.raises(BandflowError, match=r"bad.jsonl.gz:2: not a job document \(no index, completed_at\)"):
        load_checkpoint(store, path)
    assert store.job_store.count() == 0
    with pytest.raises(BandflowError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.jsonl.gz")


def test_checkpoint_commands(store, tmp_path, monkeypatch):
    spec_path = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(spec_path), store=store, progress=False)
    stop_before_alignment(store)
    runner = CliRunner()
    saved = runner.invoke(app, ["checkpoint", "save", str(spec_path), str(tmp_path / "c.jsonl.gz")])
    assert saved.exit_code == 0 and "wrote" in saved.output, saved.output
    fresh_store(tmp_path, monkeypatch, "other")
    loaded = runner.invoke(app, ["checkpoint", "load", str(tmp_path / "c.jsonl.gz")])
    assert loaded.exit_code == 0 and "loaded" in loaded.output, loaded.output
    missing = runner.invoke(app, ["checkpoint", "load", str(tmp_path / "none.jsonl.gz")])
    assert missing.exit_code != 0
    get_settings.cache_clear()
