"""Fixtures shared by several test modules (a module's own fixture of the same name takes precedence)."""

import pytest

from bandflow.settings import get_settings
from bandflow.store import BandflowStore


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An embedded store in ``tmp_path/data``; the test engines log their executions to ``executions.log``."""
    monkeypatch.setenv("BANDFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BANDFLOW_TEST_LOG", str(tmp_path / "executions.log"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield BandflowStore.from_settings()
    get_settings.cache_clear()


@pytest.fixture
def torch_threads():
    """torch, with its intra-op thread count restored after the test."""
    import torch

    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)
