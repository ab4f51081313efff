"""Atomic file replacement (bandflow.files), used by every writer of results, caches and figures."""

from __future__ import annotations

import os
import stat

import pytest

from bandflow.files import default_file_mode, replaced_atomically


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_replaces_the_file_in_one_step_with_the_usual_permissions(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with replaced_atomically(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        temporary.write_text("new")
        assert target.read_text() == "old", "the target changes only when the block ends"
    assert target.read_text() == "new" and _mode(target) == default_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), replaced_atomically(target) as temporary:
        temporary.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_owner_only_mode_and_fsync(tmp_path):
    target = tmp_path / "jobflow.yaml"
    with replaced_atomically(target, mode=0o600, fsync=True) as temporary:
        assert _mode(temporary) == 0o600, "never readable by others, not even while written"
        temporary.write_text("password: x")
    assert _mode(target) == 0o600 and target.read_text() == "password: x"


def test_default_mode_follows_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        assert default_file_mode() == 0o600
    finally:
        os.umask(previous)
    assert default_file_mode() == 0o666 & ~previous
