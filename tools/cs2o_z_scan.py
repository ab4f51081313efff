"""PBE scan of the Cs z parameter of Cs2O at its published cell (the library entry's one computed number).

The published cell of anti-CdCl2 Cs2O (Tsai, Harris & Lassettre 1956: a = 4.256, c = 18.99 Å) was at hand,
its Cs z was not, so ``tools/build_bulk_library.py`` stores the minimum of this scan: PBE with bandflow's
fast settings (the bulk maker's k-mesh run) on the 3-atom primitive cell, a cubic fit through the points.

    BANDFLOW_OMP_NUM_THREADS=1 python tools/cs2o_z_scan.py --workdir /tmp/cs2o 0.252 0.255 0.2578 0.261 0.264

Measured 2026-12-07 (about 1 min per point on one thread): minimum at z = 0.2553 (Cs–O 2.870 Å).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from bandflow.cp2k.jobs import Cp2kBulkHybridMaker, _run
from bandflow.cp2k.sets import Cp2kStaticSetGenerator, kpoint_mesh


def cs2o(z: float) -> Structure:
    """Primitive cell of Cs2O with Cs at (0, 0, z) of the hexagonal axes."""
    cell = Structure.from_spacegroup("R-3m", Lattice.hexagonal(4.256, 18.99), ["O", "Cs"], [[0, 0, 0], [0, 0, z]])
    return cell.get_primitive_structure()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("z", type=float, nargs="+", help="Cs z values (at least three)")
    parser.add_argument("--workdir", type=Path, required=True, help="one CP2K folder per point goes here")
    args = parser.parse_args()
    if len(args.z) < 3:
        parser.error("give at least three z values")
    maker = Cp2kBulkHybridMaker()
    energies = []
    for z in args.z:
        cell = cs2o(z)
        generator = Cp2kStaticSetGenerator(kpoints=kpoint_mesh(cell, maker.kspacing), **maker._common())
        out = _run(generator, cell, args.workdir / f"z{z:.4f}")
        cs = next(site for site in cell if site.specie.symbol == "Cs")
        bond = min(n.nn_distance for n in cell.get_neighbors(cs, 3.5) if n.specie.symbol == "O")
        energies.append(out.total_energy)
        print(f"z = {z:.4f}  Cs-O {bond:.3f} A  E = {out.total_energy:.5f} eV  ({out.wall_time:.0f} s)", flush=True)
    fit = np.polyfit(args.z, energies, min(3, len(args.z) - 1))
    inside = [r.real for r in np.roots(np.polyder(fit))
              if abs(r.imag) < 1e-12 and min(args.z) <= r.real <= max(args.z) and np.polyval(np.polyder(fit, 2), r.real) > 0]
    if not inside:
        raise SystemExit("no minimum inside the scanned range; widen it")
    print(f"minimum at z = {inside[0]:.4f}")


if __name__ == "__main__":
    main()
