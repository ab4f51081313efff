"""Fixtures shared by several test modules (a module's own fixture of the same name takes precedence)."""

import pytest

from bandflow.settings import get_settings
from bandflow.store import BandflowStore


@pytest.fixture
def store(tmp_path, monkeypatch, settings_env):
    """An embedded store in ``tmp_path/data``; the test engines log their executions to ``executions.log``."""
    monkeypatch.chdir(tmp_path)
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"), BANDFLOW_TEST_LOG=str(tmp_path / "executions.log"))
    return BandflowStore.from_settings()


@pytest.fixture
def settings_env(monkeypatch):
    """Set (or, with None, unset) ``BANDFLOW_*`` variables for one test; the cached settings are read again
    after each change and after the test."""

    def set_env(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


@pytest.fixture
def torch_threads():
    """torch, with its intra-op thread count restored after the test."""
    import torch

    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)
