"""Files replaced in one step: written beside the target, then renamed over it.

POSIX ``rename`` within a folder is atomic, so a reader sees the old file or the new one, never half of
one, and a failure (full disk, Ctrl-C) leaves the old file as it was. Python's standard library has no
such helper, hence this one, used by every writer of results, caches, figures and settings.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bandflow.errors import UnwritableFileError


def default_file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` gives a new file (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def replaced_atomically(path: Path | str, mode: int | None = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block ends without error it replaces
    ``path`` (permissions ``mode``, default :func:`default_file_mode`; flushed to disk first if ``fsync``),
    otherwise it is removed. The temporary file is created readable by the owner only, so a file given
    ``mode=0o600`` (one holding a password) is never readable by others, not even while being written."""
    path = Path(path)
    if path.is_dir():
        raise UnwritableFileError(f"{path}: a folder, not a file")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UnwritableFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if fsync:
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
        os.chmod(temporary, default_file_mode() if mode is None else mode)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise UnwritableFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
