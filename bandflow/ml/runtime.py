"""Thread settings for the model's tensor work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n_threads: int = 1) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op threads, then restore the previous number.

    One thread is the default for bandflow's descriptor and network: their matrices are small, and on a
    shared machine extra intra-op threads wait on each other (measured 25× slower with 2 threads on a busy
    2-core node). Parallelism comes from processes instead (``TrainConfig.n_jobs``).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
