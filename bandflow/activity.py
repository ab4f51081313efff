"""The jobs running now: each runner keeps a small file saying what it computes, while it computes.

`bandflow run` computes one job at a time, and a bulk hybrid can take hours with nothing in the store
until it ends. While a job runs, its runner keeps ``<runs>/.active/<host>-<pid>.json`` (the campaign, the
job, its folder, when it started) and removes it when the run ends. ``bandflow status`` reads these
files, checks whether each process still lives, and reads the engine's latest SCF step in the job folder,
so a user can tell a long step from a stuck or stopped one. jobflow records nothing about a job until it
completes, hence this module.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bandflow.files import replaced_atomically

ACTIVE_FOLDER = ".active"
#: jobs stopped before they finished, one JSON line each (:func:`record_stopped`)
STOPPED_FILE = "stopped.jsonl"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveJob:
    """One job a runner is computing."""

    campaign: str
    job_name: str
    step: str
    #: the surface id of a slab step or alignment, else the bulk name
    target: str
    pid: int
    host: str
    started_at: str  # ISO, local time
    folder: str
    #: the job's uuid (empty in records written before it was kept)
    uuid: str = ""

    def alive(self) -> bool | None:
        """Whether the runner process still lives (None when it runs on another host: not checkable)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True

    def seconds(self, now: datetime | None = None) -> float:
        """Seconds since the job started."""
        return ((now or datetime.now()) - datetime.fromisoformat(self.started_at)).total_seconds()


def _marker(runs_dir: Path, host: str, pid: int) -> Path:
    return Path(runs_dir) / ACTIVE_FOLDER / f"{host}-{pid}.json"


def mark_active(runs_dir: Path, job: ActiveJob) -> None:
    """Record ``job`` as the one this process computes (replacing its previous job). A record that cannot
    be written (full disk, read-only folder) is logged, not raised: it must not fail the job it describes."""
    path = _marker(runs_dir, job.host, job.pid)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as temporary:
            temporary.write_text(json.dumps(asdict(job), indent=1))
    except OSError as exc:
        logger.warning("could not record the running job in %s: %s", path, exc)


def clear_active(runs_dir: Path) -> None:
    """This process computes nothing any more."""
    _marker(runs_dir, socket.gethostname(), os.getpid()).unlink(missing_ok=True)


def drop_stopped(runs_dir: Path) -> int:
    """Remove the records of runners of this host whose process is gone (killed, machine restarted);
    returns how many. A new run calls it, so ``status`` reports a stopped runner until then.

    Each such job is noted as stopped (:func:`record_stopped`) after the time its folder was last written
    (a lower bound of how long it ran); one whose folder holds no file is not (nothing tells how long it
    ran). Runners of other hosts cannot be checked from here and are left alone."""
    dropped = 0
    for job in active_jobs(runs_dir):
        if job.alive() is False:
            try:
                folder = Path(job.folder)
                last = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=None)
            except OSError:  # unreadable, or removed meanwhile: no record, the marker still goes
                last = None
            if last is not None:
                record_stopped(runs_dir, job, last - datetime.fromisoformat(job.started_at).timestamp())
            _marker(runs_dir, job.host, job.pid).unlink(missing_ok=True)
            dropped += 1
    return dropped


def record_stopped(runs_dir: Path, job: ActiveJob, seconds: float) -> None:
    """Note that ``job`` was stopped (interrupted, or its runner killed) after ``seconds`` without finishing,
    in ``<runs>/.active/stopped.jsonl``: a ``--walltime`` run then does not start it with less time left,
    and ``bandflow status`` shows it. Best effort, like :func:`mark_active`."""
    path = Path(runs_dir) / ACTIVE_FOLDER / STOPPED_FILE
    line = json.dumps({**asdict(job), "seconds": round(max(seconds, 0.0), 1)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:  # one short line per write: appends from two runners do not mix
            handle.write(line + "\n")
    except OSError as exc:
        logger.warning("could not record the stopped job in %s: %s", path, exc)


def stopped_seconds(runs_dir: Path) -> dict[str, float]:
    """The longest stopped attempt of each job (by uuid) recorded under ``runs_dir``; unreadable lines are
    skipped."""
    path = Path(runs_dir) / ACTIVE_FOLDER / STOPPED_FILE
    longest: dict[str, float] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return longest
    for line in lines:
        try:
            record = json.loads(line)
            uuid, seconds = str(record["uuid"]), float(record["seconds"])
        except (ValueError, KeyError, TypeError):
            continue
        if uuid:
            longest[uuid] = max(longest.get(uuid, 0.0), seconds)
    return longest


def active_jobs(runs_dir: Path, campaign: str | None = None) -> list[ActiveJob]:
    """The recorded jobs (of ``campaign`` only, if given), oldest first; unreadable files are skipped."""
    jobs = []
    for path in sorted((Path(runs_dir) / ACTIVE_FOLDER).glob("*.json")):
        try:
            job = ActiveJob(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if campaign is None or job.campaign == campaign:
            jobs.append(job)
    return sorted(jobs, key=lambda job: job.started_at)


def engine_progress(folder: Path, now: float | None = None) -> str | None:
    """The latest CP2K output under ``folder``: its run (sub-folder), the SCF steps done in its latest
    loop with the last energy change, and how long ago it was written. None without a CP2K output."""
    from bandflow.cp2k.parsing import last_scf_steps

    outputs = [p for p in Path(folder).rglob("cp2k.out") if p.is_file()]
    if not outputs:
        return None
    latest = max(outputs, key=lambda p: p.stat().st_mtime)
    run = latest.parent.relative_to(folder).as_posix() if latest.parent != Path(folder) else "."
    text = latest.read_text(errors="replace")
    steps = last_scf_steps(text)
    now = now if now is not None else datetime.now().timestamp()
    written = f"written {duration_text(max(0.0, now - latest.stat().st_mtime))} ago"
    hybrid = "; a hybrid's first step includes its integral pass" if "hse" in run.lower() else ""
    if started := _PROGRAM_STARTED.search(text[:20000]):  # CP2K's header, in local time like its clock
        run += f" (running for {duration_text(max(0.0, now - datetime.fromisoformat(started[1]).timestamp()))})"
    if not steps:
        return f"CP2K {run}: no SCF step finished yet ({written}{hybrid})"
    step, _, _, change = steps[-1]
    return f"CP2K {run}: SCF step {step}, energy change {change:.1e} Ha ({written})"


_PROGRAM_STARTED = re.compile(r"PROGRAM STARTED AT\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def duration_text(seconds: float) -> str:
    """``seconds`` as "42 min" or "2 h 07 min"."""
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def describe_active(job: ActiveJob, now: datetime | None = None) -> str:
    """One line for ``bandflow status``: what runs, since when, and whether its process lives; then the
    engine's progress on a second line where a CP2K output exists."""
    alive = job.alive()
    state = {True: "running", False: "stopped (its process is gone; the job runs again on the next "
             "`bandflow run`)", None: f"on host {job.host} (not checked from here)"}[alive]
    line = f"{job.step} {job.target}: {state}, started {duration_text(job.seconds(now))} ago (pid {job.pid})"
    folder = Path(job.folder)
    progress = (engine_progress(folder, now.timestamp() if now else None)
                if alive is not False and folder.is_dir() else None)
    return line + (f"\n    {progress}" if progress else "")


def describe_launch(run: dict, now: datetime | None = None) -> str:
    """One line for ``bandflow status`` per FireWorks launch RUNNING (:func:`bandflow.queue.running_launches`):
    the job, its worker's host, since when, its last ping; then the engine's progress where its folder is
    readable from here. A launch not pinged for FireWorks' run expiration is probably lost (its worker was
    killed): ``bandflow requeue`` puts such runs back to READY."""
    from fireworks.fw_config import RUN_EXPIRATION_SECS

    now = now or datetime.now(UTC)
    started, pinged = run.get("started"), run.get("last_pinged")
    line = f"{run.get('name') or 'firework'} (fw {run['fw_id']}) on {run.get('host') or 'an unknown host'}"
    if started:
        line += f", started {duration_text((now - started).total_seconds())} ago"
    if pinged and (now - pinged).total_seconds() > RUN_EXPIRATION_SECS:
        line += (f"; no ping for {duration_text((now - pinged).total_seconds())}: probably lost "
                 "(`bandflow requeue` puts it back)")
    folder = Path(run["launch_dir"]) if run.get("launch_dir") else None
    progress = engine_progress(folder, now.timestamp()) if folder and folder.is_dir() else None
    return line + (f"\n    {progress}" if progress else "")
