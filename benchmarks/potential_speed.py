"""Slab-potential analysis speed: bandflow vs pymatgen, side by side in one run.

Builds a 48-atom MgO(100)-like slab potential on a 120x120x600 grid (a smooth step to a flat vacuum plus a
Gaussian well at every atom and 1 meV noise per grid point), writes it as a VASP LOCPOT (pymatgen's writer) and as a CP2K-style cube, then
times, best of ``--repeats``:

* LOCPOT: ``bandflow.potential.analyze_potential(path)`` (read + planar/macroscopic averages + plateaus)
  against ``Locpot.from_file`` + ``WorkFunctionAnalyzer`` (pymatgen's vacuum level = maximum of the planar
  average), and checks that both vacuum levels agree within the plateau tolerance;
* cube: ``analyze_potential`` on the cube against ``VolumetricData.from_cube`` + ``WorkFunctionAnalyzer``.

Prints both times and, last, ``ratio_vs_pymatgen=<pymatgen time / bandflow time>`` for the LOCPOT.
Usage: ``python benchmarks/potential_speed.py [--grid 120 120 600] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from pymatgen.analysis.surface_analysis import WorkFunctionAnalyzer
from pymatgen.core import Lattice, Structure
from pymatgen.core.units import Ha_to_eV, bohr_to_ang
from pymatgen.io.common import VolumetricData
from pymatgen.io.vasp import Locpot

from bandflow.potential import analyze_potential

V_VACUUM, V_INSIDE, TOLERANCE = 4.3, -8.0, 0.02


def build_slab(shape: tuple[int, int, int]) -> tuple[np.ndarray, Structure]:
    """48-atom MgO(100) slab (6 layers of 1x2 conventional cells) in a 4.21 x 8.42 x 60 Å cell."""
    a = 4.21
    lattice = Lattice.orthorhombic(a, 2 * a, 60.0)
    species, coords = [], []
    for layer in range(6):
        z = 0.5 + (layer - 2.5) * (a / 2) / 60.0
        for j in range(2):
            for dx, dy in ((0, 0), (0.5, 0.5), (0.5, 0), (0, 0.5)):
                cation = (dx == dy) ^ (layer % 2 == 1)
                species.append("Mg" if cation else "O")
                coords.append([dx, (j + dy) / 2, z])
    structure = Structure(lattice, species, coords)

    axes = [np.arange(n) / n for n in shape]
    z = axes[2] * 60.0
    half = 0.5 * 5 * a / 2 + 1.0
    step = V_VACUUM + (V_INSIDE - V_VACUUM) * 0.5 * (np.tanh((z - 30 + half) / 0.8) - np.tanh((z - 30 - half) / 0.8))
    data = np.broadcast_to(step, shape).copy()
    sigma = 0.35
    lengths = lattice.abc
    for site in structure:
        factors = []
        for k in range(3):
            d = axes[k] - site.frac_coords[k]
            d = (d - np.round(d)) * lengths[k]
            factors.append(np.exp(-(d**2) / (2 * sigma**2)))
        depth = 20.0 if site.species_string == "Mg" else 10.0
        data -= depth * factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]
    data += np.random.default_rng(0).normal(0.0, 1e-3, shape)  # numerical noise, as in a real LOCPOT
    return data, structure


def write_cp2k_cube(path: Path, data_ev: np.ndarray, structure: Structure) -> None:
    """Cube in CP2K's layout: bohr, Hartree, each z-column in lines of six E13.5 values."""
    shape = data_ev.shape
    if shape[2] % 6:
        raise SystemExit("the cube writer here needs a z grid divisible by 6")
    cell = structure.lattice.matrix / bohr_to_ang
    with open(path, "w") as file:
        file.write("-Quickstep-\n HARTREE POTENTIAL\n")
        file.write(f"{len(structure):5d}{0:12.6f}{0:12.6f}{0:12.6f}\n")
        for i in range(3):
            voxel = cell[i] / shape[i]
            file.write(f"{shape[i]:5d}{voxel[0]:12.6f}{voxel[1]:12.6f}{voxel[2]:12.6f}\n")
        for site in structure:
            x, y, z = site.coords / bohr_to_ang
            file.write(f"{site.specie.Z:5d}{0:12.6f}{x:12.6f}{y:12.6f}{z:12.6f}\n")
        np.savetxt(file, (data_ev / Ha_to_eV).reshape(-1, 6), fmt="%13.5E", delimiter="")


def best_of_interleaved(repeats: int, first, second):
    """Best times of two functions run alternately (ABBA...), so that drifts in machine load hit both."""
    times: list[list[float]] = [[], []]
    results: list = [None, None]
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            results[which] = None  # free the previous result before timing again
            start = time.perf_counter()
            results[which] = (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return min(times[0]), results[0], min(times[1]), results[1]


def pymatgen_locpot(path: Path) -> WorkFunctionAnalyzer:
    locpot = Locpot.from_file(path)
    return WorkFunctionAnalyzer(locpot.structure, locpot.get_average_along_axis(2), efermi=0.0)


def pymatgen_cube(path: Path) -> WorkFunctionAnalyzer:
    cube = VolumetricData.from_cube(path)
    return WorkFunctionAnalyzer(cube.structure, cube.get_average_along_axis(2) * Ha_to_eV, efermi=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, nargs=3, default=[120, 120, 600])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data, structure = build_slab(tuple(args.grid))
        locpot_path, cube_path = Path(tmp) / "LOCPOT", Path(tmp) / "slab-v_hartree-1_0.cube"
        Locpot(structure, {"total": data}).write_file(locpot_path)
        write_cp2k_cube(cube_path, data, structure)
        print(f"grid {'x'.join(map(str, args.grid))}, {len(structure)} atoms; files written in "
              f"{time.perf_counter() - start:.1f} s (LOCPOT {locpot_path.stat().st_size / 1e6:.0f} MB, "
              f"cube {cube_path.stat().st_size / 1e6:.0f} MB)")

        failures = []
        ratios = {}
        for label, path, reference in (("cube", cube_path, pymatgen_cube), ("LOCPOT", locpot_path, pymatgen_locpot)):
            t_pmg, wfa, t_bf, result = best_of_interleaved(
                args.repeats, lambda p=path, r=reference: r(p),
                lambda p=path: analyze_potential(p, plateau_tolerance=TOLERANCE),
            )
            diff = max(abs(result.vacuum_level_top - wfa.vacuum_locpot), abs(result.vacuum_level_bottom - wfa.vacuum_locpot))
            ratios[label] = t_pmg / t_bf
            print(f"{label}: bandflow {t_bf:.3f} s (vacuum {result.vacuum_level_top:.5f} / {result.vacuum_level_bottom:.5f} eV, "
                  f"centre {result.slab_center_average:.4f} eV, period {result.period:.4f} Å); "
                  f"pymatgen {t_pmg:.3f} s (vacuum {wfa.vacuum_locpot:.5f} eV, the maximum); |Δ vacuum| = {diff:.2e} eV")
            if diff > TOLERANCE:
                failures.append(f"{label}: vacuum levels disagree by {diff:.3f} eV")
        print(f"cube_ratio_vs_pymatgen={ratios['cube']:.3f}")
        for failure in failures:
            print(f"FAIL {failure}", file=sys.stderr)
        print(f"ratio_vs_pymatgen={ratios['LOCPOT']:.3f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
