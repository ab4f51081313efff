"""What runners compute now (bandflow.activity): records, liveness and the engine's progress."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bandflow.activity import (
    ActiveJob,
    active_jobs,
    clear_active,
    describe_active,
    drop_stopped,
    engine_progress,
    mark_active,
    record_stopped,
    stopped_seconds,
)
from bandflow.cli import campaign_status_text
from bandflow.runner import BulkProgress, CampaignStatus

DATA = Path(__file__).parent / "data" / "cp2k"


def _job(folder: Path, pid: int | None = None, host: str | None = None, minutes: int = 90, campaign: str = "c",
         step: str = "bulk_edges", target: str = "LiGaO2") -> ActiveJob:
    return ActiveJob(campaign=campaign, job_name=f"{step} {target}", step=step, target=target,
                     pid=os.getpid() if pid is None else pid, host=host or socket.gethostname(),
                     started_at=(datetime.now() - timedelta(minutes=minutes)).isoformat(), folder=str(folder))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_record_per_process_replaced_per_job_and_removed_at_the_end(tmp_path):
    runs = tmp_path / "runs"
    mark_active(runs, _job(tmp_path, step="bulk_edges"))
    mark_active(runs, _job(tmp_path, step="slab_potential", target="MgO-225-100-t0", minutes=1))
    (job,) = active_jobs(runs)
    assert job.step == "slab_potential" and job.alive() is True and 55 < job.seconds() < 65
    assert active_jobs(runs, "other campaign") == []
    (runs / ".active" / "garbage.json").write_text("{not json")  # unreadable records are skipped
    assert len(active_jobs(runs)) == 1
    clear_active(runs)
    assert active_jobs(runs) == []


def test_stopped_and_foreign_runners(tmp_path):
    runs = tmp_path / "runs"
    dead = _job(tmp_path, pid=_dead_pid())
    foreign = _job(tmp_path, pid=1, host="hpc-node-17")
    mark_active(runs, dead)
    mark_active(runs, foreign)
    assert dead.alive() is False and foreign.alive() is None
    assert "stopped (its process is gone; the job runs again" in describe_active(dead)
    assert "on host hpc-node-17 (not checked from here)" in describe_active(foreign)
    assert drop_stopped(runs) == 1  # the foreign one is not ours to judge
    assert active_jobs(runs) == [foreign]


def test_engine_progress_reads_the_latest_cp2k_output(tmp_path):
    assert engine_progress(tmp_path) is None
    (tmp_path / "pbe_gamma").mkdir()
    shutil.copy(DATA / "na2o_hse06_converged.out", tmp_path / "pbe_gamma" / "cp2k.out")
    now = (tmp_path / "pbe_gamma" / "cp2k.out").stat().st_mtime + 125
    assert engine_progress(tmp_path, now) == "CP2K pbe_gamma: SCF step 10, energy change -1.6e-08 Ha (written 2 min ago)"
    # a newer run (the hybrid) whose first step, with the integral pass, has not finished
    (tmp_path / "hse06").mkdir()
    head = (DATA / "na2o_hse06_converged.out").read_text().split("SCF WAVEFUNCTION OPTIMIZATION")[0]
    (tmp_path / "hse06" / "cp2k.out").write_text(head + "SCF WAVEFUNCTION OPTIMIZATION\n")
    os.utime(tmp_path / "hse06" / "cp2k.out", (now, now))
    text = engine_progress(tmp_path, now + 3700)
    assert text.startswith("CP2K hse06: no SCF step finished yet (written 1 h 01 min ago;")
    assert text.endswith("a hybrid's first step includes its integral pass)")
    (tmp_path / "hse06" / "cp2k.out").rename(tmp_path / "pbe_gamma" / "cp2k.out")  # a PBE run: no such note
    assert engine_progress(tmp_path, now + 60) == "CP2K pbe_gamma: no SCF step finished yet (written 1 min ago)"
    # CP2K's header says when the run started (local time): how long it has been running
    started = datetime.fromtimestamp(now - 3 * 3600 - 120).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    header = f"  **** **** ******  **  PROGRAM STARTED AT               {started}\n"
    (tmp_path / "hse06" / "cp2k.out").write_text(header + head + "SCF WAVEFUNCTION OPTIMIZATION\n")
    os.utime(tmp_path / "hse06" / "cp2k.out", (now, now))
    assert engine_progress(tmp_path, now).startswith(
        "CP2K hse06 (running for 3 h 02 min): no SCF step finished yet (written 0 min ago; a hybrid's")


def test_status_text_names_the_running_jobs(tmp_path):
    (tmp_path / "hse06").mkdir()
    shutil.copy(DATA / "li2o_hse06_diverging.out", tmp_path / "hse06" / "cp2k.out")
    progress = CampaignStatus(name="c", total=10, successful=0, failed=0, remaining=10, outdated=0,
                              seconds_per_surface=None, eta_seconds=None,
                              bulks=[BulkProgress("LiGaO2", 10, 0, 0, bulk_stored=False)],
                              running=[_job(tmp_path)])
    text = campaign_status_text(progress)
    assert "  now:\n  - bulk_edges LiGaO2: running, started 1 h 30 min ago (pid" in text
    assert "\n    CP2K hse06: SCF step " in text


def test_a_record_that_cannot_be_written_does_not_fail_the_job(tmp_path, caplog):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".active").write_text("a file where the folder should be")
    mark_active(runs, _job(tmp_path))  # logged, not raised
    assert "could not record the running job" in caplog.text and active_jobs(runs) == []


def test_stopped_jobs_are_recorded_longest_first_and_bad_lines_skipped(tmp_path):
    runs = tmp_path / "runs"
    assert stopped_seconds(runs) == {}
    job = ActiveJob(**{**_job(tmp_path).__dict__, "uuid": "u1"})
    record_stopped(runs, job, 600.0)
    record_stopped(runs, job, 5400.0)
    record_stopped(runs, ActiveJob(**{**_job(tmp_path).__dict__, "uuid": "u2"}), 60.0)
    with open(runs / ".active" / "stopped.jsonl", "a") as handle:
        handle.write("not json\n{}\n")
    assert stopped_seconds(runs) == {"u1": 5400.0, "u2": 60.0}
    assert active_jobs(runs) == []  # the stopped list is not a running job


def test_a_killed_runner_leaves_a_stopped_record_as_long_as_its_folder_was_written(tmp_path):
    runs, folder = tmp_path / "runs", tmp_path / "job"
    (folder / "hse06").mkdir(parents=True)
    output = folder / "hse06" / "cp2k.out"
    output.write_text("...")
    dead = ActiveJob(**{**_job(folder, pid=_dead_pid(), minutes=150).__dict__, "uuid": "bulk-uuid"})
    written = datetime.fromisoformat(dead.started_at).timestamp() + 147 * 60  # last written 147 min in
    os.utime(output, (written, written))
    mark_active(runs, dead)
    assert drop_stopped(runs) == 1
    assert stopped_seconds(runs) == {"bulk-uuid": pytest.approx(147 * 60, abs=1)}


def test_a_killed_runner_with_an_empty_or_missing_folder_leaves_no_stopped_record(tmp_path):
    runs = tmp_path / "runs"
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        mark_active(runs, ActiveJob(**{**_job(folder, pid=_dead_pid()).__dict__, "uuid": folder.name}))
    assert drop_stopped(runs) == 2 and active_jobs(runs) == []
    assert stopped_seconds(runs) == {}  # nothing tells how long they ran
