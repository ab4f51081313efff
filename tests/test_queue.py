"""FireWorks submission and workers on the process-safe file-mode LaunchPad."""

import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bson.json_util
import pytest
from jobflow import Flow
from typer.testing import CliRunner

from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.queue import FileLaunchPad, firework_state_counts, get_launchpad, launch, submit_flows
from bandflow.settings import get_settings
from bandflow.store import BandflowStore
from tests.jobs_for_tests import append_line, join_labels

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path, monkeypatch, settings_env):
    monkeypatch.chdir(tmp_path)  # no ./launchpad.yaml here
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"), BANDFLOW_STORE_URI=None, BANDFLOW_LAUNCHPAD_FILE=None,
                 MONGOMOCK_SERVERSTORE_FILE=None)
    return tmp_path / "data"


def line_counts(path: Path) -> collections.Counter:
    return collections.Counter(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else {}


def test_default_launchpad_is_a_file_under_data_dir(data_dir):
    launchpad = get_launchpad()
    assert isinstance(launchpad, FileLaunchPad)
    assert launchpad.path == (data_dir / "fireworks" / "launchpad.json").resolve()
    assert firework_state_counts(launchpad)["READY"] == 0


def test_submit_and_launch_a_flow_with_dependencies(data_dir, tmp_path):
    out = tmp_path / "out.txt"
    first, second = append_line(str(out), "a"), append_line(str(out), "b")
    joined = join_labels([first.output, second.output], str(out))
    fw_ids = submit_flows(Flow([first, second, joined]))
    assert fw_ids == [1, 2, 3]
    counts = firework_state_counts()
    assert (counts["READY"], counts["WAITING"]) == (2, 1)
    assert (data_dir / "jobflow.yaml").is_file()  # for rlaunch workers: JOBFLOW_CONFIG_FILE

    assert launch(launch_dir=tmp_path / "runs", poll_s=0.1, strm_lvl="ERROR") == 3
    assert firework_state_counts()["COMPLETED"] == 3
    assert line_counts(out) == {"a": 1, "b": 1, "a+b": 1}
    store = BandflowStore.from_settings()  # outputs went to the bandflow job store
    assert store.job_store.query_one({"uuid": joined.uuid})["output"] == "a+b"
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR") == 0  # nothing left


def test_launch_stops_after_n_jobs(data_dir, tmp_path):
    submit_flows([append_line(str(tmp_path / "out.txt"), f"job{i}") for i in range(3)])
    assert launch(2, launch_dir=tmp_path / "runs", strm_lvl="ERROR") == 2
    assert firework_state_counts()["READY"] == 1
    with pytest.raises(BandflowError, match="at least 1"):
        launch(0)


def test_a_worker_gives_torch_the_engine_thread_setting(data_dir, settings_env, torch_threads):
    """CHGNet relaxations run inside the worker: beside other workers' engines they keep to its threads."""
    settings_env(BANDFLOW_OMP_NUM_THREADS="1")
    torch_threads.set_num_threads(2)
    assert launch(strm_lvl="ERROR") == 0  # nothing to run: the setting is applied before any job
    assert torch_threads.get_num_threads() == 1


def test_submit_rejects_what_is_not_a_flow(data_dir):
    with pytest.raises(BandflowError, match="expected jobflow Flow or Job"):
        submit_flows(["not a flow"])
    assert submit_flows([]) == []


def _launcher(result_dir: str, index: int) -> None:
    get_settings.cache_clear()
    n_ran = launch(launch_dir=Path(result_dir) / "runs", poll_s=0.2, strm_lvl="ERROR")
    (Path(result_dir) / f"launcher{index}.count").write_text(str(n_ran))


def run_concurrent_launchers(tmp_path: Path, n_launchers: int, n_jobs: int, sleep_s: float) -> dict:
    out = tmp_path / "out.txt"
    submit_flows([append_line(str(out), f"job{i}", sleep_s) for i in range(n_jobs)])
    context = multiprocessing.get_context("fork")
    launchers = [context.Process(target=_launcher, args=(str(tmp_path), i)) for i in range(n_launchers)]
    start = time.perf_counter()
    for process in launchers:
        process.start()
    for process in launchers:
        process.join(300)
    return {
        "exit_codes": [p.exitcode for p in launchers],
        "runs": line_counts(out),
        "ran_per_launcher": [int((tmp_path / f"launcher{i}.count").read_text()) for i in range(n_launchers)],
        "states": firework_state_counts(),
        "seconds": time.perf_counter() - start,
    }


def test_eight_concurrent_launchers_run_every_job_exactly_once(data_dir, tmp_path):
    """8 launcher processes, 16 jobs: with FireWorks' raw file mode every job ran 8 times (see
    benchmarks/launchpad_concurrency.py); here each runs once and all end COMPLETED."""
    n_jobs = 16
    result = run_concurrent_launchers(tmp_path, n_launchers=8, n_jobs=n_jobs, sleep_s=0.3)
    assert result["exit_codes"] == [0] * 8
    assert result["runs"] == {f"job{i}": 1 for i in range(n_jobs)}
    assert sum(result["ran_per_launcher"]) == n_jobs
    assert sum(n > 0 for n in result["ran_per_launcher"]) >= 2  # the work was really shared
    assert result["states"]["COMPLETED"] == n_jobs and sum(result["states"].values()) == n_jobs
    assert BandflowStore.from_settings().job_store.count() == n_jobs


@pytest.mark.slow
def test_eight_worker_commands_on_a_flow_with_dependencies(data_dir, tmp_path):
    """8 separate `bandflow worker` processes (fresh interpreters) on 24 jobs, 8 of them waiting on others."""
    out = tmp_path / "out.txt"
    pairs = [(append_line(str(out), f"a{i}", 0.2), append_line(str(out), f"b{i}", 0.2)) for i in range(8)]
    flows = [Flow([a, b, join_labels([a.output, b.output], str(out))]) for a, b in pairs]
    submit_flows(flows)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bandflow.cli", "worker", "--quiet", "--poll", "0.5",
               "--launch-dir", str(tmp_path / "runs")]
    workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 8
    assert sum(int(o.split("finished: ")[1].split()[0]) for o in outputs) == 24
    assert line_counts(out) == {**{f"a{i}": 1 for i in range(8)}, **{f"b{i}": 1 for i in range(8)},
                                **{f"a{i}+b{i}": 1 for i in range(8)}}
    assert firework_state_counts()["COMPLETED"] == 24


def _die_inside_a_transaction(path: str) -> None:
    launchpad = FileLaunchPad(path)
    with launchpad.session() as raw:
        raw.fireworks.update_many({}, {"$set": {"state": "DEFUSED"}})
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_process_leaves_the_file_intact_and_unlocked(data_dir, tmp_path):
    submit_flows([append_line(str(tmp_path / "out.txt"), f"job{i}") for i in range(2)])
    launchpad = get_launchpad()
    before = launchpad.path.read_bytes()
    child = multiprocessing.get_context("fork").Process(target=_die_inside_a_transaction, args=(str(launchpad.path),))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert launchpad.path.read_bytes() == before
    assert firework_state_counts(launchpad)["READY"] == 2  # and the lock was released


def test_file_keeps_fireworks_file_mode_format(data_dir, tmp_path):
    submit_flows(append_line(str(tmp_path / "out.txt"), "x"))
    data = bson.json_util.loads(get_launchpad().path.read_text())
    fireworks = data["bandflow_fireworks"]["fireworks"]["documents"]
    assert len(fireworks) == 1 and fireworks[0][1]["state"] == "READY"
    assert data["bandflow_fireworks"]["fw_id_assigner"]["documents"][0][1]["next_fw_id"] == 2


def test_launchpad_file_settings(data_dir, tmp_path, settings_env):
    config = tmp_path / "lp" / "launchpad.yaml"
    config.parent.mkdir()
    config.write_text("host: null\nname: mine\nmongomock_serverstore_file: db/fw.json\n")
    settings_env(BANDFLOW_LAUNCHPAD_FILE=str(config))
    launchpad = get_launchpad()
    assert launchpad.path == (config.parent / "db" / "fw.json").resolve() and launchpad.name == "mine"

    (tmp_path / "launchpad.yaml").write_text("host: null\nmongomock_serverstore_file: here.json\n")
    settings_env(BANDFLOW_LAUNCHPAD_FILE=None)
    assert get_launchpad().path == (tmp_path / "here.json").resolve()  # ./launchpad.yaml

    for text, message in [("hots: localhost\n", "unknown key"), ("- a\n", "YAML mapping"), ("a: [\n", "cannot read")]:
        (tmp_path / "launchpad.yaml").write_text(text)
        with pytest.raises(BandflowError, match=message):
            get_launchpad()
    settings_env(BANDFLOW_LAUNCHPAD_FILE=str(tmp_path / "missing.yaml"))
    with pytest.raises(BandflowError, match="does not exist"):
        get_launchpad()


def test_unreachable_launchpad_mongodb_hides_the_password(data_dir, tmp_path):
    (tmp_path / "launchpad.yaml").write_text(
        "host: 127.0.0.1\nport: 1\nusername: fw\npassword: Hunter2Secret\n"
        "mongoclient_kwargs: {serverSelectionTimeoutMS: 300}\n"
    )
    with pytest.raises(BandflowError) as info:
        get_launchpad()
    assert "Hunter2Secret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    (tmp_path / "launchpad.yaml").write_text(
        "host: mongodb://fw:Hunter2Secret@127.0.0.1:1/x\nuri_mode: true\n"
        "mongoclient_kwargs: {serverSelectionTimeoutMS: 300}\n"
    )
    with pytest.raises(BandflowError) as info:
        get_launchpad()
    assert "Hunter2Secret" not in str(info.value) and "fw:***@127.0.0.1:1" in str(info.value)


def test_status_and_worker_commands(data_dir, tmp_path):
    submit_flows([append_line(str(tmp_path / "out.txt"), f"job{i}") for i in range(2)])
    runner = CliRunner()
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["fireworks"]["READY"] == 2 and status["surfaces_successful"] == 0
    assert status["launchpad"].startswith("file ") and "montydb" in status["store"]
    result = runner.invoke(app, ["worker", "--quiet", "--launch-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "2 jobs run" in result.stdout
    text = runner.invoke(app, ["status"]).stdout
    assert "COMPLETED 2" in text and "surfaces 0 successful, 0 failed" in text


def test_status_lists_the_fireworks_running_now_with_their_engine_progress(data_dir, tmp_path):
    import datetime
    import shutil

    from fireworks import FWorker

    from bandflow.activity import describe_launch
    from bandflow.queue import _utc, running_launches

    submit_flows([append_line(str(tmp_path / "out.txt"), f"job{i}") for i in range(2)])
    folder = tmp_path / "launcher_1"
    (folder / "hse06").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "data" / "cp2k" / "na2o_hse06_converged.out", folder / "hse06" / "cp2k.out")
    firework, _ = get_launchpad().checkout_fw(FWorker(name="node7"), str(folder))  # as a worker does
    running = running_launches()
    assert [(r["fw_id"], r["name"], r["launch_dir"]) for r in running] == [(firework.fw_id, "append_line", str(folder))]
    assert running[0]["started"] is not None and running[0]["last_pinged"] >= running[0]["started"]
    text = CliRunner().invoke(app, ["status"]).stdout
    assert "RUNNING 1" in text and "  now:\n  - append_line (fw 1) on " in text and ", started 0 min ago" in text
    assert "    CP2K hse06: SCF step " in text and "probably lost" not in text
    status = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert [r["fw_id"] for r in status["running"]] == [1] and status["running"][0]["started"].startswith("20")
    later = running[0]["last_pinged"] + datetime.timedelta(hours=5)  # no ping past FireWorks' run expiration
    assert "no ping for 5 h 00 min: probably lost (`bandflow requeue` puts it back)" in describe_launch(running[0], later)
    naive = running[0]["started"].replace(tzinfo=None)  # as pymongo returns FireWorks' UTC times
    assert _utc(naive) == running[0]["started"] and _utc(naive).tzinfo is not None
    assert _utc(running[0]["started"].isoformat()) == running[0]["started"] and _utc("not a time") is None
    shutil.rmtree(folder)  # a folder on another machine: the line without engine progress
    assert "\n" not in describe_launch(running[0])


def test_worker_walltime_leaves_a_bulk_hybrid_that_would_be_cut_off(data_dir, tmp_path):
    import datetime

    from bandflow.queue import fitting_fworker
    from bandflow.runner import store_durations

    out = tmp_path / "out.txt"
    bulk, slab, other = append_line(str(out), "bulk"), append_line(str(out), "slab"), append_line(str(out), "other")
    bulk.metadata["bandflow_step"], slab.metadata["bandflow_step"] = "bulk_edges", "slab_potential"
    submit_flows([bulk, slab, other])
    store = BandflowStore.from_settings()
    assert store_durations(store).bulk_seconds is None  # nothing timed: every job is taken
    end = datetime.datetime(2026, 12, 6, 12, 0, 0)

    def timed(uuid: str, minutes: float, **metadata) -> dict:
        started = (end - datetime.timedelta(minutes=minutes)).isoformat()
        return {"uuid": uuid, "index": 1, "completed_at": end.isoformat(), "output": None,
                "metadata": {"started_at": started, **metadata}}

    store.job_store.docs_store.update([timed("b", 120, bandflow_step="bulk_edges")], key=["uuid", "index"])
    assert store_durations(store).bulk_seconds == pytest.approx(7200)  # no surface timed yet: bulk jobs alone
    store.job_store.docs_store.update([timed("p", 10, bandflow_step="slab_potential", surface_id="s"),
                                       timed("a", 0, bandflow_step="alignment", surface_id="s")], key=["uuid", "index"])
    durations = store_durations(store)
    assert (durations.bulk_seconds, durations.surface_seconds) == pytest.approx((7200, 600))
    # an hour left: the 2-hour bulk job stays READY, the rest runs
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=3600) == 2
    assert line_counts(out) == {"slab": 1, "other": 1} and firework_state_counts()["READY"] == 1
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=3 * 3600) == 1
    assert line_counts(out) == {"slab": 1, "other": 1, "bulk": 1}
    # the narrowed query keeps the worker's own
    from fireworks import FWorker

    narrowed = fitting_fworker(FWorker(name="n", query={"spec.category": "big"}), durations, 700)
    assert json.loads(narrowed.to_dict()["query"]) == {"$and": [
        {"spec.category": "big"},
        {"spec._tasks.job.metadata.bandflow_step": {"$nin": ["bulk_edges", "slab_relax", "slab_potential"]}}]}
    assert fitting_fworker(FWorker(name="n"), durations, 3 * 3600).to_dict()["query"] == "{}"
    result = CliRunner().invoke(app, ["worker", "--walltime", "soon"])
    assert isinstance(result.exception, BandflowError) and "--walltime: a walltime is MM" in str(result.exception)


def test_worker_walltime_sizes_slab_steps_by_their_atoms(data_dir, tmp_path):
    """With timed surfaces of several sizes, a slab step fits by its own slab's atom count, not the mean."""
    import datetime

    from fireworks import FWorker

    from bandflow.queue import fitting_fworker
    from bandflow.runner import store_durations

    store = BandflowStore.from_settings()
    end = datetime.datetime(2026, 12, 6, 12, 0, 0)
    docs = []
    for i, n in enumerate((20, 24, 30, 40, 50, 60)):  # slab steps of n²/4 s: 100 s at 20 atoms, 900 s at 60
        started = (end - datetime.timedelta(seconds=n * n / 4)).isoformat()
        meta = {"surface_id": f"s{i}", "n_atoms": n}
        docs += [{"uuid": f"p{i}", "index": 1, "completed_at": end.isoformat(), "output": None,
                  "metadata": {"started_at": started, "bandflow_step": "slab_potential", **meta}},
                 {"uuid": f"a{i}", "index": 1, "completed_at": end.isoformat(), "output": None,
                  "metadata": {"started_at": end.isoformat(), "bandflow_step": "alignment", **meta}}]
    store.job_store.docs_store.update(docs, key=["uuid", "index"])
    durations = store_durations(store)
    assert durations.scaling is not None and durations.scaling.exponent == pytest.approx(2.0)
    assert durations.surface_seconds == pytest.approx(sum(n * n / 4 for n in (20, 24, 30, 40, 50, 60)) / 6)
    # 750 s left: slabs up to (750 / 1.25 × 4)^½ = 48 atoms fit; the mean surface (about 450 s × 1.25) too
    assert durations.scaling.largest(750 / 1.25) == 48
    out = tmp_path / "out.txt"
    small, large, unsized = (append_line(str(out), label) for label in ("small", "large", "unsized"))
    for job, n in ((small, 30), (large, 60)):
        job.metadata.update(bandflow_step="slab_potential", n_atoms=n)
    unsized.metadata["bandflow_step"] = "slab_relax"  # submitted before jobs recorded their size
    submit_flows([small, large, unsized])
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=750) == 2
    assert line_counts(out) == {"small": 1, "unsized": 1} and firework_state_counts()["READY"] == 1
    # 480 s left: the mean surface no longer fits, so a slab step of unknown size waits; 39 atoms still fit
    query = json.loads(fitting_fworker(FWorker(name="n"), durations, 480).to_dict()["query"])
    step, atoms = "spec._tasks.job.metadata.bandflow_step", "spec._tasks.job.metadata.n_atoms"
    assert query == {"$or": [{step: {"$nin": ["slab_relax", "slab_potential"]}},
                             {step: {"$in": ["slab_relax", "slab_potential"]}, atoms: {"$lte": 39}}]}
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=2 * 3600) == 1
    assert line_counts(out) == {"small": 1, "unsized": 1, "large": 1}


def test_worker_walltime_takes_each_bulk_at_its_own_pace(data_dir, tmp_path):
    """Two bulks timed at different paces (the same slab sizes, one twice as slow): a slab step fits by its
    bulk's own pace; a bulk timed too little to judge, or a job without a bulk name, by the common one."""
    import datetime

    from bandflow.runner import store_durations

    store = BandflowStore.from_settings()
    end = datetime.datetime(2026, 12, 6, 12, 0, 0)
    docs = []
    for bulk, pace in (("fast", 0.25), ("slow", 0.5)):
        for n in (20, 30, 40):  # slab steps of pace × n² s
            started = (end - datetime.timedelta(seconds=pace * n * n)).isoformat()
            meta = {"surface_id": f"{bulk}{n}", "n_atoms": n, "bulk_name": bulk}
            docs += [{"uuid": f"p{bulk}{n}", "index": 1, "completed_at": end.isoformat(), "output": None,
                      "metadata": {"started_at": started, "bandflow_step": "slab_potential", **meta}},
                     {"uuid": f"a{bulk}{n}", "index": 1, "completed_at": end.isoformat(), "output": None,
                      "metadata": {"started_at": end.isoformat(), "bandflow_step": "alignment", **meta}}]
    store.job_store.docs_store.update(docs, key=["uuid", "index"])
    durations = store_durations(store)
    assert durations.scaling.exponent == pytest.approx(2.0) and durations.scaling.coefficient == pytest.approx(0.375)
    assert {b: s.coefficient for b, s in durations.bulk_scalings.items()} == pytest.approx({"fast": 0.25, "slow": 0.5})
    # 760 s left, 608 s without the margin: 40 atoms at the common pace, 49 for "fast", 34 for "slow"
    out = tmp_path / "out.txt"
    jobs = {label: append_line(str(out), label) for label in ("fast45", "slow38", "other40", "nameless40")}
    for label, job in jobs.items():
        job.metadata.update(bandflow_step="slab_potential", n_atoms=int(label[-2:]))
        if not label.startswith("nameless"):
            job.metadata["bulk_name"] = label[:-2]
    submit_flows(list(jobs.values()))
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=760) == 3, line_counts(out)
    assert line_counts(out) == {"fast45": 1, "other40": 1, "nameless40": 1} and firework_state_counts()["READY"] == 1


def test_a_worker_stopped_by_sigterm_puts_its_job_back_and_a_short_walltime_leaves_it(data_dir, tmp_path):
    """SIGTERM (a batch allocation ending) during a job: FireWorks would mark it FIZZLED and the worker take the
    next job; instead the job goes back to READY, the worker stops (exit 143) and notes the attempt, and a later
    worker with less time than that attempt leaves the job while one with enough time runs it."""
    from bandflow.activity import stopped_seconds

    out = tmp_path / "out.txt"
    long_job, next_job = append_line(str(out), "long", 12), append_line(str(out), "next")
    submit_flows([long_job, next_job])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bandflow.cli", "worker", "--quiet", "--launch-dir", str(tmp_path / "runs")]
    worker = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while firework_state_counts()["RUNNING"] == 0 and time.time() < deadline and worker.poll() is None:
        time.sleep(0.2)
    time.sleep(5.0)  # inside the job's sleep
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 143, output
    counts = firework_state_counts()
    assert (counts["READY"], counts["FIZZLED"], counts["RUNNING"], counts["COMPLETED"]) == (2, 0, 0, 0)
    assert not out.exists()  # neither job finished, and the worker took no second one
    attempts = stopped_seconds(data_dir / "runs")
    assert set(attempts) == {long_job.uuid} and 5.0 <= attempts[long_job.uuid] < 12

    # less time left than the stopped attempt took (× 1.25): that job waits, the untimed other one runs
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=1.2 * attempts[long_job.uuid]) == 1
    assert line_counts(out) == {"next": 1} and firework_state_counts()["READY"] == 1
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR", walltime_s=600) == 1
    assert line_counts(out) == {"next": 1, "long": 1}


def test_requeue_puts_a_firework_whose_worker_was_killed_outright_back_to_ready(data_dir, tmp_path):
    """SIGKILL or a node failure leaves a firework RUNNING with no more pings; past the expiration `requeue`
    puts it back to READY and notes how long it is known to have run, and a firework pinged lately stays."""
    import datetime
    import socket

    from fireworks import FWorker

    from bandflow.activity import stopped_seconds
    from bandflow.queue import database

    out = tmp_path / "out.txt"
    lost_job, live_job = append_line(str(out), "lost"), append_line(str(out), "live")
    submit_flows([lost_job, live_job])
    launchpad = get_launchpad()
    lost_fw, _ = launchpad.checkout_fw(FWorker(name="node7"), str(tmp_path / "launcher_1"))  # then killed
    launchpad.checkout_fw(FWorker(name="node8"), str(tmp_path / "launcher_2"))  # alive, pinged just now
    now = datetime.datetime.now(datetime.UTC)
    with database(launchpad) as raw:  # the killed worker started 6 h ago and last pinged 5 h ago
        record = raw.launches.find_one({"fw_id": lost_fw.fw_id})
        entry = next(h for h in record["state_history"] if h["state"] == "RUNNING")
        as_stored = type(entry["updated_on"])
        for key, hours in (("created_on", 6), ("updated_on", 5)):
            moment = now - datetime.timedelta(hours=hours)
            entry[key] = moment.isoformat() if as_stored is str else moment.replace(tzinfo=None)
        started = entry["created_on"]
        raw.launches.update_one({"_id": record["_id"]}, {"$set": {"state_history": record["state_history"],
                                                                  "time_start": started}})

    runner = CliRunner()
    listed = runner.invoke(app, ["requeue", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    host = socket.gethostname()  # a launch records its machine (the FWorker's name is another thing)
    assert listed.output.splitlines() == [f"append_line (fw {lost_fw.fw_id}) on {host}: ran at least 1 h 00 min",
                                          "1 lost firework would be put back to READY"]
    assert firework_state_counts()["RUNNING"] == 2
    assert runner.invoke(app, ["requeue", "--lost-after", "6h"]).output == "0 lost fireworks put back to READY\n"
    done = runner.invoke(app, ["requeue"])
    assert done.exit_code == 0 and done.output.endswith("1 lost firework put back to READY\n")
    counts = firework_state_counts()
    assert (counts["READY"], counts["RUNNING"]) == (1, 1)
    assert stopped_seconds(data_dir / "runs") == {lost_job.uuid: 3600.0}
    assert launch(launch_dir=tmp_path / "runs", strm_lvl="ERROR") == 1 and line_counts(out) == {"lost": 1}
    bad = runner.invoke(app, ["requeue", "--lost-after", "soon"])
    assert isinstance(bad.exception, BandflowError) and str(bad.exception).startswith("--lost-after: ")
    early = runner.invoke(app, ["requeue", "--lost-after", "30m"])  # live workers ping hourly
    assert isinstance(early.exception, BandflowError)
    assert "lost after 30 min: not longer than the workers' ping interval (60 min)" in str(early.exception)


def test_a_worker_refused_for_its_job_count_creates_no_folder(data_dir, tmp_path):
    with pytest.raises(BandflowError, match="n_jobs must be at least 1, not 0"):
        launch(launch_dir=tmp_path / "launches", n_jobs=0)
    assert not (tmp_path / "launches").exists()


@pytest.mark.parametrize(("content", "message"), [("{not json", "is not valid JSON"),
                                                  ("[1, 2]", "is not a FireWorks database"),
                                                  ('{"fireworks": 5}', "is not a FireWorks database")])
def test_a_launchpad_file_that_is_not_a_database_is_one_error(data_dir, content, message):
    path = data_dir / "fireworks" / "launchpad.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    result = CliRunner().invoke(app, ["requeue", "--dry-run"])
    assert isinstance(result.exception, BandflowError) and message in str(result.exception)
    assert path.read_text() == content  # left as it was


def test_worker_query_keeps_a_bulks_own_pace_when_size_does_not_matter():
    """A fitted exponent of 0 (time independent of size) that fits the time left at the common pace: a bulk
    timed ten times slower is still held back, as `run --walltime` would."""
    from fireworks import FWorker

    from bandflow.queue import fitting_fworker
    from bandflow.timing import JobDurations, SizeScaling

    flat = SizeScaling(exponent=0.0, coefficient=100.0, n_timed=9)
    durations = JobDurations(bulk_seconds=None, surface_seconds=100.0, scaling=flat, atoms={},
                             bulk_scalings={"slow": SizeScaling(exponent=0.0, coefficient=1000.0, n_timed=2,
                                                                borrowed=True)})
    query = json.loads(fitting_fworker(FWorker(name="n"), durations, 500).to_dict()["query"])
    step, bulk = "spec._tasks.job.metadata.bandflow_step", "spec._tasks.job.metadata.bulk_name"
    sized = ["slab_relax", "slab_potential"]
    assert query == {"$or": [{step: {"$nin": sized}}, {step: {"$in": sized}, bulk: {"$nin": ["slow"]}},
                             {step: {"$in": sized}, "spec._tasks.job.metadata.n_atoms": {"$exists": False},
                              bulk: {"$nin": ["slow"]}}]}
    # what it lets through: the slow bulk's slab jobs, with or without a size (submitted before n_atoms), are held
    import mongomock

    fireworks = mongomock.MongoClient().db.fireworks
    jobs = {"slow sized": ("slow", 20), "slow unsized": ("slow", None), "fast sized": ("fast", 20),
            "fast unsized": ("fast", None)}
    fireworks.insert_many([{"name": name, "spec": {"_tasks": [{"job": {"metadata": {
        "bandflow_step": "slab_potential", "bulk_name": b, **({"n_atoms": n} if n else {})}}}]}}
        for name, (b, n) in jobs.items()])
    assert sorted(doc["name"] for doc in fireworks.find(query)) == ["fast sized", "fast unsized"]
