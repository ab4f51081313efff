"""Many processes opening one fresh montydb (sqlite) store at once: maggma's MontyStore vs bandflow's.

Each of 16 processes connects and writes one document; repeated on new folders. Prints crashed
processes and stored documents for both classes, side by side in one run.

    .venv/bin/python benchmarks/montystore_concurrency.py --repeats 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
from pathlib import Path

from maggma.stores import MontyStore

from bandflow.store import LockedMontyStore


def _connect_and_write(store_class: type[MontyStore], path: str, key: int) -> None:
    store = store_class("docs", database_path=path, storage="sqlite")
    store.connect()
    store.update({"k": key}, key="k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    context = multiprocessing.get_context("fork")
    root = Path(tempfile.mkdtemp(prefix="bandflow-monty-"))
    for store_class in (MontyStore, LockedMontyStore):
        crashed = stored = 0
        for repeat in range(args.repeats):
            path = str(root / f"{store_class.__name__}-{repeat}")
            workers = [context.Process(target=_connect_and_write, args=(store_class, path, k))
                       for k in range(args.processes)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            crashed += sum(w.exitcode != 0 for w in workers)
            check = MontyStore("docs", database_path=path, storage="sqlite")
            check.connect()
            stored += check.count()
        total = args.processes * args.repeats
        print(f"{store_class.__name__:>17}: {crashed}/{total} processes crashed, {stored}/{total} documents stored")


if __name__ == "__main__":
    main()
