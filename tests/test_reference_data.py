"""The committed reference data (data/reference/) matches the committed campaign specs.

A code change that alters a job's uuid (a new default setting, a renamed step) silently orphans computed
work: the runner would compute every surface again. These tests name the documents and checkpointed jobs
that the present flows no longer produce; after a deliberate change of method, re-export with
``tools/reference_dataset.py`` (out-of-date documents move to ``pending/`` until re-aligned).
"""

import json
import sys
from pathlib import Path

import pytest

from bandflow.checkpoint import read_checkpoint
from bandflow.cp2k.parsing import parse_output
from bandflow.cp2k.reuse import kept_run_keys, load_kept_runs, runs_folder
from bandflow.dataset import read_json_lines, read_surfaces
from bandflow.flows import campaign_flow, plan_campaign
from bandflow.ml.transfer import BASELINE, SOURCE_AS_IS
from bandflow.runner import expected_job_uuids, is_current
from bandflow.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "data" / "reference"
SPECS = {"binary_oxides": ROOT / "workflows" / "binary_oxides.yaml",
         "ternary_oxides": ROOT / "workflows" / "ternary_oxides.yaml"}


def _tool(name: str):
    """tools/<name>.py as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_model():
    return _tool("reference_model")


@pytest.fixture(scope="module")
def flows() -> dict:
    """Per campaign name: (protocol, jobs in order) of the committed spec's flow."""
    out = {}
    for name, path in SPECS.items():
        spec = load_spec(path)
        out[name] = (spec.protocol, list(campaign_flow(spec, plan_campaign(spec)).iterflow()))
    return out


def _campaign(path: Path, flows: dict) -> tuple[str, list]:
    name, _, protocol = path.name.removesuffix(".jsonl.gz").rpartition("_")
    assert name in flows, f"{path.name}: no campaign spec named {name}"
    assert protocol == flows[name][0], f"{path.name}: the spec's protocol is {flows[name][0]}"
    return name, flows[name][1]


def test_committed_surfaces_are_current_for_their_specs(flows):
    files = sorted(REFERENCE.glob("*.jsonl.gz"))
    assert files, "no committed reference dataset"
    for path in files + sorted(REFERENCE.glob("failures/*.jsonl.gz")):  # a failure records the job that failed
        _, ordered = _campaign(path, flows)
        wanted = expected_job_uuids(ordered)
        stale = [d.surface_id for d in read_surfaces(path) if not is_current(d, wanted)]
        assert not stale, f"{path.name}: {len(stale)} documents not produced by the present flow, e.g. {stale[:3]}"


def test_committed_checkpoints_name_jobs_of_their_specs(flows):
    """Vacuous when no campaign has unfinished work (then no checkpoint is committed)."""
    for path in sorted((REFERENCE / "checkpoints").glob("*.jsonl.gz")):
        _, ordered = _campaign(path, flows)
        steps = {job.uuid: job.metadata.get("bandflow_step") for job, _ in ordered}
        docs = read_checkpoint(path)
        orphans = [d["uuid"] for d in docs if d["uuid"] not in steps]
        assert not orphans, f"{path.name}: {len(orphans)} job documents not in the present flow"
        assert not [d for d in docs if steps[d["uuid"]] == "alignment"], "alignments travel as surface documents"


def test_committed_run_archives_are_finished_cp2k_runs(tmp_path, settings_env):
    """Vacuous when no bulk job is stopped inside its hybrid run (then no archive is committed)."""
    folder = REFERENCE / "checkpoints" / "finished_runs"
    if not folder.is_dir():
        return
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path))
    assert load_kept_runs(folder) == len(list(folder.glob("*.tar.gz"))) == len(kept_run_keys())
    for key in kept_run_keys():
        summary = parse_output(runs_folder() / key / "cp2k.out")
        assert summary.failure_reason() is None and summary.wall_time > 0, key


def test_transfer_page_names_a_test_gap_outside_the_ternary_training_range():
    module = _reference_model()
    gaps = {"MgSiO3": 7.96, "MgTiO3": 5.23, "Mg2SiO4": 6.41, "BeO": 9.29}
    outside = module._gap_ranges(gaps, ["MgSiO3"], ["MgSiO3", "MgTiO3", "Mg2SiO4"])
    assert "other ternary compounds 5.23–6.41 eV" in outside and "binary ones 9.29–9.29 eV" in outside
    assert outside.endswith("MgSiO3 lies outside the ternary training range.")
    assert module._gap_ranges({**gaps, "MgSiO3": 6.0}, ["MgSiO3"], ["MgSiO3", "MgTiO3", "Mg2SiO4"]).endswith("into EA.")
    # polymorphs keep a gap each: both TiO2 gaps count in the binary span, both are shown for a test formula
    polymorphs = module._gap_ranges({**gaps, "TiO2": [3.05, 3.60]}, ["MgSiO3"], ["MgSiO3", "MgTiO3", "Mg2SiO4"])
    assert "binary ones 3.05–9.29 eV" in polymorphs
    shown = module._gap_ranges({"MgTiO3": [4.0, 6.0], "Mg2SiO4": [5.0]}, ["MgTiO3"], ["MgTiO3", "Mg2SiO4"])
    assert "test MgTiO3 4.00 / 6.00 eV" in shown and shown.endswith("MgTiO3 lies outside the ternary training range.")


def test_model_page_says_whether_the_campaign_targets_are_met():
    module = _reference_model()
    results = {"n_binary": 300, "binary_compounds": [f"X{i}O" for i in range(25)],
               "n_ternary": 80, "ternary_compounds": [f"AB{i}O3" for i in range(10)]}
    assert module._growth_sentence(results).startswith("The dataset has reached the targets of its campaign")
    assert "with 25 binary compounds the numbers describe these compounds" in module._growth_sentence(results)
    for short in ({"n_binary": 299}, {"ternary_compounds": [f"AB{i}O3" for i in range(9)]}):
        assert "still growing toward its targets (≥ 300 binary surfaces of ≥ 25 formulas, ≥ 80 ternary of ≥ 10)" in (
            module._growth_sentence({**results, **short}))


def test_model_page_states_the_seed_spread_of_the_cross_validation():
    module = _reference_model()

    def cv(ip_a: float, ip_b: float, ea_a: float, ea_b: float) -> dict:
        folds = [{"compound": "A", "model": {"ip": {"mae": ip_a}, "ea": {"mae": ea_a}}},
                 {"compound": "B", "model": {"ip": {"mae": ip_b}, "ea": {"mae": ea_b}}}]
        return {"overall": {"model": {"ip": {"mae": (ip_a + ip_b) / 2}, "ea": {"mae": (ea_a + ea_b) / 2}}},
                "folds": folds}

    runs = [module.seed_summary(cv(1.0, 0.5, 0.2, 2.0), 0), module.seed_summary(cv(3.0, 0.6, 0.3, 1.0), 1)]
    assert runs[1] == {"seed": 1, "ip": 1.8, "ea": 0.65, "folds": {"A": {"ip": 3.0, "ea": 0.3},
                                                                  "B": {"ip": 0.6, "ea": 1.0}}}
    text = module.seed_spread_sentence(runs)
    assert "was run 2 times" in text and "Overall IP MAE 0.75–1.80 eV, EA 0.65–1.10 eV" in text
    assert "IP MAE moves most for A (1.00–3.00 eV) and the EA MAE for B (1.00–2.00 eV)" in text


def test_model_page_gives_the_transfer_means_and_ranges_over_repeats():
    module = _reference_model()

    def point(ip: list[float], ea: list[float]) -> dict:
        each = [{"ip": {"mae": a}, "ea": {"mae": b}} for a, b in zip(ip, ea, strict=True)]
        return {"fraction": 0.5, "n_train": 7, "test_each": each,
                "test": {"ip": {"mae": sum(ip) / len(ip)}, "ea": {"mae": sum(ea) / len(ea)}},
                "test_range": {"ip": [min(ip), max(ip)], "ea": [min(ea), max(ea)]}}

    transfer = {"n_target": 30, "repeats": 2, "n_test": 8, "test_groups": ["A", "B", "C"],
                "splits": [{"seed": 0, "n_test": 9, "test_groups": ["A"]},
                           {"seed": 1, "n_test": 7, "test_groups": ["B", "C"]}],
                "curves": [{"method": "L-SOAP fine-tuned", "points": [point([0.5, 1.5], [0.25, 0.75])]},
                           {"method": SOURCE_AS_IS, "points": [point([1.0, 1.0], [2.0, 2.0])]},
                           {"method": BASELINE, "points": [point([0.9, 1.6], [1.0, 1.0])]}],
                "bulk_gaps": {"A": [9.0], "B": [5.0], "C": [6.0], "D": [5.5]}}
    text = "\n".join(module.transfer_section(transfer, ["A", "B", "C", "D"]))
    assert "run 2 times" in text and "A (9 surfaces); B, C (7 surfaces)" in text
    assert "| L-SOAP fine-tuned | 1.00 (0.50–1.50) |" in text and "| L-SOAP fine-tuned | 0.50 (0.25–0.75) |" in text
    assert "| method | 50% (7) |" in text and "mean over the repeats, in brackets their range" in text
    # paired: the better reference is 0.90 then 1.00 for IP, so the method wins repeat 1 and loses repeat 2
    assert "**Transfer verdict now** (paired" in text and "in 1 of 2 repeats (mean gain -0.05 eV" in text
    assert "EA: L-SOAP fine-tuned, the best learnt method (0.50 eV against 1.00 eV" in text
    # repeat 1 trains on B, C, D (5.0–6.0 eV), so A (9.0) lies outside; repeat 2 on A, D (5.5–9.0): B (5.0) outside, C not
    assert text.rstrip().endswith("outside those their repeat trained on: A (repeat 1), B (repeat 2).")
    # a metrics file of one study (no repeats) still renders, without ranges
    single = {k: v for k, v in transfer.items() if k not in ("repeats", "splits")}
    single["curves"] = [{"method": "L-SOAP fine-tuned", "points": [{"fraction": 0.5, "n_train": 7,
                                                                    "test": {"ip": {"mae": 1.0}, "ea": {"mae": 0.5}}}]},
                        *({"method": c["method"], "points": [{k: v for k, v in c["points"][0].items()
                                                              if k not in ("test_each", "test_range")}]}
                          for c in transfer["curves"][1:])]
    text = "\n".join(module.transfer_section(single, ["A", "B", "C", "D"]))
    assert "| L-SOAP fine-tuned | 1.00 |" in text and "not meaningful" in text and "(0." not in text.split("Columns")[0]
    assert "in 0 of 1 repeat (mean gain +0.00 eV" in text and "run more repeats" in text  # a tie is no win


def test_committed_model_page_is_what_its_committed_metrics_render_to(tmp_path, monkeypatch, capsys):
    module = _reference_model()
    metrics = ROOT / "data" / "reference" / "model_metrics.json"
    page = tmp_path / "reference-model.md"
    monkeypatch.setattr(module, "PAGE", page)
    monkeypatch.setattr(sys, "argv", ["reference_model.py", "--page-only"])
    assert module.main() == 0
    assert page.read_text() == (ROOT / "docs" / "reference-model.md").read_text() and metrics.exists()
    monkeypatch.setattr(module, "DATA", tmp_path / "nothing")
    assert module.main() == 2
    assert "run without --page-only first" in capsys.readouterr().err


def test_datasheet_states_the_targets_against_the_committed_files():
    from types import SimpleNamespace

    module = _tool("reference_dataset")
    docs = [d for path in sorted(REFERENCE.glob("*.jsonl.gz")) for d in read_surfaces(path) if d.state == "successful"]
    line = module.targets_line(docs)
    assert line.startswith("- targets of the reference campaign: binary ") and line in (REFERENCE / "README.md").read_text()
    made = [SimpleNamespace(n_cation_species=1, formula=f"X{i % 25}O") for i in range(300)]
    made += [SimpleNamespace(n_cation_species=2, formula=f"AB{i % 9}O3") for i in range(90)]
    assert module.targets_line(made) == ("- targets of the reference campaign: binary 300 of ≥ 300 surfaces, 25 of ≥ 25 "
                                         "formulas (met); ternary 90 of ≥ 80 surfaces, 9 of ≥ 10 formulas")


def test_reference_export_is_stable_across_an_import_on_a_fresh_machine(tmp_path):
    """Re-importing the committed files marks the documents "import" with a new updated_at; the export keeps
    "bandflow" and the committed updated_at of every document whose content did not change."""
    from bandflow.dataset import write_json_lines

    tool = _tool("reference_dataset")
    path = tmp_path / "campaign_fast.jsonl.gz"
    committed = [{"surface_id": "a", "ip": 7.0, "source": "bandflow", "updated_at": "2026-12-01T00:00:00Z"},
                 {"surface_id": "b", "ip": 8.0, "source": "import", "updated_at": "2026-12-02T00:00:00Z"}]
    write_json_lines(committed, path)
    now = "2026-12-06T10:30:00Z"
    fresh = [{"surface_id": "a", "ip": 7.0, "source": "import", "updated_at": now},  # read back, unchanged
             {"surface_id": "b", "ip": 8.5, "source": "import", "updated_at": now},  # re-aligned since
             {"surface_id": "c", "ip": 9.0, "source": "bandflow", "updated_at": now}]  # new
    kept = list(tool.stable_records(fresh, path))
    assert [(r["surface_id"], r["source"], r["updated_at"]) for r in kept] == [
        ("a", "bandflow", "2026-12-01T00:00:00Z"), ("b", "bandflow", now), ("c", "bandflow", now)]
    assert [r["ip"] for r in kept] == [7.0, 8.5, 9.0]
    assert [r["source"] for r in tool.stable_records([dict(fresh[0])], tmp_path / "none.jsonl.gz")] == ["bandflow"]


def test_reference_export_writes_nothing_from_a_store_that_lacks_the_committed_surfaces(store, tmp_path, monkeypatch,
                                                                                          capsys, settings_env):
    """Run against the wrong store (BANDFLOW_DATA_DIR unset: an empty one) or one that lacks part of the
    dataset, the export stops with one error line and leaves every committed file as it was; with
    --drop-missing it writes what the store has."""
    from typer.testing import CliRunner

    from bandflow.cli import app
    from bandflow.dataset import write_json_lines
    from bandflow.runner import run_campaign
    from tests.test_flows import write_spec

    tool = _tool("reference_dataset")
    out = tmp_path / "reference"
    monkeypatch.setattr(tool, "OUT", out)
    spec_file = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(spec_file), store=store, progress=False)
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file)])
    assert tool.main() == 0
    dataset = out / "test_fast.jsonl.gz"
    n_surfaces = len(read_surfaces(dataset))
    assert n_surfaces >= 2
    assert not (out / "README.md").exists()  # the datasheet covers every reference campaign, not this one alone
    committed = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def unchanged() -> bool:
        return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == committed

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "empty"))
    assert tool.main() == 2 and unchanged()
    assert "no successful surfaces of these campaigns in the store" in capsys.readouterr().err

    part = tmp_path / "part.jsonl.gz"
    write_json_lines([json.loads(line) for _, line in read_json_lines(dataset)][:1], part)
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "partial"))
    assert CliRunner().invoke(app, ["import", str(part)]).exit_code == 0
    assert tool.main() == 2 and unchanged()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"lacks {n_surfaces - 1} surfaces of {dataset}" in err[0] and "--drop-missing" in err[0]

    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file), "--drop-missing"])
    assert tool.main() == 0 and len(read_surfaces(dataset)) == 1

    # a job document whose additional-store output was never written (a runner killed mid-write): nothing written
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"))  # the campaign's own store again
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file), "--drop-missing"])
    assert tool.main() == 0
    committed = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    relax = store.job_store.docs_store.query_one({"metadata.bandflow_step": "slab_relax"})
    relax.pop("_id", None)
    relax["output"] = {"@module": "jobflow.core.store", "blob_uuid": "never-written", "store": "data"}
    store.job_store.docs_store.update([relax], key=["uuid", "index"])
    assert tool.main() == 2 and unchanged()
    assert "outputs were never written" in capsys.readouterr().err


def test_reference_export_keeps_the_checkpoint_until_the_store_has_loaded_it(store, tmp_path, monkeypatch, capsys,
                                                                             settings_env):
    """A fresh machine that imported the dataset but not the checkpoint: the export stops before it would
    replace the committed checkpoint (unfinished jobs the store never saw) with nothing."""
    from typer.testing import CliRunner

    from bandflow.cli import app
    from bandflow.runner import run_campaign
    from tests.test_flows import write_spec

    tool = _tool("reference_dataset")
    out = tmp_path / "reference"
    monkeypatch.setattr(tool, "OUT", out)
    spec_file = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(spec_file), store=store, progress=False)
    spec_file.write_text(spec_file.read_text().replace("- MgO", "- MgO\n- CaO"))
    run_campaign(load_spec(spec_file), store=store, progress=False, slabs_only=True)  # CaO: slab steps only
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file)])
    assert tool.main() == 0
    checkpoint = out / "checkpoints" / "test_fast.jsonl.gz"
    assert read_checkpoint(checkpoint)
    committed = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "fresh"))
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(out / "test_fast.jsonl.gz")]).exit_code == 0
    assert tool.main() == 2 and {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == committed
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"job documents of {checkpoint}" in err[0] and "checkpoint load" in err[0]
    assert "--drop-checkpoint" in err[0]
    # leaving out surfaces deleted on purpose does not also drop the unfinished work
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file), "--drop-missing"])
    assert tool.main() == 2 and {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == committed
    assert "--drop-checkpoint" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file)])
    assert runner.invoke(app, ["checkpoint", "load", str(checkpoint)]).exit_code == 0
    assert tool.main() == 0 and read_checkpoint(checkpoint)
    # discarded on purpose: a store without those jobs, told so, writes (here: no unfinished work, no file)
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "discard"))
    assert runner.invoke(app, ["import", str(out / "test_fast.jsonl.gz")]).exit_code == 0
    monkeypatch.setattr(sys, "argv", ["reference_dataset.py", str(spec_file), "--drop-checkpoint"])
    assert tool.main() == 0 and not checkpoint.exists()



def test_the_reference_tools_report_bad_input_in_one_line(tmp_path, monkeypatch):
    import os
    import subprocess

    env = {**os.environ, "BANDFLOW_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "reference_dataset.py"), str(tmp_path / "no.yaml")],
                            capture_output=True, text=True, timeout=300, check=False, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: spec file not found: {tmp_path / 'no.yaml'}"]
    module = _reference_model()
    (tmp_path / "model_metrics.json").write_text("{bad")
    monkeypatch.setattr(module, "DATA", tmp_path)
    monkeypatch.setattr(module, "PAGE", tmp_path / "page.md")
    monkeypatch.setattr(sys, "argv", ["reference_model.py", "--page-only"])
    from bandflow.errors import BandflowError

    with pytest.raises(BandflowError, match="model_metrics.json: not JSON"):
        module.main()
    assert not (tmp_path / "page.md").exists()


def test_recompute_potentials_refuses_a_store_without_the_campaign(store, tmp_path, monkeypatch, capsys, settings_env):
    """Pointed at another store (BANDFLOW_DATA_DIR unset), the tool says so in one line and exits 2 instead
    of reporting "0 of 0 documents" as if the campaign had nothing to recompute."""
    from bandflow.runner import run_campaign
    from tests.test_flows import write_spec

    tool = _tool("recompute_potentials")
    spec_file = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(spec_file), store=store, progress=False)
    monkeypatch.setattr(sys, "argv", ["recompute_potentials.py", str(spec_file), "--dry-run"])
    assert tool.main() == 0
    assert "documents without a profile" in capsys.readouterr().out
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "empty"))
    assert tool.main() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no surface of test" in err[0] and "BANDFLOW_DATA_DIR" in err[0]


def _model_tool_in(tmp_path: Path, monkeypatch):
    """tools/reference_model.py writing into ``tmp_path``: ``data/`` with a copy of the committed binary dataset
    and an earlier run's ``model_metrics.json`` ("{}"), ``images/`` with an earlier run's figure, ``page.md``."""
    import shutil

    module = _reference_model()
    data, images = tmp_path / "data", tmp_path / "images"
    data.mkdir()
    images.mkdir()
    shutil.copy(REFERENCE / "binary_oxides_fast.jsonl.gz", data)
    (images / "reference_crossval_lsoap.png").write_bytes(b"last run's figure")
    (data / "model_metrics.json").write_text("{}")
    for name, value in (("DATA", data), ("IMAGES", images), ("PAGE", tmp_path / "page.md")):
        monkeypatch.setattr(module, name, value)
    return module, data, images


def test_an_interrupted_model_run_leaves_the_last_complete_page_and_figures(tmp_path, monkeypatch):
    """Figures are drawn aside and moved in with the metrics and page only at the end of the hour-long run."""
    module, data, images = _model_tool_in(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["reference_model.py"])
    calls = []

    def cross_validation(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt  # Ctrl-C during the second cross-validation
        return {"overall": {}}

    monkeypatch.setattr(module, "compound_cross_validation", cross_validation)
    monkeypatch.setattr(module, "crossval_plot", lambda cv, path, title: path.write_bytes(b"new figure"))
    with pytest.raises(KeyboardInterrupt):
        module.main()
    assert [p.name for p in images.iterdir()] == ["reference_crossval_lsoap.png"]
    assert (images / "reference_crossval_lsoap.png").read_bytes() == b"last run's figure"
    assert (data / "model_metrics.json").read_text() == "{}" and not (tmp_path / "page.md").exists()


def test_a_model_page_that_fails_to_render_leaves_the_last_page_metrics_and_figures(tmp_path, monkeypatch):
    """The page text and metrics are made before any figure is moved in: an error there replaces nothing."""
    from types import SimpleNamespace

    module, data, images = _model_tool_in(tmp_path, monkeypatch)
    (tmp_path / "page.md").write_text("last page")
    monkeypatch.setattr(sys, "argv", ["reference_model.py", "--seeds", "1"])
    cv = {"overall": {"model": {"ip": {"mae": 1.0}, "ea": {"mae": 1.0}}}, "folds": []}
    monkeypatch.setattr(module, "compound_cross_validation", lambda *args, **kwargs: cv)
    monkeypatch.setattr(module, "crossval_plot", lambda cv, path, title: path.write_bytes(b"new figure"))
    monkeypatch.setattr(module, "train_model", lambda *args: SimpleNamespace(metrics={}, epochs=1, split={},
                                                                             predictions=[]))
    monkeypatch.setattr(module, "parity_plot", lambda predictions, path, title: path.write_bytes(b"new figure"))

    def broken_page(results):
        raise KeyError("ip")

    monkeypatch.setattr(module, "page", broken_page)
    with pytest.raises(KeyError):
        module.main()
    assert [p.name for p in images.iterdir()] == ["reference_crossval_lsoap.png"]
    assert (images / "reference_crossval_lsoap.png").read_bytes() == b"last run's figure"
    assert (data / "model_metrics.json").read_text() == "{}" and (tmp_path / "page.md").read_text() == "last page"


def test_a_dataset_of_too_few_compounds_gets_a_no_verdict_page_and_no_old_figures(tmp_path, monkeypatch, capsys):
    """With fewer binary compounds than a leave-one-compound-out needs, the page says so (instead of numbers
    of an earlier dataset), the metrics hold the counts, and earlier figures go."""
    from bandflow.dataset import write_json_lines
    from bandflow.ml.crossval import MIN_COMPOUNDS

    module, data, images = _model_tool_in(tmp_path, monkeypatch)
    records = [json.loads(line) for _, line in read_json_lines(REFERENCE / "binary_oxides_fast.jsonl.gz")]
    kept = sorted({r["formula"] for r in records})[:MIN_COMPOUNDS - 1]
    write_json_lines([r for r in records if r["formula"] in kept], data / "binary_oxides_fast.jsonl.gz")
    monkeypatch.setattr(sys, "argv", ["reference_model.py"])
    assert module.main() == 0
    metrics = json.loads((data / "model_metrics.json").read_text())
    assert metrics["binary_compounds"] == kept and "crossval_lsoap" not in metrics
    assert "**No verdict yet.**" in (tmp_path / "page.md").read_text()
    assert f"needs at least {MIN_COMPOUNDS}" in (tmp_path / "page.md").read_text()
    assert not list(images.iterdir()) and f"cross-validation needs {MIN_COMPOUNDS}" in capsys.readouterr().out
