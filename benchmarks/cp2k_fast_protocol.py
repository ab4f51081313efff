"""Time the CP2K steps of the ``fast`` protocol on small library oxides, with real CP2K.

For each oxide: the bulk band-edge job (:class:`~bandflow.cp2k.Cp2kBulkHybridMaker`: PBE at Γ, PBE with
k-points, HSE06 at Γ in a ≤16-atom supercell) and the PBE slab job
(:class:`~bandflow.cp2k.Cp2kSlabStaticMaker`) of every nonpolar surface up to Miller index 1, cut with the
fast protocol's thickness and vacuum (unrelaxed: the fast protocol relaxes with CHGNet, not timed here).

Printed: seconds per run (wall, and CPU seconds of CP2K / cores, which is less sensitive to other load on
a shared machine), the load average with every timing, the medians per surface and per bulk hybrid run
against the protocol's targets (≤ 60 s per surface, ≤ 300 s per bulk hybrid step), and IP/EA of each
surface from :func:`bandflow.potential.align`.

``--reference`` adds, side by side in the same run, what the k-point slab setting replaced: the first
surface of each oxide as a 2×2 in-plane supercell at Γ with the same cutoff (the ratio is printed).

    python benchmarks/cp2k_fast_protocol.py                 # MgO
    python benchmarks/cp2k_fast_protocol.py MgO CaO --reference
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from bandflow.bulk import load_bulk
from bandflow.cp2k import Cp2kBulkHybridMaker, Cp2kSlabStaticMaker, check_cp2k
from bandflow.cp2k.run import omp_threads
from bandflow.potential import align
from bandflow.protocols import get_protocol
from bandflow.surfaces import enumerate_surfaces

TARGET_SURFACE_S = 60.0
TARGET_BULK_HYBRID_S = 300.0


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_job(maker, structure, work: Path):
    """Run one maker's job in ``work``; return (output, wall s, CPU s of child processes / cores, load)."""
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    job = maker.make(structure)
    before = load()
    cpu, started = children_cpu(), time.perf_counter()
    responses = run_locally(job, store=store, create_folders=True, root_dir=work, raise_immediately=True, log=False)
    wall = time.perf_counter() - started
    cpu_per_core = (children_cpu() - cpu) / omp_threads()
    return responses[job.uuid][1].output, wall, cpu_per_core, f"{before} -> {load()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("oxides", nargs="*", default=["MgO"], help="library names (default MgO)")
    parser.add_argument("--reference", action="store_true", help="also time 2x2 Γ-only slabs side by side")
    args = parser.parse_args()

    print(f"CP2K {check_cp2k()}, OMP_NUM_THREADS={omp_threads()}, {load()}")
    protocol = get_protocol("fast", "cp2k")
    surface_times, hybrid_times, bulk_times = [], [], []
    with tempfile.TemporaryDirectory(prefix="bandflow-bench-") as tmp:
        work = Path(tmp)
        for name in args.oxides:
            bulk = load_bulk(name)
            edges, wall, cpu, loads = run_job(Cp2kBulkHybridMaker(), bulk.structure, work)
            hybrid_times.append(edges.wall_time["hybrid"])
            bulk_times.append(wall)
            print(f"\n{name} bulk ({edges.n_atoms}-atom Γ cell, PBE k-mesh {edges.k_correction.kpoints}): "
                  f"job {wall:.0f} s wall / {cpu:.0f} s CPU per core [{loads}]; runs: "
                  + ", ".join(f"{k} {v:.0f} s" for k, v in edges.wall_time.items() if k != "total"))
            print(f"  HSE06 VBM {edges.vbm:.3f} eV, CBM {edges.cbm:.3f} eV, gap {edges.gap:.3f} eV "
                  f"(Γ only: gap {edges.cbm_gamma - edges.vbm_gamma:.3f} eV; k correction VBM "
                  f"{edges.k_correction.vbm:+.3f}, CBM {edges.k_correction.cbm:+.3f} eV); "
                  f"mean potential {edges.bulk_average_potential:+.1e} eV")
            entries = [e for e in enumerate_surfaces(bulk, 1, protocol.min_thickness, protocol.vacuum) if e.nonpolar]
            for i, entry in enumerate(entries):
                out, wall, cpu, loads = run_job(Cp2kSlabStaticMaker(), entry.slab, work)
                surface_times.append(wall)
                p = out.potential
                ip, ea = align(0.5 * (p["vacuum_level_top"] + p["vacuum_level_bottom"]), p["slab_center_average"],
                               edges.vbm, edges.cbm, edges.bulk_average_potential)
                print(f"  {entry.id}: {entry.n_atoms} atoms, k {out.kpoints}: {wall:.0f} s wall / {cpu:.0f} s CPU "
                      f"per core [{loads}]; step {p['potential_step']:.3f} eV -> IP {ip:.2f} eV, EA {ea:.2f} eV")
                if args.reference and i == 0:
                    reference = Cp2kSlabStaticMaker(kpoints=(1, 1, 1))
                    _, ref_wall, ref_cpu, ref_loads = run_job(reference, entry.slab * (2, 2, 1), work)
                    print(f"    reference, 2x2 cell at Γ ({4 * entry.n_atoms} atoms): {ref_wall:.0f} s wall / "
                          f"{ref_cpu:.0f} s CPU per core [{ref_loads}]; k-point 1x1 is {ref_wall / wall:.1f}x faster")

    print(f"\nmedian per surface: {statistics.median(surface_times):.0f} s "
          f"(target {TARGET_SURFACE_S:.0f} s, ratio {statistics.median(surface_times) / TARGET_SURFACE_S:.2f}) "
          f"over {len(surface_times)} surfaces")
    print(f"median per bulk hybrid run: {statistics.median(hybrid_times):.0f} s "
          f"(target {TARGET_BULK_HYBRID_S:.0f} s, ratio {statistics.median(hybrid_times) / TARGET_BULK_HYBRID_S:.2f}); "
          f"whole bulk job (PBE Γ + PBE k + HSE06) median {statistics.median(bulk_times):.0f} s; {load()}")


if __name__ == "__main__":
    main()
