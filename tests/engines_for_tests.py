"""Test-only makers standing in for DFT engines, so flow logic is tested in seconds.

They are not part of bandflow: campaigns name them through ``engine_settings`` (``maker: module:Class``),
the same hook a user has for their own makers. The slab maker writes a real CP2K-format cube file with an
analytic potential and analyses it with ``bandflow.potential``, so the alignment path is the real one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jobflow import Maker, job
from pymatgen.core import Structure

HARTREE_EV = 27.211386245988
BOHR_A = 0.529177210903

#: The analytic answer: vacuum at +5 eV, slab interior averaging −3 eV, VBM 1 eV, CBM 6 eV (bulk mean 0).
VACUUM, CENTRE, VBM, CBM = 5.0, -3.0, 1.0, 6.0
EXPECTED_IP = (VACUUM - CENTRE) - VBM
EXPECTED_EA = EXPECTED_IP - (CBM - VBM)


def _log(name: str) -> None:
    """Append a line to $BANDFLOW_TEST_LOG so tests can count executions across processes."""
    if path := os.environ.get("BANDFLOW_TEST_LOG"):
        with open(path, "a") as handle:
            handle.write(name + "\n")


def write_step_cube(structure: Structure, path: Path, n_xy: int = 4, dz: float = 0.1) -> None:
    """A cube (CP2K's V_HARTREE format, Hartree) whose planar average is VACUUM outside the atoms and
    CENTRE plus an interlayer ripple inside them, with smooth 1 Å edges."""
    c = structure.lattice.c
    nz = int(round(c / dz))
    z = np.arange(nz) * c / nz
    zs = structure.cart_coords[:, 2]
    lo, hi = zs.min() - 1.0, zs.max() + 1.0
    inside = 0.5 * (np.tanh((z - lo) / 0.3) - np.tanh((z - hi) / 0.3))
    layer = np.diff(np.unique(np.round(zs, 2))).min() if len(np.unique(np.round(zs, 2))) > 1 else 2.0
    profile = VACUUM + inside * (CENTRE - VACUUM + 0.5 * np.cos(2 * np.pi * (z - zs.min()) / layer))
    data = np.broadcast_to(profile / HARTREE_EV, (n_xy, n_xy, nz))
    m = structure.lattice.matrix / BOHR_A
    lines = ["analytic potential for tests", "V_HARTREE (Hartree)",
             f"{len(structure):5d} 0.0 0.0 0.0"]
    for n, vec in zip((n_xy, n_xy, nz), m, strict=True):
        lines.append(f"{n:5d} " + " ".join(f"{x:.6f}" for x in vec / n))
    for site in structure:
        x, y, zc = site.coords / BOHR_A
        lines.append(f"{site.specie.Z:5d} 0.0 {x:.6f} {y:.6f} {zc:.6f}")
    values = data.reshape(-1)
    body = [" ".join(f"{v:.8e}" for v in values[i:i + 6]) for i in range(0, len(values), 6)]
    Path(path).write_text("\n".join(lines + body) + "\n")


@dataclass
class AnalyticBulkMaker(Maker):
    name: str = "analytic bulk"
    vbm_shift: float = 0.0  # a different bulk method (tests that only bulk and alignment jobs re-run)
    fail: bool = False
    interrupt: bool = False  # as if Ctrl-C or SIGTERM stopped the runner during the job

    @job
    def make(self, structure: Structure) -> dict:
        _log("bulk")
        if self.fail:
            raise RuntimeError("bulk SCF did not converge (test)")
        if self.interrupt:
            raise KeyboardInterrupt
        vbm = VBM + self.vbm_shift
        return {"vbm": vbm, "cbm": CBM, "gap": CBM - vbm, "bulk_average_potential": 0.0,
                "functional": "analytic", "code_version": "test", "wall_time": {"hybrid": 100.0, "total": 120.0}}


@dataclass
class IdentityRelaxMaker(Maker):
    name: str = "identity relax"

    @job
    def make(self, structure: Structure) -> Structure:
        _log("relax")
        return structure


@dataclass
class AnalyticSlabMaker(Maker):
    name: str = "analytic slab"
    fail_for_atoms: int | None = None  # fail for slabs with this many atoms (one failing surface)
    sleep: float = 0.0

    @job
    def make(self, structure: Structure) -> dict:
        from bandflow.potential import analyze_potential

        time.sleep(self.sleep)
        if self.fail_for_atoms is not None and len(structure) == self.fail_for_atoms:
            raise RuntimeError("SCF did not converge after the retry ladder (test)")
        path = Path("slab-v_hartree-1_0.cube")
        write_step_cube(structure, path)
        analysis = analyze_potential(path)
        _log("slab")
        return {"potential": analysis.to_dict(profile=True), "energy": 0.0, "functional": "analytic",
                "code_version": "test", "wall_time": 30.0}
