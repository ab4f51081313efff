"""Tiny jobflow jobs for the queue tests (importable by FireWorks workers, unlike test-module functions)."""

from __future__ import annotations

import os
import time

from jobflow import job


@job
def append_line(path: str, label: str, sleep_s: float = 0.0) -> str:
    """Append ``"<label> <pid>"`` to ``path`` after ``sleep_s`` seconds; return the label."""
    time.sleep(sleep_s)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{label} {os.getpid()}\n")
    return label


@job
def join_labels(labels: list[str], path: str) -> str:
    """Append the joined labels of parent jobs to ``path``; return them joined with '+'."""
    joined = "+".join(labels)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{joined} {os.getpid()}\n")
    return joined
