"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class BandflowError(Exception):
    """A problem with the user's input or environment, stated in one line."""
