"""CP2K k-point runs with each k, −k pair listed once (weight 2) against the full Γ-centred list, side by side.

For each oxide: its first nonpolar slab of the ``fast`` protocol (Miller index ≤ 1) and, with ``--bulk``, its
primitive cell at the default k-spacing (MgO: 5×5×5, 125 → 63 k-points; minutes), the PBE
single point bandflow writes (:func:`bandflow.cp2k.sets.time_reversal_kpoints`) and the same input
with the full mesh (what bandflow wrote before), run one after the other with real CP2K. Printed: k-points,
SCF steps, CPU seconds of CP2K per core (less sensitive to other load than wall time), their ratio, and the
differences of total energy and band edges, which must be zero to numerical noise (exit 1 if any is
above 1 meV).

    python benchmarks/cp2k_kpoint_reduction.py              # MgO
    python benchmarks/cp2k_kpoint_reduction.py MgO ZnO --bulk
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from pymatgen.core import Structure

from bandflow.bulk import load_bulk
from bandflow.cp2k import check_cp2k
from bandflow.cp2k.run import omp_threads, run_cp2k
from bandflow.cp2k.sets import (
    DEFAULT_KSPACING,
    Cp2kSlabStaticSetGenerator,
    Cp2kStaticSetGenerator,
    gamma_centred_kpoints,
    kpoint_mesh,
)
from bandflow.protocols import get_protocol
from bandflow.surfaces import enumerate_surfaces

TOLERANCE_EV = 1e-3


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(generator: Cp2kStaticSetGenerator, structure: Structure, directory: Path, full: bool):
    """Write and run one input (``full``: the whole mesh, weight 1 each); (summary, CPU s per core)."""
    if full:
        mesh = generator.kpoint_mesh(structure)
        listed = [(*k, 1.0) for k in gamma_centred_kpoints(mesh)]
        generator.user_input_settings = {"FORCE_EVAL": {"DFT": {"KPOINTS": {"KPOINT": listed}}}}
    generator.get_input_set(structure).write_input(directory, make_dir=True)
    before = children_cpu()
    summary = run_cp2k(directory)
    return summary, (children_cpu() - before) / omp_threads()


def compare(label: str, make_generator, structure: Structure, work: Path) -> float:
    runs = {}
    for full in (True, False):
        name = "full" if full else "reduced"
        runs[name] = timed_run(make_generator(), structure, work / f"{label}-{name}", full)
    (full_out, full_cpu), (red_out, red_cpu) = runs["full"], runs["reduced"]
    full_edges, red_edges = full_out.band_edges(), red_out.band_edges()
    print(f"  {label}: {len(structure)} atoms, k-points {full_edges.n_kpoints} -> {red_edges.n_kpoints}; "
          f"SCF steps {full_out.scf_steps[-1]} / {red_out.scf_steps[-1]}; CPU per core {full_cpu:.1f} s -> "
          f"{red_cpu:.1f} s, ratio {red_cpu / full_cpu:.2f}; |dE| {abs(full_out.total_energy - red_out.total_energy):.1e} eV, "
          f"|dVBM| {abs(full_edges.vbm - red_edges.vbm):.1e} eV, |dCBM| {abs(full_edges.cbm - red_edges.cbm):.1e} eV")
    worst = max(abs(full_out.total_energy - red_out.total_energy), abs(full_edges.vbm - red_edges.vbm),
                abs(full_edges.cbm - red_edges.cbm))
    if worst > TOLERANCE_EV:
        raise SystemExit(f"{label}: the reduced list differs from the full one by {worst:.2e} eV")
    return red_cpu / full_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("oxides", nargs="*", default=["MgO"], help="library names (default MgO)")
    parser.add_argument("--bulk", action="store_true", help="also the primitive bulk (slow)")
    args = parser.parse_args()
    print(f"CP2K {check_cp2k()}, OMP_NUM_THREADS={omp_threads()}")
    protocol = get_protocol("fast", "cp2k")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="bandflow-bench-") as tmp:
        work = Path(tmp)
        for name in args.oxides:
            bulk = load_bulk(name)
            print(name)
            if args.bulk:
                primitive = bulk.structure.get_primitive_structure()
                mesh = kpoint_mesh(primitive, DEFAULT_KSPACING)
                ratios.append(compare(f"{name}-bulk", lambda m=mesh: Cp2kStaticSetGenerator(kpoints=m), primitive, work))
            entry = next(e for e in enumerate_surfaces(bulk, 1, protocol.min_thickness, protocol.vacuum) if e.nonpolar)
            ratios.append(compare(f"{name}-{entry.id}", Cp2kSlabStaticSetGenerator, entry.slab, work))
    print(f"CPU ratio reduced / full: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
