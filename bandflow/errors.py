"""User-facing errors: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


class BandflowError(Exception):
    """A problem with the user's input or environment, stated in one line."""


class UnwritableFileError(BandflowError, OSError):
    """A file that cannot be written where asked (a folder in its place, a missing or read-only folder): one
    line for the user as a :class:`BandflowError`, and still an ``OSError`` for best-effort writers."""


def exit_from_script(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's ``main`` and exit with its return code; a :class:`BandflowError` is one line on stderr
    and exit code 2, as with the ``bandflow`` command (for the scripts in ``tools/``)."""
    try:
        code = main()
    except BandflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
