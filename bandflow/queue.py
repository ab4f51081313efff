"""FireWorks submission and workers, with a LaunchPad that needs no database server.

``get_launchpad`` reads a FireWorks ``my_launchpad.yaml``-style file (``launchpad.yaml``). With a
``host`` it is an ordinary MongoDB LaunchPad. Without one it is :class:`FileLaunchPad`: FireWorks' file
mode (mongomock + mongomock-persistence, one JSON file under ``data_dir``) made safe for several
processes.

Why FireWorks' own file mode is not enough: each process reads the whole database when its client
starts and writes the whole database back when the process exits. Two launchers at once both see the
same READY firework, both run it, and the last to exit overwrites the other's updates (measured: 4
launchers on 8 jobs ran 2 jobs twice and left 6 READY). A SIGKILLed process loses all its changes.

The design here: every LaunchPad *method call* is one transaction. Under an exclusive ``fcntl.flock``
on ``<file>.lock`` the database is re-read from the file (skipped when the file is unchanged since this
process last read or wrote it), the FireWorks method runs on it in memory, and the result is written
back atomically (temporary file + ``os.replace``) before the lock is released. FireWorks' ``Rocket``
reserves a firework with one call (``checkout_fw``) and reports the result with another
(``complete_launch``), so the lock is held for milliseconds while reserving and updating, never while a
job runs, and a firework can be reserved by one launcher only. A launcher killed mid-job leaves its
firework RUNNING (as with MongoDB; ``bandflow requeue``, :func:`requeue_lost`, puts it back), never a torn file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

import yaml
from fireworks import FWorker, LaunchPad
from fireworks.core.firework import Firework
from fireworks.core.rocket_launcher import launch_rocket
from fireworks.utilities.fw_utilities import create_datestamp_dir, get_fw_logger

from bandflow.activity import ActiveJob, record_stopped, stopped_seconds
from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically
from bandflow.settings import BandflowSettings, get_settings
from bandflow.store import BandflowStore, exclusive_file_lock, mongo_error_line, scrub_secret
from bandflow.timing import SLAB_STEPS, TIMED_STEPS, WALLTIME_MARGIN, JobDurations

DEFAULT_LAUNCHPAD_NAME = "bandflow_fireworks"
DEFAULT_LOG_LEVEL = "WARNING"
"""LaunchPad log level on stdout unless launchpad.yaml sets strm_lvl (FireWorks' INFO would mix its
messages into the output of `bandflow status --json` and friends)."""

LAUNCHPAD_KEYS = {
    "host", "port", "name", "username", "password", "logdir", "strm_lvl", "user_indices", "wf_user_indices",
    "authsource", "uri_mode", "mongoclient_kwargs", "mongomock_serverstore_file",
}
"""Keys of FireWorks' my_launchpad.yaml, plus bandflow's ``mongomock_serverstore_file`` for file mode."""

# LaunchPad methods that never touch the database: called directly, without lock or reload.
_NO_DATABASE_METHODS = {"get_logdir", "to_dict", "to_file", "to_format", "as_dict"}


class FileLaunchPad:
    """A FireWorks LaunchPad on a JSON file, safe for many processes (see the module docstring).

    Use it like a :class:`fireworks.LaunchPad`: every public method of LaunchPad is available and runs
    as one locked transaction. For several steps in one transaction, or direct collection access, use
    :meth:`session`. The file has FireWorks' own file-mode format, so ``lpad`` with
    ``MONGOMOCK_SERVERSTORE_FILE`` pointing at it can read it (but must not run beside bandflow workers).
    """

    def __init__(
        self, path: Path | str, name: str = DEFAULT_LAUNCHPAD_NAME, logdir: str | None = None,
        strm_lvl: str | None = DEFAULT_LOG_LEVEL,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._launchpad = _unconnected_launchpad(name, logdir, strm_lvl)
        self._server_store = None
        self._file_signature: tuple[int, int, int] | None = None
        self._file_text = ""
        self._thread_lock = threading.RLock()
        self._depth = 0

    def __repr__(self) -> str:
        return f"FileLaunchPad({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self._launchpad.name

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[LaunchPad]:
        """Hold the lock and yield the FireWorks LaunchPad bound to the current database.

        With ``write`` (default) the database is saved afterwards, also when the block raises (like a
        MongoDB, where each finished update stays). Nested sessions in one thread share the outer one.
        """
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._launchpad
                finally:
                    self._depth -= 1
                return
            with exclusive_file_lock(self.lock_path):
                self._depth = 1
                try:
                    self._load()
                    try:
                        yield self._launchpad
                    finally:
                        if write:
                            self._save()
                finally:
                    self._depth = 0

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "_launchpad":  # not set yet (during __init__ or unpickling)
            raise AttributeError(attribute)
        value = getattr(self._launchpad, attribute)
        if attribute.startswith("_") or attribute in _NO_DATABASE_METHODS or not callable(value):
            return value

        @wraps(value)
        def locked_call(*args: Any, **kwargs: Any) -> Any:
            with self.session():
                return getattr(self._launchpad, attribute)(*args, **kwargs)

        return locked_call

    def _signature(self) -> tuple[int, int, int] | None:
        """Identity of the file's current version (inode, mtime, size; a rewrite makes a new inode).

        Taken after open(), which revalidates cached attributes on NFS (close-to-open consistency).
        """
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _load(self) -> None:
        """Bind the LaunchPad to the database in the file (re-read only if another process changed it)."""
        import bson.json_util
        import mongomock
        import mongomock_persistence  # noqa: F401  (adds to_dict/from_dict to mongomock's stores)
        from mongomock.store import DatabaseStore, ServerStore

        signature = self._signature()
        if self._server_store is not None and signature == self._file_signature:
            return
        text = self.path.read_text(encoding="utf-8") if signature else ""
        try:
            data = bson.json_util.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise BandflowError(f"the LaunchPad file {self.path} is not valid JSON ({exc})") from None
        # Built by hand: mongomock_persistence's ServerStore(filename) would prefer the
        # MONGOMOCK_SERVERSTORE_FILE variable over our path and write the whole file again at exit.
        server_store = ServerStore.__new__(ServerStore)
        try:
            server_store._databases = {name: DatabaseStore.from_dict(db) for name, db in data.items()}
        except (AttributeError, TypeError, ValueError, KeyError):  # JSON, but not a database written here
            raise BandflowError(f"the LaunchPad file {self.path} is not a FireWorks database "
                                "(JSON of another shape)") from None
        server_store._filename = None
        client = mongomock.MongoClient(_store=server_store)
        launchpad = self._launchpad
        launchpad.connection = client
        launchpad.db = client[launchpad.name]
        launchpad.fireworks = launchpad.db.fireworks
        launchpad.launches = launchpad.db.launches
        launchpad.offline_runs = launchpad.db.offline_runs
        launchpad.fw_id_assigner = launchpad.db.fw_id_assigner
        launchpad.workflows = launchpad.db.workflows
        # mongomock has no 16 MB document limit, so FireWorks never needs its GridFS fallback here.
        launchpad.gridfs_fallback = None
        self._server_store = server_store
        self._file_signature = signature
        self._file_text = text
        if launchpad.fw_id_assigner.count_documents({}) == 0:  # a new database: what `lpad reset` does
            launchpad.reset("", require_password=False)

    def _save(self) -> None:
        """Write the database back if it changed (atomically: temporary file, fsync, rename)."""
        import bson.json_util

        # Same text as bson.json_util.dumps (FireWorks' file format) but about 15x faster: the C JSON
        # encoder walks the documents and bson's converter only sees ObjectIds, dates and binaries.
        text = json.dumps(
            self._server_store.to_dict(),
            default=functools.partial(bson.json_util.default, json_options=bson.json_util.DEFAULT_JSON_OPTIONS),
        )
        if text == self._file_text and self._signature() == self._file_signature:
            return  # a read-only call: nothing to write
        try:
            with replaced_atomically(self.path, fsync=True) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except BaseException:
            self._server_store = None  # memory and file may differ now: re-read next time
            raise
        self._file_text = text
        self._file_signature = self._signature()


def database(launchpad: LaunchPad | FileLaunchPad | None, write: bool = True) -> contextlib.AbstractContextManager:
    """A context yielding the FireWorks LaunchPad to query: the configured one if ``launchpad`` is None; a
    file LaunchPad as one locked transaction (saved afterwards with ``write``), a MongoDB one as it is."""
    launchpad = launchpad if launchpad is not None else get_launchpad()
    return launchpad.session(write=write) if isinstance(launchpad, FileLaunchPad) else contextlib.nullcontext(launchpad)


def _unconnected_launchpad(name: str, logdir: str | None, strm_lvl: str | None) -> LaunchPad:
    """A FireWorks LaunchPad whose database connection FileLaunchPad sets for each transaction."""
    launchpad = LaunchPad(
        host="localhost", name=name, logdir=logdir, strm_lvl=strm_lvl, mongoclient_kwargs={"connect": False}
    )
    # FireWorks made a client while the instance was built; it never connected. If FireWorks was imported
    # with MONGOMOCK_SERVERSTORE_FILE set, that client is a file-mode one that would rewrite its file at
    # exit: switch that off.
    finalizer = getattr(getattr(launchpad.connection, "_store", None), "_finalizer", None)
    if finalizer is not None:
        finalizer.detach()
    launchpad.connection.close()
    return launchpad


def _launchpad_file(settings: BandflowSettings) -> Path | None:
    if settings.launchpad_file is not None:
        path = Path(settings.launchpad_file).expanduser()
        if not path.is_file():
            raise BandflowError(f"launchpad file {path} (launchpad_file / BANDFLOW_LAUNCHPAD_FILE) does not exist")
        return path
    for candidate in (Path.cwd() / "launchpad.yaml", Path(settings.data_dir).expanduser() / "launchpad.yaml"):
        if candidate.is_file():
            return candidate
    return None


def read_launchpad_config(settings: BandflowSettings | None = None) -> tuple[dict[str, Any], Path | None]:
    """The LaunchPad settings (``my_launchpad.yaml`` keys) and the file they came from (None: defaults).

    Looked up in order: ``launchpad_file`` (``BANDFLOW_LAUNCHPAD_FILE``), ``./launchpad.yaml``,
    ``<data_dir>/launchpad.yaml``; with none, file mode under ``data_dir``.
    """
    settings = settings or get_settings()
    path = _launchpad_file(settings)
    if path is None:
        return {}, None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BandflowError(f"cannot read the launchpad file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise BandflowError(f"the launchpad file {path} must be a YAML mapping (host: ..., name: ...)")
    unknown = sorted(set(config) - LAUNCHPAD_KEYS)
    if unknown:
        raise BandflowError(f"unknown key(s) {', '.join(unknown)} in {path}; allowed: {', '.join(sorted(LAUNCHPAD_KEYS))}")
    return config, path


def get_launchpad(settings: BandflowSettings | None = None) -> LaunchPad | FileLaunchPad:
    """The LaunchPad of this installation: MongoDB if the launchpad file names a host, else file mode.

    File mode keeps the database in ``mongomock_serverstore_file`` (relative to the launchpad file), else
    ``$MONGOMOCK_SERVERSTORE_FILE``, else ``<data_dir>/fireworks/launchpad.json``.
    """
    settings = settings or get_settings()
    config, source = read_launchpad_config(settings)
    if config.get("host"):
        return _mongo_launchpad(config, source)
    file_setting = config.get("mongomock_serverstore_file") or os.environ.get("MONGOMOCK_SERVERSTORE_FILE")
    if file_setting:
        path = Path(file_setting).expanduser()
        if source is not None and not path.is_absolute():
            path = source.parent / path
    else:
        path = Path(settings.data_dir).expanduser() / "fireworks" / "launchpad.json"
    return FileLaunchPad(
        path, name=config.get("name") or DEFAULT_LAUNCHPAD_NAME, logdir=config.get("logdir"),
        strm_lvl=config.get("strm_lvl") or DEFAULT_LOG_LEVEL,
    )


def _mongo_launchpad(config: dict[str, Any], source: Path | None) -> LaunchPad:
    config = {k: v for k, v in config.items() if k != "mongomock_serverstore_file"}
    config.setdefault("name", DEFAULT_LAUNCHPAD_NAME)
    config["strm_lvl"] = config.get("strm_lvl") or DEFAULT_LOG_LEVEL
    client_kwargs = dict(config.get("mongoclient_kwargs") or {})
    client_kwargs.setdefault("serverSelectionTimeoutMS", 5000)
    config["mongoclient_kwargs"] = client_kwargs
    host = str(config["host"])
    secret = config.get("password")
    if config.get("uri_mode"):
        from bandflow.store import redact_uri, uri_password

        secret = uri_password(host)
        where = redact_uri(host)
    else:
        where = f"{host}:{config.get('port') or 27017}"
    try:
        launchpad = LaunchPad.from_dict(config)
        launchpad.connection.admin.command("ping")
        if launchpad.fw_id_assigner.count_documents({}) == 0 and launchpad.workflows.count_documents({}) == 0:
            launchpad.reset("", require_password=False)  # a brand-new database: what `lpad reset` does
    except Exception as exc:  # pymongo errors of many kinds; never show the password
        raise BandflowError(
            scrub_secret(f"cannot use the LaunchPad MongoDB at {where} (from {source}): ", secret)
            + mongo_error_line(exc, secret)
        ) from None
    return launchpad


def submit_flows(
    flows: Any, launchpad: LaunchPad | FileLaunchPad | None = None, allow_external_references: bool = False,
) -> list[int]:
    """Add jobflow Flows/Jobs (one or a list) to the LaunchPad as workflows; returns the new fw_ids.

    Conversion is jobflow's ``flow_to_workflow`` with ``store=None``: workers write to their own
    ``JOB_STORE`` (``bandflow worker`` sets it to the bandflow store; for ``rlaunch`` point
    ``JOBFLOW_CONFIG_FILE`` at ``<data_dir>/jobflow.yaml``, which this function refreshes).
    ``allow_external_references`` lets jobs read outputs of jobs already in the job store.
    """
    from jobflow import Flow, Job
    from jobflow.managers.fireworks import flow_to_workflow

    from bandflow.flows import unconnected_jobs_allowed

    items = list(flows) if isinstance(flows, list | tuple) else [flows]
    for item in items:
        if not isinstance(item, Flow | Job):
            raise BandflowError(f"cannot submit {type(item).__name__}: expected jobflow Flow or Job objects")
    with unconnected_jobs_allowed():
        workflows = [flow_to_workflow(item, allow_external_references=allow_external_references) for item in items]
    fw_ids: list[int] = []
    with database(launchpad) as raw:
        for workflow in workflows:
            old_new = raw.add_wf(workflow)
            fw_ids.extend(sorted(old_new.values()))
    if workflows:
        _write_worker_config()
    return fw_ids


def _write_worker_config(settings: BandflowSettings | None = None) -> None:
    settings = settings or get_settings()
    with BandflowStore.from_settings(settings) as store:
        store.write_jobflow_config(Path(settings.data_dir).expanduser() / "jobflow.yaml")


def launch(
    n_jobs: int | None = None,
    launchpad: LaunchPad | FileLaunchPad | None = None,
    *,
    launch_dir: Path | str | None = None,
    store: BandflowStore | None = None,
    fworker: FWorker | None = None,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    strm_lvl: str = "INFO",
    walltime_s: float | None = None,
) -> int:
    """Run ready fireworks one after another (what ``bandflow worker`` does); returns how many ran.

    Stops after ``n_jobs`` fireworks, when nothing is ready or will become ready (waits ``poll_s``
    between checks while other workers run parents of waiting fireworks), or after ``timeout_s``.
    With ``walltime_s`` (the allocation's time left) it reserves only fireworks whose bandflow step is
    expected to finish in the time left, with :data:`~bandflow.timing.WALLTIME_MARGIN` to spare (mean
    times of the store's timed jobs, slab steps sized by their atom count, :func:`bandflow.runner.store_durations`
    and :func:`fitting_fworker`): a bulk hybrid that would be cut off stays READY for a later worker instead of
    being left RUNNING and lost.
    A job stopped by SIGTERM (a batch allocation ending) or Ctrl-C goes back to READY, its attempt is noted
    as ``bandflow run`` notes one (:func:`bandflow.activity.record_stopped`: a later worker's ``walltime_s``
    counts the job as at least that long), and the worker stops (:func:`_interrupt_noted`).
    Jobs write to the bandflow store; each runs in its own ``launcher_*`` folder under ``launch_dir``
    (default ``<data_dir>/launches``). A loop of our own instead of FireWorks' ``rapidfire`` because
    rapidfire neither reports how many fireworks ran nor restores the working directory.
    """
    import jobflow

    from bandflow.forcefields import limit_torch_threads

    if n_jobs is not None and n_jobs < 1:
        raise BandflowError(f"n_jobs must be at least 1, not {n_jobs}")
    settings = get_settings()
    limit_torch_threads()  # CHGNet relaxations run in this process, beside other workers' engines
    launchpad = launchpad if launchpad is not None else get_launchpad(settings)
    fworker = fworker or FWorker(name=socket.gethostname())
    launch_dir = Path(launch_dir or Path(settings.data_dir).expanduser() / "launches").resolve()
    runs_dir = Path(settings.data_dir).expanduser() / "runs"
    launch_dir.mkdir(parents=True, exist_ok=True)
    own_store = store is None
    store = store or BandflowStore.from_settings(settings)
    logger = get_fw_logger("rocket.launcher", l_dir=launchpad.get_logdir(), stream_level=strm_lvl)
    previous_job_store = jobflow.SETTINGS.JOB_STORE
    jobflow.SETTINGS.JOB_STORE = store.job_store
    start = time.monotonic()
    durations = None
    if walltime_s is not None:
        from bandflow.runner import store_durations

        durations = replace(store_durations(store), stopped=stopped_seconds(runs_dir))
    base = fworker
    n_ran = 0
    try:
        with _interrupt_noted() as noted:
            while n_jobs is None or n_ran < n_jobs:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    break
                if durations is not None:
                    left = walltime_s - (time.monotonic() - start)
                    if left <= 0:
                        break
                    fworker = fitting_fworker(base, durations, left)
                if not launchpad.run_exists(fworker):
                    if not launchpad.future_run_exists(fworker):
                        break
                    time.sleep(poll_s)
                    continue
                rocket_dir = Path(create_datestamp_dir(str(launch_dir), logger, prefix="launcher_"))
                begun = datetime.now()
                with contextlib.chdir(rocket_dir):
                    try:
                        ran = launch_rocket(launchpad, fworker, strm_lvl=strm_lvl)
                    except (KeyboardInterrupt, SystemExit):  # before FireWorks' task ran (it catches its own)
                        _release_interrupted(launchpad, rocket_dir, begun, runs_dir, logger)
                        raise
                if noted:  # FireWorks caught it in the task and marked the firework FIZZLED
                    _release_interrupted(launchpad, rocket_dir, begun, runs_dir, logger)
                    raise noted[0]
                if ran:
                    n_ran += 1
                elif not any(rocket_dir.iterdir()):  # another worker took it first
                    rocket_dir.rmdir()
    finally:
        jobflow.SETTINGS.JOB_STORE = previous_job_store
        if own_store:
            store.close()
    return n_ran


@contextlib.contextmanager
def _interrupt_noted() -> Iterator[list[BaseException]]:
    """While inside, SIGTERM raises ``SystemExit(143)`` and SIGINT ``KeyboardInterrupt`` (as ``bandflow``'s
    command line does), each also appended to the list yielded.

    FireWorks' ``Rocket`` catches every exception of a task, these two included, marks the firework FIZZLED
    and returns normally, so without the note a worker would take the next job in an allocation that is
    ending (measured: SIGTERM during a job left it FIZZLED, ran the next one and exited 0). Outside the main
    thread, where Python cannot set handlers, nothing is noted.
    """
    noted: list[BaseException] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def on_signal(signum: int, frame: object) -> None:
        stop = KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
        noted.append(stop)
        raise stop

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield noted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _release_interrupted(launchpad: LaunchPad | FileLaunchPad, rocket_dir: Path, begun: datetime,
                         runs_dir: Path, logger: logging.Logger) -> None:
    """Put the firework that an interrupted rocket ran in ``rocket_dir`` back to READY (an allocation's end is
    no failure of the job, and a FIZZLED parent would hold back its children), and note how long the attempt
    ran under ``runs_dir`` (:func:`bandflow.activity.record_stopped`). A job that finished, or none reserved,
    is left as it is."""
    with database(launchpad, write=False) as raw:
        launch = raw.launches.find_one({"launch_dir": os.path.realpath(rocket_dir)}, {"fw_id": 1})
        fw = raw.fireworks.find_one({"fw_id": launch["fw_id"]}, {"state": 1, "spec._tasks": 1}) if launch else None
    if fw is None or fw.get("state") not in ("RESERVED", "RUNNING", "FIZZLED"):
        return
    launchpad.rerun_fw(launch["fw_id"])
    seconds = (datetime.now() - begun).total_seconds()
    logger.warning("worker interrupted %.0f s into firework %d: it is READY again", seconds, launch["fw_id"])
    _note_stopped_attempt(fw, runs_dir, seconds, begun, str(rocket_dir), socket.gethostname(), os.getpid())


def _note_stopped_attempt(fw: dict, runs_dir: Path, seconds: float, begun: datetime, folder: str, host: str,
                          pid: int) -> None:
    """Record that the jobflow job of firework document ``fw`` (with ``spec._tasks``) ran ``seconds`` without
    finishing (:func:`bandflow.activity.record_stopped`); a firework that is not a jobflow job has nothing to
    be timed by and is left out."""
    job = next((task["job"] for task in fw["spec"].get("_tasks", []) if isinstance(task.get("job"), dict)), None)
    if job is None:
        return
    metadata = job.get("metadata") or {}
    record_stopped(runs_dir, ActiveJob(
        campaign="", job_name=str(job.get("name", "")), step=str(metadata.get("bandflow_step", job.get("name", ""))),
        target=str(metadata.get("surface_id") or metadata.get("bulk_name") or ""), pid=pid, host=host,
        started_at=begun.isoformat(), folder=folder, uuid=str(job.get("uuid", ""))), seconds)


def requeue_lost(expiration_s: float | None = None, dry_run: bool = False,
                 launchpad: LaunchPad | FileLaunchPad | None = None) -> list[dict[str, Any]]:
    """Put the lost fireworks back to READY and return their launches (:func:`running_launches` entries, each
    with ``ran_s``: how long it is known to have run, start to last ping; 0 when unknown).

    A launch is lost when its worker has not pinged it for ``expiration_s`` (default FireWorks'
    ``RUN_EXPIRATION_SECS``, 4 h; a worker pings hourly): the worker was killed outright (SIGKILL, a node
    failure, an allocation's hard end), which no handler can catch, so the firework would stay RUNNING and
    hold back its children. FireWorks' ``detect_lostruns(rerun=True)`` finds and re-runs them (on the file
    LaunchPad in one locked transaction); each attempt is then noted with its known length, start to last
    ping, as an interrupted one is, so that a ``--walltime`` worker does not take it again with less time
    left. ``dry_run`` only lists them. An expiration not longer than the ping interval is refused.
    """
    from fireworks.fw_config import PING_TIME_SECS, RUN_EXPIRATION_SECS

    expiration_s = RUN_EXPIRATION_SECS if expiration_s is None else expiration_s
    if expiration_s <= PING_TIME_SECS:  # a live worker may not have pinged for that long: its job would run twice
        raise BandflowError(f"lost after {expiration_s / 60:.0f} min: not longer than the workers' ping "
                            f"interval ({PING_TIME_SECS / 60:.0f} min): fireworks still running would be put back")
    launchpad = launchpad if launchpad is not None else get_launchpad()
    running = {run["fw_id"]: run for run in running_launches(launchpad)}
    _, lost_ids, _ = launchpad.detect_lostruns(expiration_secs=expiration_s, rerun=not dry_run)
    lost = [{**run, "ran_s": (run["last_pinged"] - run["started"]).total_seconds()
             if run["started"] and run["last_pinged"] else 0.0}
            for fw_id in sorted(set(lost_ids)) if (run := running.get(fw_id))]
    if dry_run or not lost:
        return lost
    runs_dir = Path(get_settings().data_dir).expanduser() / "runs"
    with database(launchpad, write=False) as raw:
        docs = {doc["fw_id"]: doc for doc in raw.fireworks.find({"fw_id": {"$in": [r["fw_id"] for r in lost]}},
                                                                {"fw_id": 1, "spec._tasks": 1})}
    for run in lost:
        if run["ran_s"] > 0 and run["fw_id"] in docs:  # no ping after the start: nothing known of its length
            _note_stopped_attempt(docs[run["fw_id"]], runs_dir, run["ran_s"], run["started"],
                                  str(run.get("launch_dir") or ""), str(run.get("host") or ""), 0)
    return lost


def fitting_fworker(fworker: FWorker, durations: JobDurations, seconds_left: float) -> FWorker:
    """``fworker`` with its query narrowed to the fireworks whose bandflow step (jobflow keeps the job in
    ``spec._tasks.job``) is expected to finish within ``seconds_left``; steps nothing has timed stay in.

    Where the slab steps' time has a size scaling, a slab step fits by its own slab's atom count (the job's
    ``n_atoms``, up to the largest that fits), at its bulk's own pace where :meth:`JobDurations.paces` has it
    (the job's ``bulk_name``); one submitted without a size is judged by the mean surface, and held where its
    bulk's own pace fits no slab. A job with a stopped attempt (``durations.stopped``, by uuid) fits only if
    that attempt's length does.
    """
    meta = "spec._tasks.job.metadata"
    step, atoms, bulk = f"{meta}.bandflow_step", f"{meta}.n_atoms", f"{meta}.bulk_name"
    too_long = [name for name in TIMED_STEPS
                if (expected := durations.expected(name)) is not None and WALLTIME_MARGIN * expected > seconds_left]
    largest = durations.scaling.largest(seconds_left / WALLTIME_MARGIN) if durations.scaling else None
    # per bulk with a pace of its own, the largest slab that fits (None: every size; 0: none)
    paces = {name: scaling.largest(seconds_left / WALLTIME_MARGIN)
           for name, scaling in sorted(durations.paces().items())}
    conditions: list[dict] = []
    if largest is None and not paces:
        if too_long:
            conditions.append({step: {"$nin": too_long}})
    else:  # slab steps by their size (at their bulk's own pace where known); the rest by their mean
        sized = list(SLAB_STEPS)
        clauses: list[dict] = [{step: {"$nin": list(dict.fromkeys([*too_long, *sized]))}},
                               {step: {"$in": sized}, **({atoms: {"$lte": largest}} if largest is not None else {}),
                                **({bulk: {"$nin": list(paces)}} if paces else {})}]
        clauses += [{step: {"$in": sized}, bulk: name, **({atoms: {"$lte": n}} if n is not None else {})}
                    for name, n in paces.items() if n != 0]
        if not set(sized) & set(too_long):  # unsized jobs by the mean, except of bulks whose own pace fits none
            held = [name for name, n in paces.items() if n == 0]
            clauses.append({step: {"$in": sized}, atoms: {"$exists": False}, **({bulk: {"$nin": held}} if held else {})})
        conditions.append({"$or": clauses})
    if cut_off := sorted(uuid for uuid, seconds in durations.stopped.items() if WALLTIME_MARGIN * seconds > seconds_left):
        conditions.append({"spec._tasks.job.uuid": {"$nin": cut_off}})
    if not conditions:
        return fworker
    own = json.loads(fworker.to_dict()["query"])  # the worker's own query (.query adds name and category)
    query = {"$and": [own, *conditions]} if own else conditions[0] if len(conditions) == 1 else {"$and": conditions}
    return FWorker(name=fworker.name, category=fworker.category, query=query, env=fworker.env)


def firework_state_counts(launchpad: LaunchPad | FileLaunchPad | None = None) -> dict[str, int]:
    """Number of fireworks in each FireWorks state (all states listed, zeros included)."""
    with database(launchpad, write=False) as raw:
        return {state: raw.fireworks.count_documents({"state": state}) for state in Firework.STATE_RANKS}


def running_launches(launchpad: LaunchPad | FileLaunchPad | None = None) -> list[dict[str, Any]]:
    """The fireworks RUNNING now, oldest first: ``fw_id``, ``name``, ``host``, ``launch_dir``, ``started``
    and ``last_pinged`` (datetimes in FireWorks' UTC). The worker-side counterpart of the records that
    ``bandflow run`` keeps (:mod:`bandflow.activity`): FireWorks already records each launch, so nothing
    more is written here."""
    with database(launchpad, write=False) as raw:
        launches = list(raw.launches.find({"state": "RUNNING"}, {"_id": 0, "fw_id": 1, "host": 1, "launch_dir": 1,
                                                                 "time_start": 1, "state_history": 1}))
        names = {doc["fw_id"]: doc.get("name") for doc in
                 raw.fireworks.find({"fw_id": {"$in": [doc["fw_id"] for doc in launches]}}, {"fw_id": 1, "name": 1})}
    running = []
    for doc in launches:
        entry = next((h for h in reversed(doc.get("state_history") or []) if h.get("state") == "RUNNING"), {})
        running.append({"fw_id": doc["fw_id"], "name": names.get(doc["fw_id"]), "host": doc.get("host"),
                        "launch_dir": doc.get("launch_dir"), "started": _utc(doc.get("time_start")
                                                                             or entry.get("created_on")),
                        "last_pinged": _utc(entry.get("updated_on") or entry.get("created_on"))})
    return sorted(running, key=lambda r: r["started"].timestamp() if r["started"] else math.inf)


def _utc(value: Any) -> datetime | None:
    """A FireWorks time (a datetime, or its ISO text after a JSON round trip) as an aware UTC datetime, or
    None. FireWorks writes UTC; pymongo returns it naive (MongoDB), mongomock's file keeps the zone."""
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def describe_launchpad(launchpad: LaunchPad | FileLaunchPad) -> str:
    """Where the LaunchPad lives, without credentials."""
    if isinstance(launchpad, FileLaunchPad):
        return f"file {launchpad.path}"
    if launchpad.uri_mode:
        from bandflow.store import redact_uri

        return f"MongoDB {redact_uri(launchpad.host)} database {launchpad.name}"
    return f"MongoDB {launchpad.host}:{launchpad.port} database {launchpad.name}"



def submitted_job_uuids(uuids: list[str], launchpad: LaunchPad | FileLaunchPad | None = None) -> set[str]:
    """The jobflow job UUIDs among ``uuids`` that already have a firework on the LaunchPad."""
    with database(launchpad) as raw:
        # jobflow's flow_to_workflow puts the job in the firework's single task: spec._tasks[0].job
        found = raw.fireworks.find({"spec._tasks.job.uuid": {"$in": list(uuids)}}, {"spec._tasks.job.uuid": 1})
        return {task["job"]["uuid"] for doc in found for task in doc["spec"]["_tasks"] if "job" in task}
