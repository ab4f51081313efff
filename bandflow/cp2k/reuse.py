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
(:func:`forget_runs`, which notes their keys in :data:`FORGOTTEN`); entries of a job that failed for good,
or was never run again, are removed by the next :func:`keep_run` after :data:`MAX_AGE_DAYS`. Keeping and
restoring are best effort: a data directory that cannot be written only costs the reuse (a warning), never
the run. ``BANDFLOW_REUSE_FINISHED_RUNS=false`` computes every run.

The kept runs live on one machine's disk. :func:`save_kept_runs` writes them as archives beside a campaign
checkpoint (:mod:`bandflow.checkpoint`) and :func:`load_kept_runs` puts them among another data directory's
kept runs, so a bulk job stopped on one machine reuses its PBE runs on the next.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from bandflow.cp2k.parsing import Cp2kOutputSummary, parse_output
from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically
from bandflow.settings import get_settings

logger = logging.getLogger(__name__)

#: Folder of the finished runs under the data directory.
FINISHED_RUNS = "finished_runs"
#: Kept runs (and staging folders of interrupted copies) older than this are removed.
MAX_AGE_DAYS = 30.0
#: A kept run's folder name: the hex digest of :func:`run_key` (staging folders start with a dot).
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
#: Suffix of a kept run's archive (:func:`save_kept_runs`).
ARCHIVE_SUFFIX = ".tar.gz"
#: File beside the kept runs listing, one per line, the keys :func:`forget_runs` removed (their job succeeded).
FORGOTTEN = "forgotten.txt"


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
        _install_run(folder, key, lambda staging: shutil.copytree(directory, staging, dirs_exist_ok=True))
    except (OSError, shutil.Error) as exc:
        logger.warning("could not keep the finished CP2K run %s in %s (%s): a stopped bulk job will compute it "
                       "again (BANDFLOW_REUSE_FINISHED_RUNS=false turns keeping off)", directory, folder, exc)


def _install_run(folder: Path, key: str, fill: Callable[[Path], object]) -> bool:
    """Fill a staging folder beside the kept runs in ``folder`` and rename it to ``key``, so a reader never
    sees half a run; False when another process put the same run there first (its copy stays)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=folder))
    try:
        fill(staging)
        staging.rename(folder / key)
        return True
    except OSError:
        if not (folder / key).is_dir():  # not a lost race with another process keeping the same run
            raise
        return False
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_files(files: list[tuple[str, bytes]], folder: Path) -> None:
    """Write ``files`` (name, bytes) into ``folder``."""
    for name, data in files:
        (folder / name).write_bytes(data)


def _remove_old(folder: Path) -> None:
    """Remove kept runs and staging folders last changed more than :data:`MAX_AGE_DAYS` ago.

    An aged-out run is not noted as forgotten: its job has not succeeded here, and the run may have come from
    another machine's archive (``load-runs``) whose bulk still waits for it, so its archive stays.
    """
    limit = time.time() - MAX_AGE_DAYS * 86400.0
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < limit:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # removed meanwhile by another process
            continue


def forget_runs(keys: Iterable[str]) -> None:
    """Remove the kept runs ``keys`` (those of a job that has succeeded) and note them in :data:`FORGOTTEN`,
    so that :func:`save_kept_runs` removes their archives too (best effort); nothing when reuse is off."""
    if not get_settings().reuse_finished_runs:
        return
    keys = [key for key in keys if KEY_PATTERN.fullmatch(key)]
    for key in keys:
        shutil.rmtree(runs_folder() / key, ignore_errors=True)
    _note_forgotten(keys)


def _note_forgotten(keys: list[str]) -> None:
    """Append ``keys`` to :data:`FORGOTTEN` (best effort: a failure only keeps their archives)."""
    if not keys:
        return
    try:
        runs_folder().mkdir(parents=True, exist_ok=True)
        with open(runs_folder() / FORGOTTEN, "a", encoding="utf-8") as notes:  # one short append per job
            notes.write("".join(f"{key}\n" for key in keys))
    except OSError as exc:
        logger.warning("could not note the removed runs in %s (%s): their archives stay where they were saved",
                       runs_folder() / FORGOTTEN, exc)


def forgotten_run_keys() -> set[str]:
    """The keys of runs this data directory kept and no longer keeps because their job succeeded
    (:func:`forget_runs`)."""
    try:
        lines = (runs_folder() / FORGOTTEN).read_text(encoding="utf-8").split()
    except OSError:
        return set()
    return {key for key in lines if KEY_PATTERN.fullmatch(key)} - set(kept_run_keys())


def kept_run_keys() -> list[str]:
    """The keys of the runs kept in this data directory, sorted."""
    folder = runs_folder()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and KEY_PATTERN.fullmatch(p.name))


def remove_finished_archives(folder: Path | str) -> int:
    """Remove the archives in ``folder`` of runs this data directory no longer keeps because their job
    succeeded (:func:`forgotten_run_keys`), and return how many; other files stay."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    finished = forgotten_run_keys()
    removed = 0
    for old in folder.glob(f"*{ARCHIVE_SUFFIX}"):
        if old.name.removesuffix(ARCHIVE_SUFFIX) in finished:
            old.unlink()
            removed += 1
    return removed


def save_kept_runs(folder: Path | str) -> int:
    """Write each kept run as ``folder/<key>.tar.gz``, remove the archives of runs this data directory has
    forgotten since (:func:`remove_finished_archives`; archives of runs it does not know, and other files,
    are left alone) and return the number of runs archived there.

    An archive is written once, atomically, and never rewritten; its bytes depend only on the run's files
    (sorted names, no owners, no dates in the tar or gzip headers), so a committed ``folder`` changes only when
    the kept runs do. A run removed while it is archived (its job finished meanwhile) is skipped.
    tarfile and gzip are used directly because neither jobflow nor monty archives a folder reproducibly.
    """
    folder = Path(folder)
    keys = kept_run_keys()
    remove_finished_archives(folder)
    archived = 0
    for key in keys:
        target = folder / f"{key}{ARCHIVE_SUFFIX}"
        if target.exists():
            archived += 1
            continue
        try:
            data = _archive(runs_folder() / key)
        except OSError:  # forgotten (its job succeeded) or aged out while it was read
            continue
        if not (runs_folder() / key).is_dir():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(target) as staging:
            staging.write_bytes(data)
        archived += 1
    return archived


def _archive(run: Path) -> bytes:
    """The gzip tar of the plain files of ``run``, the same bytes for the same files."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(p for p in run.iterdir() if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def load_kept_runs(folder: Path | str) -> int:
    """Put the archived runs of ``folder`` (:func:`save_kept_runs`) among this data directory's kept runs and
    return how many were added (a run already kept here is left as it is).

    Every archive is read whole and checked first (named by its key, gzip checksum, plain files only, no
    sub-folders); a bad one raises one :class:`BandflowError` naming it, and then nothing is added. A kept
    run is reused only where its key comes out the same: the same inputs and the same CP2K command
    (``BANDFLOW_CP2K_COMMAND``).
    """
    folder = Path(folder)
    archives = sorted(folder.glob(f"*{ARCHIVE_SUFFIX}")) if folder.is_dir() else []
    if not archives:
        raise BandflowError(f"no kept CP2K runs (<key>{ARCHIVE_SUFFIX}) in {folder}")
    runs: dict[str, list[tuple[str, bytes]]] = {}
    for path in archives:
        key = path.name.removesuffix(ARCHIVE_SUFFIX)
        if not KEY_PATTERN.fullmatch(key):
            raise BandflowError(f"{path}: not a kept CP2K run (its name is not a run key)")
        try:
            raw = gzip.decompress(path.read_bytes())  # checks the whole stream's checksum, which tarfile does not
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
                members = archive.getmembers()
                if not members or any(not m.isfile() or "/" in m.name or m.name in ("", ".", "..")
                                      for m in members):
                    raise BandflowError(f"{path}: not a kept CP2K run (it must hold plain files only)")
                runs[key] = [(m.name, archive.extractfile(m).read()) for m in members]  # type: ignore[union-attr]
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise BandflowError(f"{path}: not a readable archive ({exc})") from None
    target = runs_folder()
    added = 0
    try:
        target.mkdir(parents=True, exist_ok=True)
        for key, files in runs.items():
            if not (target / key).exists():
                added += _install_run(target, key, partial(_write_files, files))
    except OSError as exc:
        raise BandflowError(f"cannot add kept CP2K runs to {target} ({exc})") from None
    return added
