"""Reading CP2K 2023.1 output: version, run status, total energy, wall time and band edges.

Written by hand because pymatgen's :class:`~pymatgen.io.cp2k.outputs.Cp2kOutput` (and atomate2's task
document built on it) leaves ``vbm``/``cbm``/``band_gap`` as None for these runs: it reads the
``HOMO - LUMO gap`` lines of OT runs, which diagonalisation runs do not print, and it does not take the
maximum over k-points. Here the band edges come from the ``MO| EIGENVALUES AND OCCUPATION NUMBERS``
blocks (one per k-point, printed by ``&DFT/&PRINT/&MO`` after the SCF): the VBM is the highest occupied
eigenvalue over all k-points, the CBM the lowest empty one. The ``MO| E(Fermi)`` and ``MO| Band gap``
lines are not used: with k-points they describe one k-point only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from monty.io import zopen
from pymatgen.core.units import Ha_to_eV

from bandflow.errors import BandflowError

_VERSION = re.compile(r"CP2K\| version string:\s+CP2K version (\S+)")
_ENERGY = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(\S+)")
_MO_HEADER = re.compile(r"MO\| EIGENVALUES AND OCCUPATION NUMBERS(?: FOR K POINT\s+(\d+))?")
_MO_LINE = re.compile(r"MO\|\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_SCF_CONVERGED = re.compile(r"\*\*\* SCF run converged in\s+(\d+) steps \*\*\*")
_SCF_NOT_CONVERGED = re.compile(r"SCF run NOT converged")
_GEO_CONVERGED = re.compile(r"GEOMETRY OPTIMIZATION COMPLETED")
_GEO_NOT_CONVERGED = re.compile(r"MAXIMUM NUMBER OF OPTIMIZATION STEPS REACHED")
_TOTAL_TIME = re.compile(r"^ CP2K\s+1\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)\s*$")
_ENDED = "PROGRAM ENDED AT"


@dataclass
class BandEdges:
    """Band edges (eV, on the calculation's zero) from the MO eigenvalues of all k-points."""

    vbm: float
    cbm: float
    n_kpoints: int
    vbm_kpoint: int
    cbm_kpoint: int

    @property
    def gap(self) -> float:
        return self.cbm - self.vbm


@dataclass
class HfxMemory:
    """Where CP2K put the exact-exchange integrals (ERIs) of a hybrid run, from its ``HFX_MEM_INFO`` lines.

    Integrals that do not fit within ``&HF/&MEMORY/MAX_MEMORY`` are recomputed at every SCF step ("calculated
    on the fly"); each such step then costs a part of the first step's integral pass.
    """

    calculated: int = 0  # spherical ERIs in all
    in_core: int = 0  # of which stored in memory
    on_the_fly: int = 0  # of which recomputed at every step
    ram_mib: int = 0  # memory the stored ones take

    @property
    def on_the_fly_fraction(self) -> float:
        return self.on_the_fly / self.calculated if self.calculated else 0.0

    @property
    def needed_mib(self) -> int | None:
        """MiB that would hold all integrals at the stored ones' compression (None when none was stored)."""
        return round(self.ram_mib * self.calculated / self.in_core) if self.in_core else None


_HFX_FIELDS = {"Number of sph. ERI's calculated": "calculated", "Number of sph. ERI's stored in-core": "in_core",
               "Number of sph. ERI's calculated on the fly": "on_the_fly",
               "Total memory consumption ERI's RAM [MiB]": "ram_mib"}
_HFX_INFO = re.compile(rf"HFX_MEM_INFO\| ({'|'.join(map(re.escape, _HFX_FIELDS))}):\s+(\d+)")


@dataclass
class Cp2kOutputSummary:
    """What bandflow reads from one CP2K output file."""

    path: str
    version: str | None = None
    completed: bool = False
    scf_converged: bool | None = None
    scf_steps: list[int] = field(default_factory=list)
    geo_opt_converged: bool | None = None
    total_energy: float | None = None  # eV, the last one printed
    wall_time: float | None = None  # s, CP2K's own timing of the whole run
    reused: bool = False  # restored from an earlier attempt's finished run (bandflow.cp2k.reuse): no time spent now
    abort_message: str | None = None
    eigenvalues: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # k → (eV, occ.)
    hfx_memory: HfxMemory | None = None  # the last HFX_MEM_INFO block (hybrid runs only)

    def band_edges(self) -> BandEdges:
        """VBM = highest occupied eigenvalue over all k-points, CBM = lowest empty one (occupation < ½ max)."""
        if not self.eigenvalues:
            raise BandflowError(f"{self.path}: no MO eigenvalues printed (needs &DFT/&PRINT/&MO EIGENVALUES)")
        max_occ = max(float(occ.max()) for _, occ in self.eigenvalues.values())
        threshold = 0.5 * max_occ if max_occ > 0 else 1.0
        vbm, cbm, k_vbm, k_cbm = -np.inf, np.inf, 0, 0
        for k, (energies, occ) in self.eigenvalues.items():
            occupied, empty = energies[occ >= threshold], energies[occ < threshold]
            if occupied.size and occupied.max() > vbm:
                vbm, k_vbm = float(occupied.max()), k
            if empty.size and empty.min() < cbm:
                cbm, k_cbm = float(empty.min()), k
        if not np.isfinite(vbm):
            raise BandflowError(f"{self.path}: no occupied orbital among the printed MO eigenvalues")
        if not np.isfinite(cbm):
            raise BandflowError(f"{self.path}: no empty orbital printed; increase ADDED_MOS to find the CBM")
        return BandEdges(vbm=vbm, cbm=cbm, n_kpoints=len(self.eigenvalues), vbm_kpoint=k_vbm, cbm_kpoint=k_cbm)

    def failure_reason(self) -> str | None:
        """One line saying why the run is unusable, or None when it completed with a converged SCF."""
        if self.abort_message:
            return f"CP2K aborted: {self.abort_message}"
        if self.scf_converged is False:
            return "SCF not converged"
        if not self.completed:
            return "CP2K did not finish (no 'PROGRAM ENDED' line in the output)"
        if self.geo_opt_converged is False:
            return "geometry optimisation did not converge within the allowed steps"
        return None


_ART = set("_\\/|O ")
_SOURCE_LOCATION = re.compile(r"^\S+\.F:\d+$")


def _abort_message(lines: list[str]) -> str | None:
    """The text of CP2K's ``[ABORT]`` box on one line, without the drawing and the source location."""
    for i, line in enumerate(lines):
        if "[ABORT]" not in line:
            continue
        parts = []
        for box in lines[i + 1:i + 12]:
            if box.strip().startswith("****"):
                break
            chunks = re.split(r"\s{2,}", box.strip().strip("*").strip())
            parts += [c for c in chunks if c and not set(c) <= _ART and not _SOURCE_LOCATION.match(c)]
        return " ".join(parts) or "unknown error"
    return None


_SCF_HEADER = "SCF WAVEFUNCTION OPTIMIZATION"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def last_scf_steps(text: str) -> list[tuple[int, float, float, float]]:
    """(step, convergence, total energy in Ha, energy change in Ha) of each step of the last SCF loop printed,
    e.g. ``1 P_Mix/Diag. 0.40E+00 2599.3 22.65827454 -560.1084350309 -5.60E+02``."""
    steps: list[tuple[int, float, float, float]] = []
    inside = False  # step lines only between the loop's header and its end (later tables look alike)
    for line in text.splitlines():
        if _SCF_HEADER in line:
            steps, inside = [], True
            continue
        if not inside:
            continue
        if _SCF_CONVERGED.search(line) or _SCF_NOT_CONVERGED.search(line) or "Leaving inner SCF loop" in line:
            inside = False
            continue
        tokens = line.split()
        if len(tokens) < 6 or not tokens[0].isdigit() or "." not in tokens[-2]:
            continue
        values = [_float(t) for t in tokens[-3:]]
        if all(v is not None for v in values):
            steps.append((int(tokens[0]), *values))
    return steps


def parse_output(path: str | Path) -> Cp2kOutputSummary:
    """Read a CP2K output file (plain or compressed)."""
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"CP2K output not found: {path}")
    with zopen(path, "rt", errors="replace") as handle:
        lines = handle.read().splitlines()
    out = Cp2kOutputSummary(path=str(path))
    block: tuple[int, list[float], list[float]] | None = None
    for line in lines:
        if block is not None:
            match = _MO_LINE.match(line.strip()) if line.strip().startswith("MO|") else None
            if match:
                block[1].append(float(match.group(3)))
                block[2].append(float(match.group(4)))
                continue
            if line.strip().startswith("MO|") and ("Index" in line or line.strip() == "MO|"):
                continue
            out.eigenvalues[block[0]] = (np.array(block[1]), np.array(block[2]))
            block = None
        if "MO|" in line and (header := _MO_HEADER.search(line)):
            block = (int(header.group(1) or 1), [], [])
        elif m := _VERSION.search(line):
            out.version = m.group(1)
        elif m := _ENERGY.search(line):
            out.total_energy = float(m.group(1)) * Ha_to_eV
        elif m := _SCF_CONVERGED.search(line):
            out.scf_steps.append(int(m.group(1)))
            out.scf_converged = True if out.scf_converged is None else out.scf_converged
        elif _SCF_NOT_CONVERGED.search(line):
            out.scf_converged = False
        elif _GEO_CONVERGED.search(line):
            out.geo_opt_converged = True
        elif _GEO_NOT_CONVERGED.search(line):
            out.geo_opt_converged = False
        elif m := _TOTAL_TIME.match(line):
            out.wall_time = float(m.group(1))
        elif _ENDED in line:
            out.completed = True
        elif "HFX_MEM_INFO|" in line and (m := _HFX_INFO.search(line)):
            name = _HFX_FIELDS[m.group(1)]
            if name == "calculated" or out.hfx_memory is None:  # a block's first line starts a new record
                out.hfx_memory = HfxMemory()
            setattr(out.hfx_memory, name, int(m.group(2)))
    if block is not None:
        out.eigenvalues[block[0]] = (np.array(block[1]), np.array(block[2]))
    out.abort_message = _abort_message(lines)
    return out
