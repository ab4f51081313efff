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


def test_a_path_that_cannot_take_a_file_is_one_error_line_and_still_an_os_error(tmp_path, store):
    """A folder in the target's place, or a file where its folder should be: one BandflowError line (what the
    CLI prints), which best-effort writers still catch as OSError; nothing is left behind."""
    from typer.testing import CliRunner

    from bandflow.cli import app
    from bandflow.errors import BandflowError, UnwritableFileError
    from bandflow.schemas import SurfaceDoc
    from tests.test_store import mgo

    (tmp_path / "taken.json").mkdir()
    (tmp_path / "plain").write_text("a file")
    for target, message in ((tmp_path / "taken.json", "a folder, not a file"),
                            (tmp_path / "plain" / "a.json", "cannot write")):
        with pytest.raises(UnwritableFileError, match=message) as caught, replaced_atomically(target) as temporary:
            temporary.write_text("never")
        assert isinstance(caught.value, BandflowError) and isinstance(caught.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "plain", "taken.json"]
    assert list((tmp_path / "taken.json").iterdir()) == []
    store.upsert_surface(SurfaceDoc(**mgo()))
    result = CliRunner().invoke(app, ["export", str(tmp_path / "taken.json")])
    assert isinstance(result.exception, BandflowError) and "a folder, not a file" in str(result.exception)


def test_the_command_line_reports_a_path_the_file_system_refuses_in_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "plain").write_text("a file")
    env = {**os.environ, "BANDFLOW_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "bandflow.cli", "worker", "--launch-dir", str(tmp_path / "plain" / "x")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 2 and result.stderr.strip() == f"error: Not a directory: {tmp_path / 'plain' / 'x'}"
