"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class BandflowError(Exception):
    """A problem with the user's input or environment, stated in one line."""


class UnwritableFileError(BandflowError, OSError):
    """A file that cannot be written where asked (a folder in its place, a missing or read-only folder): one
    line for the user as a :class:`BandflowError`, and still an ``OSError`` for best-effort writers."""
