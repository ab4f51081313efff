"""The campaign flow and the resumable local runner, with test-only engines (seconds, no DFT)."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from jobflow import job as jobflow_job

from bandflow.activity import active_jobs, describe_active
from bandflow.errors import BandflowError
from bandflow.flows import campaign_flow, flow_jobs, plan_campaign
from bandflow.preflight import check_campaign
from bandflow.runner import MIN_TIMED_HERE, campaign_status, run_campaign
from bandflow.settings import get_settings
from bandflow.spec import CampaignSpec, load_spec, select_bulks
from bandflow.store import BandflowStore
from tests.engines_for_tests import EXPECTED_EA, EXPECTED_IP

ROOT = Path(__file__).resolve().parents[1]
ENGINES = "tests.engines_for_tests"


def write_spec(path: Path, bulk_settings: dict | None = None, **slab_settings) -> Path:
    spec = {
        "name": "test",
        "bulks": ["MgO"],
        "max_index": 1,
        "protocol": "fast",
        "engine_settings": {
            "bulk": {"maker": f"{ENGINES}:AnalyticBulkMaker", **(bulk_settings or {})},
            "relax": {"maker": f"{ENGINES}:IdentityRelaxMaker"},
            "slab": {"maker": f"{ENGINES}:AnalyticSlabMaker", **slab_settings},
        },
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def executions(tmp_path: Path) -> list[str]:
    log = tmp_path / "executions.log"
    return log.read_text().split() if log.exists() else []


def test_flow_has_deterministic_uuids(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    first = [j.uuid for j in campaign_flow(spec).jobs]
    second = [j.uuid for j in campaign_flow(spec).jobs]
    assert first == second and len(set(first)) == len(first)
    plans = plan_campaign(spec)
    n_surfaces = len(plans[0].surfaces)
    assert n_surfaces >= 2  # MgO (100) and (110)
    assert len(first) == 1 + 4 * n_surfaces  # bulk + (relax, structure, potential, alignment) per surface


@jobflow_job
def _add(a: float, b: float) -> float:
    return a + b


def test_run_order_reaches_into_a_makers_sub_flow():
    from jobflow import Flow

    from bandflow.runner import run_order

    first = _add(1, 2)
    inner = _add(first.output, 3)
    ordered = run_order(Flow([first, Flow([inner])]))
    assert [(j.uuid, parents) for j, parents in ordered] == [(first.uuid, []), (inner.uuid, [first.uuid])]


def test_run_order_finishes_one_bulk_and_one_surface_after_another(store, tmp_path):
    from bandflow.runner import run_order

    path = write_spec(tmp_path / "s.yaml")
    spec_dict = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec_dict, "bulks": ["MgO", "CaO"]}))
    spec = load_spec(path)
    ordered = run_order(campaign_flow(spec))
    steps = [(job.metadata.get("bulk_name"), job.metadata["bandflow_step"]) for job, _ in ordered]
    n = [len(plan.surfaces) for plan in plan_campaign(spec)]
    surface = ["slab_relax", "slab_structure", "slab_potential", "alignment"]
    assert [step for _, step in steps] == ["bulk_edges", *surface * n[0], "bulk_edges", *surface * n[1]]
    assert [name for name, _ in steps] == ["MgO"] * (1 + 4 * n[0]) + ["CaO"] * (1 + 4 * n[1])
    seen: set[str] = set()
    for job, parents in ordered:  # each job after the jobs it reads from
        assert set(parents) <= seen
        seen.add(job.uuid)
    run_campaign(spec, store=store, progress=False)
    assert executions(tmp_path) == ["bulk", *["relax", "slab"] * n[0], "bulk", *["relax", "slab"] * n[1]]


def test_run_aligns_every_surface_and_resumes_without_recomputing(store, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    summary = run_campaign(spec, store=store, progress=False)
    assert not summary.failed
    docs = store.query_surfaces(protocol="fast")
    assert {tuple(d.miller_index) for d in docs} >= {(1, 0, 0), (1, 1, 0)}
    for doc in docs:
        assert doc.state == "successful"
        assert doc.ip == pytest.approx(EXPECTED_IP, abs=0.05)
        assert doc.ea == pytest.approx(EXPECTED_EA, abs=0.05)
        assert doc.structure_unrelaxed and doc.structure_relaxed
        assert doc.protocol == "fast" and doc.engine == "cp2k"
        assert doc.extra["wall_time"] == {"bulk_edges": 120.0, "slab_potential": 30.0}  # the engines' own times
    ran_before = executions(tmp_path)
    again = run_campaign(spec, store=store, progress=False)
    assert again.ran == 0 and again.skipped == again.total
    assert executions(tmp_path) == ran_before
    assert len(store.query_surfaces(protocol="fast")) == len(docs)


def test_a_run_drops_a_job_document_whose_outputs_a_killed_runner_never_wrote(store, tmp_path, caplog):
    """A runner SIGKILLed between a job's document and its additional-store output left a reference to nothing;
    the next run removes that document (the job runs again if anything still needs it) instead of failing."""
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    relax = store.job_store.docs_store.query_one({"metadata.bandflow_step": "slab_relax"})
    relax.pop("_id", None)
    broken = {**relax, "completed_at": "2026-01-01T00:00:00",
              "output": {"@module": "jobflow.core.store", "blob_uuid": "never-written", "store": "data"}}
    store.job_store.docs_store.update([broken], key=["uuid", "index"])
    again = run_campaign(spec, store=store, progress=False)
    assert not again.failed and "its stored output is incomplete" in caplog.text
    assert store.job_store.docs_store.query_one({"uuid": relax["uuid"], "output.blob_uuid": "never-written"}) is None


def test_a_run_gives_torch_the_engine_thread_setting(store, tmp_path, settings_env, torch_threads):
    """CHGNet relaxations run inside the runner: beside another runner they must keep to its threads."""
    settings_env(BANDFLOW_OMP_NUM_THREADS="1")
    torch_threads.set_num_threads(2)
    run_campaign(load_spec(write_spec(tmp_path / "s.yaml")), store=store, progress=False)
    assert torch_threads.get_num_threads() == 1


def test_a_new_bulk_method_realigns_every_surface_without_recomputing_the_slabs(store, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    before = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    ran_before = executions(tmp_path)

    changed = load_spec(write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5}))
    old_jobs = {j.uuid: j.metadata["bandflow_step"] for j in campaign_flow(spec).jobs}
    new_jobs = {j.uuid: j.metadata["bandflow_step"] for j in campaign_flow(changed).jobs}
    assert sorted({step for uuid, step in new_jobs.items() if uuid not in old_jobs}) == ["alignment", "bulk_edges"]
    status = campaign_status(changed, store)
    assert (status.successful, status.outdated, status.remaining) == (0, len(before), len(before))
    summary = run_campaign(changed, store=store, progress=False)
    assert not summary.failed and summary.ran == 1 + len(before)  # the bulk, then one alignment per surface
    assert executions(tmp_path)[len(ran_before):] == ["bulk"]  # no relaxation or slab potential again
    after = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    assert after.keys() == before.keys()
    assert campaign_status(changed, store).successful == len(before)
    assert campaign_status(spec, store).outdated == len(before)  # the first settings' documents were replaced
    for surface_id, doc in after.items():
        assert doc.ip == pytest.approx(before[surface_id].ip - 0.5)
        assert doc.ea == pytest.approx(before[surface_id].ea)
        assert doc.job_uuids["bulk_edges"] != before[surface_id].job_uuids["bulk_edges"]
        assert doc.job_uuids["slab_potential"] == before[surface_id].job_uuids["slab_potential"]


def spec_with_bulks(tmp_path: Path, name: str, bulks: list) -> CampaignSpec:
    spec = yaml.safe_load(write_spec(tmp_path / f"{name}.yaml").read_text())
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**spec, "bulks": bulks}))
    return load_spec(tmp_path / f"{name}.yaml")


def test_a_bulks_own_settings_change_its_bulk_and_alignment_jobs_only(store, tmp_path):
    own = spec_with_bulks(tmp_path, "own", [{"bulk": "MgO", "bulk_settings": {"vbm_shift": 0.5}}, "CaO"])
    plain = spec_with_bulks(tmp_path, "plain", ["MgO", "CaO"])

    def jobs_of(spec: CampaignSpec, bulk: str) -> dict[str, str]:
        return {j.uuid: j.metadata["bandflow_step"] for j in campaign_flow(spec).jobs
                if j.metadata.get("bulk_name") == bulk}

    new = {step for uuid, step in jobs_of(own, "MgO").items() if uuid not in jobs_of(plain, "MgO")}
    assert sorted(new) == ["alignment", "bulk_edges"]  # MgO's slab steps are shared
    assert jobs_of(own, "CaO") == jobs_of(plain, "CaO")  # the other bulk keeps every job
    run_campaign(select_bulks(plain, ["MgO"]), store=store, progress=False)
    before = {d.surface_id: d.ip for d in store.query_surfaces(protocol="fast")}
    ran_before = executions(tmp_path)
    summary = run_campaign(select_bulks(own, ["MgO"]), store=store, progress=False)
    assert not summary.failed and executions(tmp_path)[len(ran_before):] == ["bulk"]
    after = {d.surface_id: d.ip for d in store.query_surfaces(protocol="fast")}
    assert after == pytest.approx({surface_id: ip - 0.5 for surface_id, ip in before.items()})


def test_a_misspelled_engine_setting_is_one_error_line_at_the_preflight(tmp_path):
    bad = spec_with_bulks(tmp_path, "bad", [{"bulk": "MgO", "bulk_settings": {"vbm_shfit": 0.5}}])
    with pytest.raises(BandflowError, match="^MgO: bulk_settings: .*AnalyticBulkMaker has no setting 'vbm_shfit'$"):
        check_campaign(bad, need_engine=False)
    with pytest.raises(BandflowError, match="^engine settings: slab: .*has no setting 'kspacingg'$"):
        check_campaign(load_spec(write_spec(tmp_path / "s2.yaml", kspacingg=0.3)), need_engine=False)


def test_a_job_whose_dependants_are_all_done_does_not_run_again(store, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    relax_jobs = [j.uuid for j in campaign_flow(spec).jobs if j.metadata["bandflow_step"] == "slab_relax"]
    store.job_store.remove_docs({"uuid": {"$in": relax_jobs}})  # as after a restore: structures kept, relaxations not
    ran_before = executions(tmp_path)
    changed = load_spec(write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5}))
    summary = run_campaign(changed, store=store, progress=False)
    assert not summary.failed and executions(tmp_path)[len(ran_before):] == ["bulk"]
    assert summary.skipped == summary.total - summary.ran and summary.ran == 1 + len(relax_jobs)


def test_run_stored_only_realigns_the_stored_surfaces_and_starts_no_new_one(store, tmp_path):
    from typer.testing import CliRunner

    from bandflow.cli import app

    runner = CliRunner()
    empty = runner.invoke(app, ["run", str(write_spec(tmp_path / "s.yaml")), "--stored-only", "--no-progress"])
    assert empty.exit_code != 0 and "the store has no fast document" in str(empty.exception)
    assert executions(tmp_path) == []
    spec = load_spec(tmp_path / "s.yaml")
    plan = plan_campaign(spec)[0]
    run_campaign(spec, store=store, progress=False, plans=[replace(plan, surfaces=plan.surfaces[:1])])
    (first,) = store.query_surfaces(protocol="fast")
    ran_before = executions(tmp_path)

    changed = write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5})
    result = runner.invoke(app, ["run", str(changed), "--stored-only", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert executions(tmp_path)[len(ran_before):] == ["bulk"]  # the bulk, then the one alignment
    (after,) = store.query_surfaces(protocol="fast")
    assert after.surface_id == first.surface_id and after.ip == pytest.approx(first.ip - 0.5)
    assert campaign_status(load_spec(changed), store).remaining == len(plan.surfaces) - 1


def test_realign_takes_the_alignments_again_from_the_stored_outputs(store, tmp_path):
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml")
    spec = load_spec(spec_file)
    run_campaign(spec, store=store, progress=False)
    before = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    ran_before = executions(tmp_path)
    # a stored slab output as a newer analysis would read it: the document follows only when re-aligned
    potential = store.job_store.query_one({"metadata.bandflow_step": "slab_potential"}, load=True)
    potential = {k: v for k, v in potential.items() if k != "_id"}
    for face in ("vacuum_level_top", "vacuum_level_bottom"):
        potential["output"]["potential"][face] += 0.25
    store.job_store.update(potential, key=["uuid", "index"])
    changed_id = potential["metadata"]["surface_id"]
    assert run_campaign(spec, store=store, progress=False).ran == 0  # a plain run keeps the documents

    result = CliRunner().invoke(app, ["run", str(spec_file), "--realign", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{len(before)} jobs run" in result.output  # the alignments, nothing else
    assert executions(tmp_path) == ran_before  # no engine step
    after = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    assert after.keys() == before.keys()
    for surface_id, doc in after.items():
        shift = 0.25 if surface_id == changed_id else 0.0
        assert doc.ip == pytest.approx(before[surface_id].ip + shift)
        assert doc.ea == pytest.approx(before[surface_id].ea + shift)


def test_a_failing_new_bulk_method_keeps_the_earlier_results(store, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    before = {d.surface_id: d.ip for d in store.query_surfaces(protocol="fast")}
    failing = load_spec(write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5, "fail": True}))
    summary = run_campaign(failing, store=store, progress=False)
    assert list(summary.failed) == [j.name for j in campaign_flow(failing).jobs if j.metadata["bandflow_step"] == "bulk_edges"]
    assert summary.ran == len(before)  # the alignments ran, and recorded failures that did not replace results
    assert {d.surface_id: d.ip for d in store.query_surfaces(protocol="fast")} == before
    status = campaign_status(failing, store)
    assert (status.successful, status.failed, status.outdated) == (0, 0, len(before))


def test_a_failed_bulk_starts_no_slab_job_and_is_not_retried_with_the_same_settings(store, tmp_path):
    """A diverged hybrid fails the same way each time: its surfaces' slab jobs are not started, and a later
    run with the same settings does not run it again unless asked (--retry-failed); new settings run it."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml", bulk_settings={"fail": True})
    spec = load_spec(spec_file)
    n_surfaces = len(plan_campaign(spec)[0].surfaces)
    first = run_campaign(spec, store=store, progress=False)
    assert executions(tmp_path) == ["bulk"]  # no relaxation, no slab potential
    assert list(first.failed) == [j.name for j in campaign_flow(spec).jobs if j.metadata["bandflow_step"] == "bulk_edges"]
    docs = store.query_surfaces(protocol="fast", state=None)
    assert len(docs) == n_surfaces and all(d.failure_reason.startswith("bulk_edges: RuntimeError") for d in docs)

    again = run_campaign(spec, store=store, progress=False)
    assert executions(tmp_path) == ["bulk"]  # not run again
    assert [r.endswith("(recorded earlier: not run again; --retry-failed)") for r in again.failed.values()] == [True]
    result = CliRunner().invoke(app, ["run", str(spec_file), "--retry-failed", "--no-progress"])
    assert result.exit_code == 1 and "1 failed" in result.output  # run again, failed again: no surface
    assert executions(tmp_path) == ["bulk", "bulk"]
    other = load_spec(write_spec(tmp_path / "s2.yaml", bulk_settings={"fail": True, "vbm_shift": 0.5}))
    run_campaign(other, store=store, progress=False)  # other settings: another bulk job, which runs
    assert executions(tmp_path) == ["bulk", "bulk", "bulk"]


def test_a_recorded_bulk_failure_moves_to_another_machine_with_export_failed(store, tmp_path, settings_env):
    """`export --failed` carries the failed documents; imported into a fresh store they keep `run` there from
    retrying the bulk job with the same settings (a diverged hybrid costs hours), as on the first machine."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml", bulk_settings={"fail": True})
    spec = load_spec(spec_file)
    n_surfaces = len(plan_campaign(spec)[0].surfaces)
    run_campaign(spec, store=store, progress=False)
    assert executions(tmp_path) == ["bulk"]
    runner = CliRunner()
    without = runner.invoke(app, ["export", str(tmp_path / "good.jsonl.gz")])
    assert isinstance(without.exception, BandflowError) and "no stored surfaces match" in str(without.exception)
    carried = runner.invoke(app, ["export", str(tmp_path / "all.jsonl.gz"), "--failed"])
    assert carried.exit_code == 0 and f"wrote {n_surfaces} surfaces" in carried.output

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "other_machine"))
    imported = runner.invoke(app, ["import", str(tmp_path / "all.jsonl.gz")])
    assert imported.exit_code == 0 and f"imported {n_surfaces} of {n_surfaces}" in imported.output
    again = run_campaign(spec, store=BandflowStore.from_settings(), progress=False)
    assert executions(tmp_path) == ["bulk"]  # not run again on the new machine
    assert [r.endswith("(recorded earlier: not run again; --retry-failed)") for r in again.failed.values()] == [True]


def test_run_refuses_a_figure_path_it_cannot_write_before_computing_anything(store, tmp_path):
    """`run --plot` with a bad figure path is one error line before any job runs, not after the campaign;
    with --json the figure's message goes to stderr, so stdout stays one JSON document."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml")
    (tmp_path / "folder.png").mkdir()
    for bad, message in (("out.pdf", "must end in .png or .svg"), ("no/such/out.png", "folder does not exist"),
                         ("folder.png", "a folder, not a file")):
        result = CliRunner().invoke(app, ["run", str(spec_file), "--no-progress", "--plot", str(tmp_path / bad)])
        assert isinstance(result.exception, BandflowError) and message in str(result.exception)
    assert executions(tmp_path) == [] and store.query_surfaces(protocol="fast", state=None) == []
    figure = tmp_path / "alignment.png"
    result = CliRunner().invoke(app, ["run", str(spec_file), "--no-progress", "--json",
                                      "--plot", str(figure)])
    assert result.exit_code == 0 and figure.is_file() and json.loads(result.stdout)["surfaces"]
    assert "band-alignment diagram written to" in result.stderr


def test_slabs_only_runs_the_slab_steps_and_a_full_run_reuses_them(store, tmp_path):
    """For an allocation too short for a bulk hybrid: only relaxations and slab potentials run, nothing is
    failed, and the full run after it adds only the bulk and the alignments."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml")
    n_surfaces = len(plan_campaign(load_spec(spec_file))[0].surfaces)
    result = CliRunner().invoke(app, ["run", str(spec_file), "--slabs-only", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{3 * n_surfaces} jobs run" in result.output  # relaxation, its structure, slab potential
    assert "left for a full run" in result.output
    assert sorted(executions(tmp_path)) == ["relax"] * n_surfaces + ["slab"] * n_surfaces
    assert store.query_surfaces(protocol="fast", state=None) == []  # no document, failed or not
    summary = run_campaign(load_spec(spec_file), store=store, progress=False)
    assert not summary.failed and summary.ran == 1 + n_surfaces  # the bulk, then one alignment per surface
    assert executions(tmp_path).count("slab") == n_surfaces


def test_run_with_bulk_runs_only_that_bulk_of_the_campaign(store, tmp_path):
    """Two runners share a machine on disjoint bulks of one campaign: each ``--bulk`` run computes only its
    own bulk's surfaces, and ``status --bulk`` counts only them."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_file = write_spec(tmp_path / "s.yaml")
    text = spec_file.read_text().replace("- MgO", "- MgO\n- CaO")
    spec_file.write_text(text)
    runner = CliRunner()
    wrong = runner.invoke(app, ["run", str(spec_file), "--bulk", "ZnO", "--no-progress"])
    assert wrong.exit_code != 0 and "ZnO: not a bulk of campaign 'test' (its bulks: MgO, CaO)" in str(wrong.exception)
    assert executions(tmp_path) == [] and store.query_surfaces(state=None) == []  # refused before any work
    result = runner.invoke(app, ["run", str(spec_file), "--bulk", "CaO", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert {d.formula for d in store.query_surfaces(protocol="fast")} == {"CaO"}
    status = runner.invoke(app, ["status", str(spec_file), "--bulk", "CaO", "--json"])
    assert status.exit_code == 0 and json.loads(status.output)["remaining"] == 0
    assert json.loads(status.output)["running"] == []  # the run removed its record when it ended
    # MgO has nothing timed yet: its estimate takes the campaign's mean times (here CaO's jobs), and says so
    picked = json.loads(runner.invoke(app, ["status", str(spec_file), "--bulk", "MgO", "--json"]).output)
    assert picked["timed_from"] == "campaign" and picked["bulk_seconds"] > 0 and picked["eta_seconds"] > 0
    assert picked["eta_seconds"] == pytest.approx(picked["bulk_seconds"] + picked["remaining"] * picked["surface_seconds"])
    assert "whole campaign's mean times" in runner.invoke(app, ["status", str(spec_file), "--bulk", "MgO"]).output
    everything = runner.invoke(app, ["status", str(spec_file), "--json"])
    assert json.loads(everything.output)["remaining"] == len(plan_campaign(load_spec(spec_file))[0].surfaces)
    assert runner.invoke(app, ["status", "--bulk", "CaO"]).exit_code != 0  # no campaign to pick from


def test_bulk_settings_key_follows_the_makers_defaults():
    from bandflow.cp2k import Cp2kBulkHybridMaker
    from bandflow.flows import SettingsKeys
    from bandflow.protocols import get_protocol

    fast = get_protocol("fast")
    grown = SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker())
    first_cell = SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker(max_sampling_error=None))
    assert grown.slab == first_cell.slab
    assert grown.bulk != first_cell.bulk and grown.alignment != first_cell.alignment
    assert SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker()) == grown  # deterministic


def test_only_bulks_with_set_apart_elements_get_new_settings_keys(tmp_path):
    """Li's CP2K settings differ from the family rule: Li2O's jobs get keys of their own, MgO keeps the
    keys (and so the stored results) it had before."""
    from bandflow.flows import SettingsKeys, bulk_edges_maker, deterministic_uuid

    path = tmp_path / "s.yaml"
    path.write_text("name: t\nprotocol: fast\nengine: cp2k\nmax_index: 1\nbulks: [MgO, Li2O]\n")
    spec = load_spec(path)
    keys = SettingsKeys.of(spec.protocol_settings, spec.engine_settings,
                           bulk_edges_maker(spec.protocol_settings, spec.engine_settings))
    assert keys.revised({}) is keys
    li = keys.revised({"Li": "BASIS_MOLOPT_UZH"})
    assert all(a != b for a, b in zip(vars(li).values(), vars(keys).values(), strict=True))
    jobs = {}
    for j in campaign_flow(spec).jobs:
        jobs.setdefault((j.metadata["bulk_name"], j.metadata["bandflow_step"]), []).append(j)
    for (bulk, step), found in jobs.items():
        plain = {"bulk_edges": keys.bulk, "alignment": keys.alignment}.get(step, keys.slab)
        key = found[0].metadata["bandflow_key"]
        same = found[0].uuid == deterministic_uuid(step, key, plain)
        assert same == (bulk == "MgO"), (bulk, step)


def test_imported_dataset_resumes_on_a_fresh_store(store, tmp_path, settings_env):
    """An exported dataset imported into an empty store (a fresh machine) is not recomputed; a surface
    missing from it is, with its bulk step."""
    from bandflow.dataset import export_surfaces
    from bandflow.ml.workflow import import_surfaces

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    docs = store.query_surfaces(protocol="fast")
    export_surfaces(docs[1:], tmp_path / "partial.jsonl.gz")
    ran_first = len(executions(tmp_path))

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "fresh"))
    fresh = BandflowStore.from_settings()
    assert import_surfaces(fresh, tmp_path / "partial.jsonl.gz").imported
    summary = run_campaign(spec, store=fresh, progress=False)
    assert not summary.failed
    per_surface = (summary.total - 1) // len(docs)
    assert summary.ran == per_surface + 1  # the missing surface's jobs and the bulk step it needs
    assert len(executions(tmp_path)) > ran_first
    assert {d.surface_id for d in fresh.query_surfaces(protocol="fast")} == {d.surface_id for d in docs}

    export_surfaces(docs, tmp_path / "all.jsonl.gz")
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "fresh2"))
    fresh2 = BandflowStore.from_settings()
    import_surfaces(fresh2, tmp_path / "all.jsonl.gz")
    again = run_campaign(spec, store=fresh2, progress=False)
    assert again.ran == 0 and again.skipped == again.total

    # a new bulk method: the dataset's slab results are restored from the documents, so only the bulk and
    # the alignments run, with the same potentials as before
    changed = load_spec(write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5}))
    ran_before = executions(tmp_path)
    redone = run_campaign(changed, store=fresh2, progress=False)
    assert not redone.failed and redone.ran == 1 + len(docs)
    assert executions(tmp_path)[len(ran_before):] == ["bulk"]
    realigned = {d.surface_id: d for d in fresh2.query_surfaces(protocol="fast")}
    for doc in docs:
        new = realigned[doc.surface_id]
        assert new.ip == pytest.approx(doc.ip - 0.5) and new.potential_step == pytest.approx(doc.potential_step)
        assert new.structure_relaxed == doc.structure_relaxed
        assert new.extra["wall_time"] == {"bulk_edges": 120.0, "slab_potential": 30.0}  # the slab's time kept
    restored = fresh2.job_store.query({"metadata.restored_from": {"$exists": True}}, properties=["metadata"])
    assert {r["metadata"]["bandflow_step"] for r in restored} == {"slab_structure", "slab_potential"}


def test_one_failing_surface_does_not_stop_the_others(store, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    sizes = sorted({e.n_atoms for e in plan_campaign(spec)[0].surfaces})
    spec = load_spec(write_spec(tmp_path / "s.yaml", fail_for_atoms=sizes[0]))
    summary = run_campaign(spec, store=store, progress=False)
    assert len(summary.failed) >= 1
    docs = store.query_surfaces(protocol="fast", state=None)
    failed = [d for d in docs if d.state == "failed"]
    good = [d for d in docs if d.state == "successful"]
    assert failed and good
    assert all("SCF did not converge" in d.failure_reason for d in failed)
    assert all(d.ip is None for d in failed)


def test_sigkill_mid_flow_then_resume(store, tmp_path):
    spec_path = write_spec(tmp_path / "s.yaml", sleep=1.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bandflow.cli", "run", str(spec_path), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while executions(tmp_path).count("slab") < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    time.sleep(0.5)  # the first slab's output is stored; the second slab job is mid-calculation
    assert proc.poll() is None
    # while it computes, the runner says what: its record names the job, its own folder and its process
    (running,) = active_jobs(tmp_path / "data" / "runs", "test")
    assert running.pid == proc.pid and running.alive() is True and Path(running.folder).is_dir()
    assert running.step in ("slab_relax", "slab_structure", "slab_potential", "alignment")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (stopped,) = active_jobs(tmp_path / "data" / "runs", "test")
    assert stopped.alive() is False and "stopped (its process is gone" in describe_active(stopped)
    before = executions(tmp_path)
    assert before.count("bulk") == 1
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    after = executions(tmp_path)
    assert not active_jobs(tmp_path / "data" / "runs"), "the new run dropped the stopped record and its own"
    assert after.count("bulk") == 1  # the finished bulk job was not recomputed
    n_surfaces = len(plan_campaign(load_spec(spec_path))[0].surfaces)
    assert after.count("slab") == n_surfaces  # each finished slab job ran once
    get_settings.cache_clear()
    docs = BandflowStore.from_settings().query_surfaces(protocol="fast", state=None)
    assert len(docs) == n_surfaces and len({d.surface_id for d in docs}) == n_surfaces
    assert all(d.state == "successful" for d in docs)


def test_campaign_without_nonpolar_surfaces_fails_early(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    spec = spec.model_copy(update={"max_atoms": 1})
    with pytest.raises(BandflowError, match="no nonpolar surface"):
        plan_campaign(spec)


def test_submit_then_worker_runs_the_campaign_on_fireworks(store, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bandflow.cli import app
    from bandflow.queue import firework_state_counts, launch

    for variable in ("BANDFLOW_STORE_URI", "BANDFLOW_LAUNCHPAD_FILE", "MONGOMOCK_SERVERSTORE_FILE"):
        monkeypatch.delenv(variable, raising=False)
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    sizes = sorted({e.n_atoms for e in plan_campaign(spec)[0].surfaces})
    spec_path = write_spec(tmp_path / "s.yaml", fail_for_atoms=sizes[0])
    runner = CliRunner()
    result = runner.invoke(app, ["submit", str(spec_path)])
    assert result.exit_code == 0, result.output
    assert "submitted" in result.output
    again = runner.invoke(app, ["submit", str(spec_path)])  # the same campaign twice: refused
    assert again.exit_code != 0 and "already on the LaunchPad" in str(again.exception or again.output)

    launch(launch_dir=tmp_path / "fw_runs", poll_s=0.1, strm_lvl="ERROR")
    counts = firework_state_counts()
    assert counts["FIZZLED"] >= 1 and counts["COMPLETED"] >= 1  # the failing slab job fizzles alone
    docs = BandflowStore.from_settings().query_surfaces(protocol="fast", state=None)
    states = sorted(d.state for d in docs)
    assert states.count("failed") >= 1 and states.count("successful") >= 1  # alignment ran for both
    good = [d for d in docs if d.state == "successful"]
    assert good[0].ip == pytest.approx(EXPECTED_IP, abs=0.05)
    assert good[0].job_uuids["slab_potential"]


def test_fireworks_realign_after_a_new_bulk_method_reuses_the_slab_outputs(store, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bandflow.cli import app
    from bandflow.queue import firework_state_counts, launch

    for variable in ("BANDFLOW_STORE_URI", "BANDFLOW_LAUNCHPAD_FILE", "MONGOMOCK_SERVERSTORE_FILE"):
        monkeypatch.delenv(variable, raising=False)
    runner = CliRunner()
    first = runner.invoke(app, ["submit", str(write_spec(tmp_path / "s.yaml"))])
    assert first.exit_code == 0, first.output
    launch(launch_dir=tmp_path / "fw_runs", poll_s=0.1, strm_lvl="ERROR")
    before = {d.surface_id: d.ip for d in BandflowStore.from_settings().query_surfaces(protocol="fast")}
    ran_before = executions(tmp_path)

    changed = write_spec(tmp_path / "s2.yaml", bulk_settings={"vbm_shift": 0.5})
    second = runner.invoke(app, ["submit", str(changed)])
    assert second.exit_code == 0, second.output
    assert f"submitted {1 + len(before)} fireworks" in second.output  # one bulk, one alignment per surface
    launch(launch_dir=tmp_path / "fw_runs", poll_s=0.1, strm_lvl="ERROR")
    assert firework_state_counts().get("FIZZLED", 0) == 0
    assert executions(tmp_path)[len(ran_before):] == ["bulk"]
    after = {d.surface_id: d.ip for d in BandflowStore.from_settings().query_surfaces(protocol="fast")}
    assert after == pytest.approx({k: v - 0.5 for k, v in before.items()})
    third = runner.invoke(app, ["submit", str(changed)])
    assert third.exit_code == 0 and "nothing to submit" in third.output


def test_campaign_status_counts_and_estimates(store, tmp_path):
    from bandflow.runner import campaign_status

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    before = campaign_status(spec, store)
    assert (before.successful, before.failed) == (0, 0) and before.remaining == before.total >= 2
    assert before.eta_seconds is None
    assert [(b.name, b.successful, b.remaining, b.bulk_stored) for b in before.bulks] == \
        [("MgO", 0, before.total, False)] and before.bulks_to_run == 1
    run_campaign(spec, store=store, progress=False)
    after = campaign_status(spec, store)
    assert after.successful == after.total and after.remaining == 0
    assert after.seconds_per_surface is not None and after.seconds_per_surface > 0
    assert after.eta_seconds == 0
    assert all("started_at" in doc["metadata"] for doc in store.job_store.query({}, properties=["metadata"]))
    assert after.bulks[0].bulk_stored and after.bulks_to_run == 0  # a finished bulk job is in the store
    assert after.surface_seconds > 0 and after.bulk_seconds > 0


def test_status_estimate_counts_each_bulk_job_still_to_run_once(store, tmp_path):
    """Time left = bulk jobs without a stored output × mean bulk time + surfaces left × mean slab time."""
    from bandflow.runner import campaign_status

    path = write_spec(tmp_path / "s.yaml")
    path.write_text(path.read_text().replace("- MgO", "- MgO\n- CaO"))
    spec = load_spec(path)
    run_campaign(spec, store=store, progress=False)
    dropped = store.query_surfaces(protocol="fast", formula="MgO")[0].surface_id
    store.surfaces._collection.delete_one({"surface_id": dropped})
    only_slabs = campaign_status(spec, store)
    assert only_slabs.remaining == 1 and only_slabs.bulks_to_run == 0
    assert [b.bulk_stored for b in only_slabs.bulks] == [True, True]
    assert only_slabs.eta_seconds == pytest.approx(only_slabs.surface_seconds)  # no bulk job in it
    bulk_uuid = next(j.uuid for j in campaign_flow(spec).jobs
                     if j.metadata["bandflow_step"] == "bulk_edges" and j.metadata["bulk_name"] == "MgO")
    store.job_store.remove_docs({"uuid": bulk_uuid})
    with_bulk = campaign_status(spec, store)
    assert [b.bulk_stored for b in with_bulk.bulks] == [False, True] and with_bulk.bulks_to_run == 1
    assert with_bulk.bulk_seconds > 0  # CaO's bulk job, the one still timed
    assert with_bulk.eta_seconds == pytest.approx(with_bulk.bulk_seconds + with_bulk.surface_seconds)


def test_status_text_lists_the_bulks_with_surfaces_left():
    from bandflow.cli import campaign_status_text
    from bandflow.runner import BulkProgress, CampaignStatus

    status = CampaignStatus(
        name="c", total=9, successful=4, failed=1, remaining=4, outdated=0, seconds_per_surface=900.0,
        eta_seconds=2 * 3600 + 4 * 600, timed_from="jobs", bulk_seconds=3600.0, surface_seconds=600.0,
        bulks=[BulkProgress("MgO", 3, 3, 0, True), BulkProgress("ZnO", 4, 1, 1, True),
               BulkProgress("CdO", 1, 0, 0, False), BulkProgress("Cu2O", 1, 0, 0, False)])
    assert status.bulks_to_run == 2
    text = campaign_status_text(status)
    assert text.splitlines()[0] == ("c: 4 done, 1 failed, 4 remaining of 9, 900 s per surface; estimated time left "
                                    "2.7 h (2 bulk jobs of 60 min on average, then 10.0 min per surface)")
    rows = {line.split(maxsplit=4)[0]: line.split(maxsplit=4)[1:] for line in text.splitlines()[2:-1]}
    assert rows == {"ZnO": ["1", "1", "2", "stored"], "CdO": ["0", "0", "1", "to run"],
                    "Cu2O": ["0", "0", "1", "to run"]}
    assert text.splitlines()[-1] == "  1 bulk with no surface left"
    untimed = campaign_status_text(replace(status, bulk_seconds=None, eta_seconds=4 * 600))
    assert "0.7 h (2 bulk jobs not counted (no bulk job timed yet), 10.0 min per surface)" in untimed


def test_status_on_a_fresh_machine_times_from_the_documents(store, tmp_path):
    """Imported documents have no jobs here; the wall times they carry still give an estimate."""
    from typer.testing import CliRunner

    from bandflow.cli import app

    spec_path = write_spec(tmp_path / "s.yaml")
    spec = load_spec(spec_path)
    run_campaign(spec, store=store, progress=False)
    docs = store.query_surfaces(protocol="fast")
    first = docs[0]
    for doc in docs:
        doc.extra["wall_time"] = {"bulk_edges": 600.0, "slab_potential": 30.0}
        store.upsert_surface(doc)
    assert campaign_status(spec, store).timed_from == "jobs"  # here as many surfaces timed as in the documents
    # one surface's jobs gone: this machine times fewer surfaces than the documents and than MIN_TIMED_HERE
    store.job_store.remove_docs({"metadata.bandflow_step": "alignment", "metadata.surface_id": first.surface_id})
    assert len(docs) < MIN_TIMED_HERE and campaign_status(spec, store).timed_from == "documents"
    store.job_store.remove_docs({})  # as after `bandflow import` on another machine
    store.upsert_surface(first.model_copy(update={"surface_id": "elsewhere", "extra": {}}))  # not this campaign
    status = campaign_status(spec, store)
    assert status.timed_from == "documents"
    assert status.seconds_per_surface == pytest.approx(600.0 / len(docs) + 30.0)
    assert (status.bulk_seconds, status.surface_seconds) == pytest.approx((600.0, 30.0))
    assert status.remaining == 0 and status.eta_seconds == 0
    shown = CliRunner().invoke(app, ["status", str(spec_path)])
    assert "s per surface (the wall times recorded in the finished documents: fewer than 5 surfaces" in shown.output, \
        shown.output


def test_status_sizes_each_remaining_surface_by_its_atom_count(store, tmp_path):
    """Slab times grow as a power of the slab's atoms: the estimate sizes the surfaces left, not a flat mean."""
    from typer.testing import CliRunner

    from bandflow.cli import app, campaign_status_text
    from bandflow.flows import plan_campaign
    from bandflow.spec import select_bulks

    path = write_spec(tmp_path / "s.yaml")
    path.write_text(path.read_text().replace("- MgO", "- MgO\n- CaO").replace("max_index: 1", "max_index: 2"))
    spec = load_spec(path)
    atoms = {e.id: e.n_atoms for p in plan_campaign(spec) for e in p.surfaces}
    run_campaign(spec, store=store, progress=False)
    store.job_store.remove_docs({})  # time from the documents: 0.1 s × atoms² per slab potential
    cao = []
    for doc in store.query_surfaces(protocol="fast"):
        if doc.formula == "CaO":
            cao.append(atoms[doc.surface_id])
            store.surfaces._collection.delete_one({"surface_id": doc.surface_id})
            continue
        doc.extra["wall_time"] = {"bulk_edges": 600.0, "slab_potential": 0.1 * atoms[doc.surface_id] ** 2}
        store.upsert_surface(doc)
    assert len(cao) == 5 and len(atoms) == 10
    status = campaign_status(spec, store)
    assert status.timed_from == "documents" and status.size_scaling.exponent == pytest.approx(2.0)
    shown = json.loads(CliRunner().invoke(app, ["status", str(path), "--json"]).stdout)
    assert shown["size_scaling"]["exponent"] == pytest.approx(2.0) and shown["size_scaling"]["borrowed"] is False
    assert shown["remaining_surface_seconds"] == pytest.approx(status.remaining_surface_seconds)
    assert status.remaining_surface_seconds == pytest.approx(0.1 * sum(n * n for n in cao))
    assert status.eta_seconds == pytest.approx(status.bulks_to_run * 600.0 + status.remaining_surface_seconds)
    picked = campaign_status(select_bulks(spec, ["CaO"]), store, whole=spec)  # nothing timed: the campaign's law
    assert picked.timed_from == "campaign" and picked.remaining_surface_seconds == pytest.approx(
        status.remaining_surface_seconds)
    # two CaO surfaces back, three times slower: too few for an exponent, so the campaign's, at CaO's own pace
    run_campaign(spec, store=store, progress=False)  # (recomputes MgO too: its job store is gone)
    for doc in store.query_surfaces(protocol="fast"):
        pace = 0.3 if doc.formula == "CaO" else 0.1
        doc.extra["wall_time"] = {"bulk_edges": 600.0, "slab_potential": pace * atoms[doc.surface_id] ** 2}
        store.upsert_surface(doc)
    small = sorted(store.query_surfaces(protocol="fast", formula="CaO"), key=lambda d: atoms[d.surface_id])
    for doc in small[2:]:
        store.surfaces._collection.delete_one({"surface_id": doc.surface_id})
    store.job_store.remove_docs({})
    whole = campaign_status(spec, store).size_scaling.exponent
    picked = campaign_status(select_bulks(spec, ["CaO"]), store, whole=spec)
    assert picked.remaining == 3 and picked.size_scaling.exponent == pytest.approx(whole) and 1 < whole < 2
    pace = sum(0.3 * atoms[d.surface_id] ** 2 for d in small[:2]) / sum(atoms[d.surface_id] ** whole for d in small[:2])
    assert picked.remaining_surface_seconds == pytest.approx(pace * sum(atoms[d.surface_id] ** whole for d in small[2:]))
    assert f"sized to each remaining slab as atoms^{whole:.1f} (the whole campaign's exponent)" in \
        campaign_status_text(picked)
    # the whole campaign's estimate, too, takes CaO's remaining surfaces at CaO's own pace
    everything = campaign_status(spec, store)
    assert everything.bulk_scalings["CaO"].coefficient == pytest.approx(pace)
    assert everything.remaining_surface_seconds == pytest.approx(picked.remaining_surface_seconds)
    assert "1 bulk at its own pace" in campaign_status_text(everything)
    shown = json.loads(CliRunner().invoke(app, ["status", str(path), "--json"]).stdout)
    assert shown["bulk_scalings"]["CaO"]["coefficient"] == pytest.approx(pace)


def test_walltime_leaves_a_bulk_job_that_would_be_cut_off_and_runs_the_slab_steps_that_fit(store, tmp_path):
    from datetime import datetime, timedelta

    from typer.testing import CliRunner

    from bandflow.cli import app

    path = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(path), store=store, progress=False)  # MgO: times the campaign's jobs
    bulk = store.job_store.docs_store.query_one({"metadata.bandflow_step": "bulk_edges"})
    started = datetime.fromisoformat(str(bulk["completed_at"])) - timedelta(hours=2)  # as a 2-hour hybrid
    bulk["metadata"]["started_at"] = started.isoformat()
    store.job_store.docs_store.update(bulk, key=["uuid", "index"])
    path.write_text(path.read_text().replace("- MgO", "- MgO\n- CaO"))
    spec = load_spec(path)
    assert campaign_status(spec, store).bulk_seconds == pytest.approx(7200, abs=5)
    cao = [e for p in plan_campaign(spec) if p.bulk.name == "CaO" for e in p.surfaces]
    summary = run_campaign(spec, store=store, progress=False, walltime=3600)
    # CaO's bulk job (2 h expected) and the alignments that need it are left; its slab steps ran
    assert summary.deferred == 1 + len(cao) and not summary.failed
    assert summary.ran == 3 * len(cao)  # relaxation, structure, potential of each CaO surface
    assert store.query_surfaces(protocol="fast", formula="CaO", state=None) == []  # nothing failed or half-made
    status = campaign_status(spec, store)
    assert [b.bulk_stored for b in status.bulks] == [True, False] and status.remaining == len(cao)
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress", "--walltime", "1:00:00"])
    assert result.exit_code == 0, result.output
    assert f"0 jobs run, {summary.skipped + 3 * len(cao)} already done, 0 failed" in result.output
    assert f"{1 + len(cao)} left for a later run (not expected to finish within --walltime)" in result.output
    later = run_campaign(spec, store=store, progress=False, walltime=3 * 3600)  # now it fits
    assert later.deferred == 0 and later.ran == 1 + len(cao)
    assert len(store.query_surfaces(protocol="fast", formula="CaO")) == len(cao)
    refused = CliRunner().invoke(app, ["run", str(path), "--walltime", "soon"])
    assert isinstance(refused.exception, BandflowError) and "--walltime: a walltime is MM, MM:SS" in str(refused.exception)


def test_walltime_runs_the_small_slabs_that_fit_and_leaves_the_large_ones(store, tmp_path):
    """Slab steps are judged by their slab's size: with 25 min left, CaO's 10- and 12-atom slabs (about 10 and
    14 min at the timed pace) run, its 18- to 22-atom ones (32-48 min) wait with their later steps."""
    from datetime import datetime, timedelta

    path = write_spec(tmp_path / "s.yaml")
    path.write_text(path.read_text().replace("- MgO", "- MgO\n- CaO").replace("max_index: 1", "max_index: 2"))
    spec = load_spec(path)
    atoms = {e.id: e.n_atoms for p in plan_campaign(spec) for e in p.surfaces}
    run_campaign(spec, store=store, progress=False)
    for job in store.job_store.docs_store.query({"metadata.bandflow_step": "slab_potential"}):
        completed = datetime.fromisoformat(str(job["completed_at"]))  # as if it took 6 s × atoms²
        job["metadata"]["started_at"] = (completed - timedelta(seconds=6 * atoms[job["metadata"]["surface_id"]] ** 2)
                                         ).isoformat()
        store.job_store.docs_store.update(job, key=["uuid", "index"])
    cao = sorted((i for i in atoms if i.startswith("CaO")), key=atoms.get)
    store.job_store.remove_docs({"metadata.surface_id": {"$in": cao}})
    for surface_id in cao:
        store.surfaces._collection.delete_one({"surface_id": surface_id})
    assert campaign_status(spec, store).size_scaling.exponent == pytest.approx(2.0, abs=0.01)
    summary = run_campaign(spec, store=store, progress=False, walltime=25 * 60)
    done = {d.surface_id for d in store.query_surfaces(protocol="fast", formula="CaO", state=None)}
    assert done == set(cao[:2]) and [atoms[i] for i in cao] == [10, 12, 18, 20, 22]
    assert summary.deferred == 4 * 3 and summary.ran == 4 * 2 and not summary.failed  # 4 steps per surface
    # past the deadline nothing starts, not even a job whose length nothing can tell
    fresh = write_spec(tmp_path / "fresh.yaml")
    fresh.write_text(fresh.read_text().replace("- MgO", "- ZnO"))
    nothing = run_campaign(load_spec(fresh), store=store, progress=False, walltime=1e-9)
    assert nothing.ran == 0 and nothing.deferred == nothing.total > 0


def test_time_per_surface_from_recorded_starts_wall_times_and_gaps():
    from bandflow.runner import job_seconds, step_seconds

    def doc(uuid: str, completed: str, started: str | None = None, wall=None, **metadata) -> dict:
        meta = {**metadata, **({"started_at": f"2026-12-03T{started}"} if started else {})}
        return {"uuid": uuid, "completed_at": f"2026-12-03T{completed}", "metadata": meta,
                "output": {"wall_time": wall} if wall is not None else {}}

    jobs = [
        doc("r1", "08:00:00", bandflow_step="slab_relax", surface_id="s1"),  # first: nothing to measure against
        doc("p1", "08:10:00", bandflow_step="slab_potential", surface_id="s1"),  # 600 s since r1
        doc("b", "20:00:00", wall={"total": 1500.0}, bandflow_step="bulk_edges"),  # its own wall time
        doc("a1", "20:30:00", "20:29:50", bandflow_step="alignment", surface_id="s1"),  # 10 s, not the gap
        doc("p2", "20:31:00", "20:31:00", bandflow_step="slab_potential", surface_id="s2", restored_from="s2"),
        doc("a2", "20:31:05", "20:31:00", bandflow_step="alignment", surface_id="s2"),
        doc("x", "23:59:00", bandflow_step="slab_relax", surface_id="s3"),
    ]
    jobs[-1]["completed_at"] = "2026-12-04T09:00:00"  # > 6 h after the previous job: a stop, 0 s
    seconds = job_seconds(jobs[::-1])
    assert seconds == pytest.approx({"r1": 0, "p1": 600, "b": 1500, "a1": 10, "p2": 0, "a2": 5, "x": 0})
    # a surface whose bulk job failed: its alignment job stores the failure, no slab step ran; not a surface
    # done in no time, and not one the bulk served
    failed = doc("a4", "09:00:01", "09:00:00", bandflow_step="alignment", surface_id="s4")
    assert step_seconds([*jobs, failed]) == pytest.approx((610, 1500, 610 + 1500 / 2))
    # s1 computed here (610 s), s2 restored from its document (left out); the bulk spread over both
    assert step_seconds(jobs) == pytest.approx((610, 1500, 610 + 1500 / 2))  # per surface, per bulk job, spread
    assert step_seconds(jobs[4:6]) is None  # only restored surfaces: nothing measured
    # a campaign's plan: the bulk serves 10 surfaces, most aligned in earlier sessions (no jobs here)
    jobs[2]["metadata"]["bulk_name"] = "MgO"
    assert step_seconds(jobs, surfaces_per_bulk={"MgO": 10, "CaO": 4}) == pytest.approx((610, 1500, 610 + 150))


def test_documents_without_engine_times_get_them_from_the_job_store(store, tmp_path):
    from bandflow.runner import record_wall_times

    run_campaign(load_spec(write_spec(tmp_path / "s.yaml")), store=store, progress=False)
    docs = store.query_surfaces(protocol="fast")
    for doc in docs:  # as made before documents recorded their times
        doc.extra.pop("wall_time")
        store.upsert_surface(doc)
    imported = docs[0].model_copy(deep=True)
    imported.job_uuids = {"bulk_edges": "ran-elsewhere", "slab_potential": "ran-elsewhere-too"}
    assert record_wall_times(store, [imported]) == 0 and "wall_time" not in imported.extra
    assert record_wall_times(store, store.query_surfaces(protocol="fast")) == len(docs)
    assert all(d.extra["wall_time"] == {"bulk_edges": 120.0, "slab_potential": 30.0}
               for d in store.query_surfaces(protocol="fast"))
    assert record_wall_times(store, store.query_surfaces(protocol="fast")) == 0  # nothing left to fill


def test_slab_potentials_of_imported_documents_are_recomputed_without_the_bulk(store, tmp_path, monkeypatch):
    """Documents made before the profile was kept: the potential runs again, the bulk edges are the document's."""
    from bandflow.runner import recompute_slab_potentials

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    before = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    for doc in before.values():  # as imported from an older dataset: no profile, nothing in the job store
        doc.extra.pop("profile")
        store.upsert_surface(doc)
    store.job_store.remove_docs({})
    chosen = sorted(before)[:1]
    ran_before = executions(tmp_path)
    summary = recompute_slab_potentials(spec, store, [*chosen, "MgO-225-999-t0-missing"], progress=False)
    assert summary.ran == 1 and list(summary.failed) == ["MgO-225-999-t0-missing"]
    assert executions(tmp_path)[len(ran_before):] == ["slab"]  # no bulk, no relaxation
    after = {d.surface_id: d for d in store.query_surfaces(protocol="fast")}
    new = after[chosen[0]]
    assert new.ip == pytest.approx(before[chosen[0]].ip) and new.bulk_vbm == before[chosen[0]].bulk_vbm
    assert new.period_source == "ideal slab" and "planar" in new.extra["profile"]
    assert new.extra["recomputed_slab_potential"] and new.job_uuids == before[chosen[0]].job_uuids
    assert all("profile" not in after[s].extra for s in after if s not in chosen)  # the others untouched
    assert run_campaign(spec, store=store, progress=False).ran == 0  # still current: nothing to run


def test_a_recompute_whose_alignment_fails_keeps_the_old_document(store, tmp_path, monkeypatch):
    import bandflow.alignment
    from bandflow.runner import recompute_slab_potentials

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    run_campaign(spec, store=store, progress=False)
    (first, *_) = store.query_surfaces(protocol="fast")
    real = bandflow.alignment.surface_document

    def unphysical(*args, **kwargs):
        doc = real(*args, **kwargs)
        return doc.model_copy(update={"state": "failed", "ip": None, "ea": None, "failure_reason": "unphysical (test)"})

    monkeypatch.setattr(bandflow.alignment, "surface_document", unphysical)
    summary = recompute_slab_potentials(spec, store, [first.surface_id], progress=False)
    assert summary.ran == 0 and summary.failed == {first.surface_id: "BandflowError: unphysical (test)"}
    (kept,) = store.query_surfaces(protocol="fast", surface_id=first.surface_id)
    assert kept.state == "successful" and kept.ip == first.ip and "recomputed_slab_potential" not in kept.extra


def test_a_plan_lists_each_bulks_smallest_slabs_first(tmp_path):
    """So that a campaign stopped at any point has finished the most surfaces it could."""
    from bandflow.bulk import load_bulk
    from bandflow.surfaces import enumerate_surfaces

    path = tmp_path / "s.yaml"
    path.write_text("name: t\nprotocol: fast\nengine: cp2k\nmax_index: 2\nbulks: [CuGaO2]\n")
    (plan,) = plan_campaign(load_spec(path))
    sizes = [e.n_atoms for e in plan.surfaces]
    listed = [e.n_atoms for e in enumerate_surfaces(load_bulk("CuGaO2"), max_index=2, min_thickness=8.0,
                                                    vacuum=12.0) if e.nonpolar]
    assert sizes == sorted(listed) and listed != sorted(listed)



def test_flow_jobs_of_several_bulks_without_jobflow_warning(recwarn):
    """A campaign of two bulks is two separate graphs; listing its jobs does not warn about it."""
    import warnings

    from jobflow import Flow, job

    @job
    def step(x):
        return x

    first, second = step(1), step(2)
    flow = Flow([first, second, step(first.output)])
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        listed = list(flow.iterflow())
    assert any("not connected" in str(w.message) for w in raw)  # jobflow does warn on the raw iteration
    assert {j.uuid for j, _ in flow_jobs(flow)} == {j.uuid for j, _ in listed}
    assert not [w for w in recwarn if "not connected" in str(w.message)]


def test_a_stopped_bulk_job_is_remembered_and_not_started_in_a_shorter_walltime(store, tmp_path):
    """Ctrl-C or SIGTERM during a job notes how long it ran; a --walltime run shorter than that leaves the job
    (saying why), ``status`` counts it as at least that long, and a long enough walltime runs it."""
    from typer.testing import CliRunner

    from bandflow.activity import ActiveJob, record_stopped, stopped_seconds
    from bandflow.cli import app, campaign_status_text

    runs = tmp_path / "data" / "runs"
    stopping = load_spec(write_spec(tmp_path / "stop.yaml", bulk_settings={"interrupt": True}))
    with pytest.raises(KeyboardInterrupt):
        run_campaign(stopping, store=store, progress=False)
    (bulk_job,) = [j for j in campaign_flow(stopping).jobs if j.metadata["bandflow_step"] == "bulk_edges"]
    assert set(stopped_seconds(runs)) == {bulk_job.uuid} and not active_jobs(runs)

    path = write_spec(tmp_path / "s.yaml")
    run_campaign(load_spec(path), store=store, progress=False)  # MgO: times the campaign's jobs
    path.write_text(path.read_text().replace("- MgO", "- MgO\n- CaO"))
    spec = load_spec(path)
    (bulk_job,) = [j for j in campaign_flow(spec).jobs
                   if j.metadata["bandflow_step"] == "bulk_edges" and j.metadata["bulk_name"] == "CaO"]
    record_stopped(runs, ActiveJob(campaign="test", job_name=bulk_job.name, step="bulk_edges", target="CaO", pid=1,
                                   host="elsewhere", started_at="2026-12-06T10:31:00", folder="", uuid=bulk_job.uuid),
                   2 * 3600 + 7 * 60)
    status = campaign_status(spec, store)
    assert [b.stopped_seconds for b in status.bulks] == [None, pytest.approx(7620)]
    assert status.bulk_seconds < 600 and status.eta_seconds >= 7620  # not the campaign's mean bulk job
    assert "to run (an attempt was stopped after 2 h 07 min; counted as at least that)" in campaign_status_text(status)
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress", "--walltime", "1:00:00"])
    assert result.exit_code == 0, result.output
    assert f"left for a later run: {bulk_job.name}: an earlier attempt was stopped after 2 h 07 min" in result.output
    assert store.query_surfaces(protocol="fast", formula="CaO", state=None) == []
    later = run_campaign(spec, store=store, progress=False, walltime=3 * 3600)
    assert later.deferred == 0 and not later.failed
    assert len(store.query_surfaces(protocol="fast", formula="CaO")) == len(plan_campaign(spec)[1].surfaces)
