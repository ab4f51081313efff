"""Finished CP2K runs kept by their inputs, so that a stopped bulk job does not compute them again.

A bulk job (:class:`bandflow.cp2k.jobs.Cp2kBulkHybridMaker`) is three to five CP2K runs in one jobflow job,
and a job has no checkpoint inside it: stopped in its hybrid run (a session's end, a queue's walltime), it
starts again from its first PBE run. Those PBE runs cost 20–50 minutes for the 48–64-atom cells of the
reference campaign (ZrO2: 387 + 772 s; Ag2O: 51 min of PBE before it was stopped; docs/engines.md), so a
finished run is copied to ``data_dir/finished_runs/<key>``, where ``<key>`` is a hash of everything CP2K
reads in the run folder (input, structure, restart wavefunction) and the CP2K command. A later run with the
same key copies the folder back and re-parses its output instead of starting CP2K. The output is parsed
again each time, so a parser fix applies to reused runs too.

Jobflow keeps outputs per job, not per step inside one, and custodian restarts a run but does not skip one;
neither has this, hence this module. The bulk job removes its entries once it has finished
(:func:`forget_runs`): its output is then in the job store. Entries of a bulk job that never finishes stay
until removed by hand (``rm -r data_dir/finished_runs``); set ``BANDFLOW_REUSE_FINISHED_RUNS=false`` to
compute every run.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bandflow.settings import get_settings

logger = logging.getLogger(__name__)

#: Folder of the finished runs under the data directory.
FINISHED_RUNS = "finished_runs"


def runs_folder() -> Path:
    """Where finished runs are kept (``data_dir/finished_runs``)."""
    return get_settings().data_dir / FINISHED_RUNS


def run_key(directory: Path, command: Iterable[str]) -> str:
    """A hash of the files in ``directory`` (names and bytes; sub-folders are not read) and of ``command``.

    Call it after the inputs are written and before CP2K runs: it then covers the input, the structure and
    any restart file the run starts from.
    """
    digest = hashlib.sha256()
    digest.update("\0".join(command).encode())
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        digest.update(b"\0" + path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def restore_run(key: str, directory: Path) -> bool:
    """Copy the finished run ``key`` into ``directory`` (over its inputs, which are the same) and say whether
    there was one. Always False when ``reuse_finished_runs`` is off."""
    if not get_settings().reuse_finished_runs:
        return False
    kept = runs_folder() / key
    if not kept.is_dir():
        return False
    shutil.copytree(kept, directory, dirs_exist_ok=True)
    logger.info("%s: reusing the finished CP2K run %s (same inputs)", directory.name, kept)
    return True


def keep_run(key: str, directory: Path) -> None:
    """Copy the finished run in ``directory`` to the kept runs under ``key``.

    The copy is made beside the kept runs and renamed into place, so a reader never sees half a run; if
    another process kept the same run first, its copy stays.
    """
    if not get_settings().reuse_finished_runs:
        return
    folder = runs_folder()
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / key).exists():
        return
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=folder))
    try:
        shutil.copytree(directory, staging, dirs_exist_ok=True)
        staging.rename(folder / key)
    except OSError:
        if not (folder / key).is_dir():  # not a lost race: a real failure (full disk, permissions)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def forget_runs(keys: Iterable[str]) -> None:
    """Remove the kept runs ``keys`` (those of a job whose output is stored)."""
    for key in keys:
        shutil.rmtree(runs_folder() / key, ignore_errors=True)
