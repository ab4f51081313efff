"""CHGNet slab relaxation beside a busy core: torch with every core against torch with one, side by side.

Two campaign runners with one CP2K thread each (``BANDFLOW_OMP_NUM_THREADS=1``) keep every core busy; the
CHGNet relaxation inside a runner then shares its core with the other runner's engine. This benchmark
occupies all cores but one with spinning processes (the other runner's stand-in), then relaxes the same
slab (a library oxide's first nonpolar ``fast`` slab, central third fixed, FIRE to 0.05 eV/Å, what
``bandflow.forcefields.chgnet_relax_maker`` runs) with torch's default threads and with one thread, and
prints the wall times and their ratio. The FIRE steps and final energies must agree (exit 1 if not).

    python benchmarks/chgnet_threads.py            # SnO
    python benchmarks/chgnet_threads.py ZnO --repeats 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

from bandflow.bulk import load_bulk
from bandflow.forcefields import fix_central_layers
from bandflow.protocols import get_protocol
from bandflow.surfaces import enumerate_surfaces


def spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    """Keep one core busy until ``stop`` is set."""
    while not stop.is_set():
        sum(range(10_000))


def relax_seconds(slab, threads: int) -> tuple[float, int, float]:
    """Wall time, FIRE steps and final energy (eV) of the CHGNet relaxation with ``threads`` torch threads."""
    import torch
    from ase.constraints import FixAtoms
    from ase.optimize import FIRE
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    torch.set_num_threads(threads)
    atoms = AseAtomsAdaptor.get_atoms(slab)
    atoms.set_constraint(FixAtoms(mask=[not all(sd) for sd in slab.site_properties["selective_dynamics"]]))
    atoms.calc = CHGNetCalculator(model=CHGNet.load(verbose=False))
    started = time.perf_counter()
    optimizer = FIRE(atoms, logfile=None)
    optimizer.run(fmax=0.05, steps=300)
    return time.perf_counter() - started, optimizer.nsteps, float(atoms.get_potential_energy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bulk", nargs="?", default="SnO")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        print("needs at least 2 cores (one busy, one for the relaxation)")
        return 1
    protocol = get_protocol("fast", "cp2k")
    entry = next(e for e in enumerate_surfaces(load_bulk(args.bulk), 1, protocol.min_thickness, protocol.vacuum)
                 if e.nonpolar)
    slab = fix_central_layers(entry.slab)
    stop = mp.Event()
    busy = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(cores - 1)]
    for process in busy:
        process.start()
    results: dict[int, list[tuple[float, int, float]]] = {cores: [], 1: []}
    try:
        for _ in range(args.repeats):
            for threads in (cores, 1):
                results[threads].append(relax_seconds(slab, threads))
    finally:
        stop.set()
        for process in busy:
            process.join()
    print(f"{entry.id}: {len(slab)} atoms, {cores} cores, {cores - 1} kept busy")
    for threads, runs in results.items():
        times = ", ".join(f"{t:.1f}" for t, _, _ in runs)
        print(f"  torch threads {threads}: {times} s; FIRE steps {runs[0][1]}; energy {runs[0][2]:.4f} eV")
    ratio = min(t for t, _, _ in results[cores]) / min(t for t, _, _ in results[1])
    print(f"  {cores} threads / 1 thread (best of {args.repeats}): {ratio:.2f}x the wall time")
    same = all(r[1] == results[1][0][1] and abs(r[2] - results[1][0][2]) < 1e-3 for rs in results.values() for r in rs)
    if not same:
        print("  the relaxations differ between thread counts")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
