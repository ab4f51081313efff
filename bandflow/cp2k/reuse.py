"""Finished CP2K runs kept by their inputs, so that a stopped bulk job does not compute them again.

A bulk job (:class:`bandflow.cp2k.jobs.Cp2kBulkHybridMaker`) is three to five CP2K runs in one jobflow job,
and a job has no checkpoint inside it: stopped in its hybrid run (a session's end, a queue's walltime), it
starts again from its first PBE run. Those PBE runs cost 20–50 minutes for the 48–64-atom cells of the
reference campaign (ZrO2: 387 + 772 s; Ag2O: 51 min of PBE before it was stopped; docs/engines.md), so each
finished PBE run is copied to ``data_dir/finished_runs/<key>``, where ``<key>`` is a hash of everything in
the run folder when CP2K starts (input, structure, restart wavefunction) and of the CP2K command. A later
attempt with the same key copies the folder back and re-parses its output instead of starting CP2K; an
output that no longer parses as a finished run (a parser fix, a damaged copy) is run again. The hybrid run
is not kept: CP2K cannot resume its integral pass, and it is the job's last run.

Jobflow keeps outputs per job, not per step inside one, and custodian restarts a run but does not skip one;
neither has this, hence this module. A bulk job removes its entries once it has succeeded
(:func:`forget_runs`); entries of a job that failed for good, or was never run again, are removed by the
next :func:`keep_run` after :data:`MAX_AGE_DAYS`. Keeping and restoring are best effort: a data directory
that cannot be written only costs the reuse (a warning), never the run. ``BANDFLOW_REUSE_FINISHED_RUNS=false``
computes every run.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bandflow.cp2k.parsing import Cp2kOutputSummary, parse_output
from bandflow.settings import get_settings

logger = logging.getLogger(__name__)

#: Folder of the finished runs under the data directory.
FINISHED_RUNS = "finished_runs"
#: Kept runs (and staging folders of interrupted copies) older than this are removed.
MAX_AGE_DAYS = 30.0


def runs_folder() -> Path:
    """Where finished runs are kept (``data_dir/finished_runs``)."""
    return get_settings().data_dir / FINISHED_RUNS


def run_key(directory: Path, command: Iterable[str]) -> str:
    """A hash of the files in ``directory`` (names, sizes and bytes; sub-folders are not read) and of
    ``command``.

    Call it after the inputs are written and before CP2K runs: it then covers the input, the structure and
    any restart file the run starts from.
    """
    digest = hashlib.sha256()
    digest.update("\0".join(command).encode())
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        digest.update(f"\0{path.name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def restore_run(key: str, directory: Path, output_file: str) -> Cp2kOutputSummary | None:
    """The parsed output of the finished run ``key``, copied into ``directory`` (over its inputs, which are the
    same), or None when there is none to reuse (reuse off, no such run, a copy that fails or whose output
    is not a finished run). A reused run is marked ``reused``; its ``wall_time`` is what it cost when it ran (CP2K's
    own timing in its output), so a job's record of computing time still counts it."""
    if not get_settings().reuse_finished_runs:
        return None
    kept = runs_folder() / key
    if not kept.is_dir():
        return None
    try:
        shutil.copytree(kept, directory, dirs_exist_ok=True)
        summary = parse_output(directory / output_file)
    except (OSError, shutil.Error) as exc:
        logger.warning("%s: could not reuse the finished CP2K run %s (%s); running it again", directory.name, kept,
                       exc)
        return None
    if reason := summary.failure_reason():
        logger.warning("%s: the kept CP2K run %s is not a finished run (%s); running it again", directory.name,
                       kept, reason)
        return None
    logger.info("%s: reusing the finished CP2K run %s (same inputs)", directory.name, kept)
    summary.reused = True
    return summary


def keep_run(key: str, directory: Path) -> None:
    """Copy the finished run in ``directory`` to the kept runs under ``key`` (best effort: a failure to write
    is a warning).

    The copy is made beside the kept runs and renamed into place, so a reader never sees half a run; if
    another process kept the same run first, its copy stays.
    """
    if not get_settings().reuse_finished_runs:
        return
    folder = runs_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_old(folder)
        if (folder / key).exists():
            return
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=folder))
        try:
            shutil.copytree(directory, staging, dirs_exist_ok=True)
            staging.rename(folder / key)
        except OSError:
            if not (folder / key).is_dir():  # not a lost race with another process keeping the same run
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, shutil.Error) as exc:
        logger.warning("could not keep the finished CP2K run %s in %s (%s): a stopped bulk job will compute it "
                       "again (BANDFLOW_REUSE_FINISHED_RUNS=false turns keeping off)", directory, folder, exc)


def _remove_old(folder: Path) -> None:
    """Remove kept runs and staging folders last changed more than :data:`MAX_AGE_DAYS` ago."""
    limit = time.time() - MAX_AGE_DAYS * 86400.0
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < limit:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # removed meanwhile by another process
            continue


def forget_runs(keys: Iterable[str]) -> None:
    """Remove the kept runs ``keys`` (those of a job that has succeeded); nothing when reuse is off."""
    if not get_settings().reuse_finished_runs:
        return
    for key in keys:
        shutil.rmtree(runs_folder() / key, ignore_errors=True)
