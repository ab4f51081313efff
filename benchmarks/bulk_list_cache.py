"""`bandflow bulk list` with and without its summary cache, measured side by side in one process.

The reference is the uncached path (parse every library CIF, one spglib analysis each); the cached path
reads ``data_dir/cache/bulk_summaries.json`` and hashes the CIFs. Prints both times and the ratio.
Run: ``.venv/bin/python benchmarks/bulk_list_cache.py``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from bandflow import bulk
from bandflow.settings import get_settings


def _time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        bulk._load_library_entry.cache_clear()  # no in-process shortcut for either path
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["BANDFLOW_DATA_DIR"] = data_dir
        get_settings.cache_clear()
        uncached = _time(lambda: [bulk.summarize(bulk.load_bulk(n)) for n in bulk.library_names()], repeats)
        bulk.library_summaries()  # fill the cache
        cached = _time(bulk.library_summaries, repeats)
    print(f"{len(bulk.library_names())} entries: uncached {uncached:.3f} s, cached {cached:.4f} s, "
          f"ratio {uncached / cached:.0f}x")


if __name__ == "__main__":
    main()
