"""Surface enumeration: bandflow.surfaces vs the pymatgen SlabGenerator pipeline, side by side.

The reference does what a pymatgen user would write: distinct Miller indices of the conventional cell,
``SlabGenerator(primitive=True).get_slabs()`` for each, ``get_orthogonal_c_slab``, ``is_symmetric`` and
``is_polar`` on the oxidation-state-decorated slab. Both run on the same bulks in the same process and
the same slab parameters; the script prints times, surfaces per minute, the speed ratio and whether the
two agree on which orientations are nonpolar and on the number of nonpolar terminations.

    .venv/bin/python benchmarks/bench_surfaces.py [--max-index 1 2] [--repeat 3]

"entries" counts nonpolar slabs and polar candidates, "np" the nonpolar slabs alone. The pymatgen
reference takes a few minutes (corundum at index 2 alone ~3 min on one core).
"""

from __future__ import annotations

import argparse
import time
import warnings

from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.bulk import library_names, load_bulk, oxidation_states
from bandflow.surfaces import distinct_miller_indices, enumerate_surfaces

# Used only when the library has no entry of that name yet.
FALLBACK = {
    "SrTiO3": lambda: Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    ),
    "Al2O3": lambda: Structure.from_spacegroup(
        "R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"], [[0, 0, 0.35216], [0.30624, 0, 0.25]]
    ),
    "CeO2": lambda: Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.411), ["Ce", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    ),
}
NAMES = ["MgO", "ZnO", "TiO2-rutile", "SrTiO3", "Al2O3", "CeO2"]


def _bulk(name: str) -> Structure:
    return load_bulk(name).structure if name in library_names() else FALLBACK[name]()


def pymatgen_reference(structure: Structure, max_index: int, min_thickness: float, vacuum: float) -> dict:
    """{hkl: number of symmetric, nonpolar terminations} from pymatgen's own tools."""
    sga = SpacegroupAnalyzer(structure, symprec=0.01)
    conv = sga.get_conventional_standard_structure()
    oxi = oxidation_states(structure)
    rotations = [op.rotation_matrix.round().astype(int)
                 for op in SpacegroupAnalyzer(conv, symprec=0.01).get_symmetry_operations()]
    result, n_slabs = {}, 0
    # Same orientations as bandflow (pymatgen's own distinct-index function merges some, see surfaces.py).
    for hkl in distinct_miller_indices(rotations, max_index):
        generator = SlabGenerator(conv, hkl, min_thickness, vacuum, center_slab=True, primitive=True)
        good = 0
        for slab in generator.get_slabs():
            slab = slab.get_orthogonal_c_slab()
            decorated = slab.copy()
            decorated.add_oxidation_state_by_element(oxi)
            good += slab.is_symmetric() and not decorated.is_polar()
            n_slabs += 1
        result[hkl] = good
    return {"counts": result, "n_slabs": n_slabs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-index", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-thickness", type=float, default=10.0)
    parser.add_argument("--vacuum", type=float, default=15.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    oxidation_states(load_bulk("MgO").structure)  # one-off load of pymatgen's oxidation-state tables

    print(f"{'bulk':<13}{'N':>2}{'entries':>8}{'np':>4}{'bandflow ms':>12}{'surf/min':>10}{'pymatgen ms':>12}"
          f"{'slabs':>6}{'ratio':>7}  agree")
    total_bf = total_pm = total_entries = total_np = 0.0
    for name in NAMES:
        structure = _bulk(name)
        for max_index in args.max_index:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                entries = enumerate_surfaces(structure, max_index, args.min_thickness, args.vacuum)
                best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            reference = pymatgen_reference(structure, max_index, args.min_thickness, args.vacuum)
            t_ref = time.perf_counter() - t0
            ours = {}
            for e in entries:
                ours[e.miller_index] = ours.get(e.miller_index, 0) + int(e.nonpolar)
            agree = ours == reference["counts"]
            total_bf, total_pm, total_entries = total_bf + best, total_pm + t_ref, total_entries + len(entries)
            n_nonpolar = sum(e.nonpolar for e in entries)
            total_np += n_nonpolar
            print(f"{name:<13}{max_index:>2}{len(entries):>8}{n_nonpolar:>4}{best * 1e3:>12.1f}{len(entries) / best * 60:>10.0f}"
                  f"{t_ref * 1e3:>12.1f}{reference['n_slabs']:>6}{t_ref / best:>7.1f}  {'yes' if agree else 'NO'}")
            if not agree:
                print(f"    bandflow {ours}\n    pymatgen {reference['counts']}")
    print(f"{'total':<15}{int(total_entries):>8}{int(total_np):>4}{total_bf * 1e3:>12.1f}"
          f"{total_entries / total_bf * 60:>10.0f}{total_pm * 1e3:>12.1f}{'':>6}{total_pm / total_bf:>7.1f}")
    print(f"nonpolar slabs per minute (bandflow): {total_np / total_bf * 60:.0f}")


if __name__ == "__main__":
    main()
