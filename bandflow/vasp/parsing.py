"""Reading the VASP outputs of the accurate protocol: band edges, ε∞, the bulk mean potential, slab potential.

Energy zero. The eigenvalues and the LOCPOT of one run share one zero. VASP drops the G = 0 component of
the electrostatic potential, so the cell mean of an LVHAR LOCPOT is zero up to the G = 0 terms that the
local pseudopotentials carry (core corrections); bandflow does not rely on it being zero: the bulk step
reports the band edges as VASP prints them together with ``bulk_average_potential``, the mean of the bulk
LOCPOT, and the alignment uses ``E_VBM − V̄_bulk`` (see :func:`bandflow.potential.align`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from monty.os.path import zpath
from pymatgen.io.vasp import Vasprun

from bandflow.errors import BandflowError
from bandflow.potential import analyze_potential, read_potential

#: VASP's GGA tags and the functionals they name.
GGA_NAMES = {"PE": "PBE", "PS": "PBEsol", "RP": "RPBE", "91": "PW91", "AM": "AM05", "CA": "LDA", "PZ": "LDA"}
#: Occupations above this count a state as filled (robust to smearing tails in insulators).
OCCUPATION_THRESHOLD = 0.5
#: |AEXX − 1/ε∞| allowed when checking a dielectric-dependent hybrid run.
AEXX_TOLERANCE = 1e-4


def vasp_file(directory: str | Path, name: str) -> Path:
    """``directory/name``, or its compressed variant (atomate2 gzips outputs); BandflowError if absent."""
    path = Path(zpath(str(Path(directory) / name)))
    if not path.is_file():
        raise BandflowError(f"{directory}: no {name} (nor a compressed {name}) found")
    return path


def load_vasprun(path: str | Path, parse_eigen: bool = True) -> Vasprun:
    """Parse a vasprun.xml (file or run directory) without DOS, projections or POTCAR lookups."""
    path = Path(path)
    if path.is_dir():
        path = vasp_file(path, "vasprun.xml")
    elif not path.is_file():
        raise BandflowError(f"VASP run directory or vasprun.xml not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Vasprun(path, parse_dos=False, parse_eigen=parse_eigen, parse_potcar_file=False,
                           occu_tol=OCCUPATION_THRESHOLD)
    except Exception as exc:  # pymatgen raises ParseError, ValueError, KeyError, ... on bad files
        raise BandflowError(f"cannot parse {path} as a vasprun.xml: {type(exc).__name__}: {exc}") from exc


def _parameter(vasprun: Vasprun, key: str, default: Any = None) -> Any:
    """A run parameter: the INCAR value when given there, else VASP's effective value from vasprun."""
    if key in vasprun.incar:
        return vasprun.incar[key]
    return vasprun.parameters.get(key, default)


def code_version(vasprun: Vasprun) -> str:
    """``"VASP 6.3.2"``."""
    return f"VASP {str(vasprun.vasp_version).strip()}"


def exact_exchange_fraction(vasprun: Vasprun) -> float | None:
    """AEXX of a hybrid run (VASP default 0.25), None for a semilocal run."""
    if not _parameter(vasprun, "LHFCALC", False):
        return None
    return float(_parameter(vasprun, "AEXX", 0.25))


def functional_name(vasprun: Vasprun) -> str:
    """Name of the exchange-correlation functional of a run: PBE, PBEsol, HSE06, PBE0, ..."""
    metagga = str(_parameter(vasprun, "METAGGA", "") or "").strip().upper()
    if metagga and metagga not in {"--", "NONE", "F", "FALSE"}:
        return metagga
    gga_tag = str(_parameter(vasprun, "GGA", "PE") or "PE").strip().upper()
    gga = GGA_NAMES.get(gga_tag, "PBE" if gga_tag == "--" else gga_tag)  # "--": as the POTCARs (PBE)
    aexx = exact_exchange_fraction(vasprun)
    if aexx is None:
        return gga
    screening = float(_parameter(vasprun, "HFSCREEN", 0.0) or 0.0)
    if gga == "PBE" and math.isclose(aexx, 0.25, abs_tol=1e-6):
        if math.isclose(screening, 0.2, abs_tol=1e-6):
            return "HSE06"
        if math.isclose(screening, 0.0, abs_tol=1e-9):
            return "PBE0"
    if screening == 0.0:
        return f"{gga}0-type (AEXX={aexx:.4f})"
    return f"{gga} hybrid (AEXX={aexx:.4f}, HFSCREEN={screening:g})"


def band_edges(vasprun: Vasprun) -> dict[str, Any]:
    """VBM, CBM and gap (eV) from the eigenvalues and occupations of all k-points and spins.

    Occupation-based (pymatgen's ``eigenvalue_band_properties`` with a 0.5 threshold) rather than Fermi
    level based, so it needs no KPOINTS file and is insensitive to where VASP puts E_F inside the gap.
    The edges are the extrema over the k-point mesh of the run.
    """
    if not vasprun.eigenvalues:
        raise BandflowError(f"{vasprun.filename}: no eigenvalues in the vasprun.xml")
    gap, cbm, vbm, direct = vasprun.eigenvalue_band_properties
    gap, cbm, vbm = float(gap), float(cbm), float(vbm)
    if not (math.isfinite(vbm) and math.isfinite(cbm)) or cbm <= vbm or gap <= 0.0:
        raise BandflowError(f"{vasprun.filename}: no band gap (metallic or empty bands); IP/EA are undefined")
    return {"vbm": vbm, "cbm": cbm, "gap": gap, "is_gap_direct": bool(direct)}


def epsilon_infinity(tensor: Any) -> float:
    """ε∞ = mean of the diagonal of the electronic (ion-clamped) dielectric tensor."""
    eps = np.asarray(tensor, dtype=float)
    if eps.shape != (3, 3) or not np.all(np.isfinite(eps)):
        raise BandflowError(f"dielectric tensor must be a finite 3x3 matrix, got shape {eps.shape}")
    value = float(np.trace(eps) / 3.0)
    if value <= 1.0:
        raise BandflowError(f"ε∞ = {value:.4f} is not above 1: not the dielectric constant of an insulator")
    return value


def read_epsilon_infinity(path: str | Path) -> float:
    """ε∞ of a DFPT (LEPSILON) run from its vasprun.xml (file or run directory).

    The tensor is VASP's ``epsilon`` block: electronic response with local field effects in DFT, ions
    clamped. The ionic contribution (IBRION = 7/8) is in a separate block and is not used.
    """
    vasprun = load_vasprun(path, parse_eigen=False)
    tensor = vasprun.epsilon_static
    if tensor is None or len(tensor) == 0:
        raise BandflowError(f"{vasprun.filename}: no DFPT dielectric tensor (was LEPSILON = True set?)")
    return epsilon_infinity(tensor)


def _require_lvhar(vasprun: Vasprun) -> None:
    if not _parameter(vasprun, "LVHAR", False):
        raise BandflowError(
            f"{vasprun.filename}: the run did not set LVHAR = True, so its LOCPOT is not the electrostatic "
            "potential (Hartree + ionic)"
        )


def _require_converged(vasprun: Vasprun) -> None:
    if not vasprun.converged_electronic:
        raise BandflowError(f"{vasprun.filename}: the electronic self-consistency did not converge")


def read_bulk_edges(directory: str | Path, epsilon_infinity: float | None = None) -> dict[str, Any]:
    """Band edges of a bulk hybrid run and the mean of its LOCPOT (all eV).

    With ``epsilon_infinity`` the run must be the dielectric-dependent hybrid for it (unscreened,
    AEXX = 1/ε∞); the functional is then reported as ``DDH``.
    """
    directory = Path(directory)
    vasprun = load_vasprun(directory)
    _require_converged(vasprun)
    _require_lvhar(vasprun)
    edges = band_edges(vasprun)
    locpot = read_potential(vasp_file(directory, "LOCPOT"))
    functional = functional_name(vasprun)
    aexx = exact_exchange_fraction(vasprun)
    if epsilon_infinity is not None:
        expected = 1.0 / epsilon_infinity
        screening = float(_parameter(vasprun, "HFSCREEN", 0.0) or 0.0)
        if aexx is None or screening != 0.0 or abs(aexx - expected) > AEXX_TOLERANCE:
            raise BandflowError(
                f"{vasprun.filename}: not the dielectric-dependent hybrid for ε∞ = {epsilon_infinity:.4f} "
                f"(expected AEXX = {expected:.4f} without screening; the run has {functional})"
            )
        functional = "DDH"
    return {
        **edges,
        "bulk_average_potential": float(np.mean(locpot.data)),
        "functional": functional,
        "exact_exchange": aexx,
        "epsilon_infinity": epsilon_infinity,
        "code_version": code_version(vasprun),
        "energy": float(vasprun.final_energy),
        "engine": "vasp",
        "dir_name": str(directory),
    }


def read_slab_potential(directory: str | Path, period: float | None = None) -> dict[str, Any]:
    """Potential analysis of a slab LVHAR run (``bandflow.potential.analyze_potential`` on its LOCPOT).

    Returns ``{"potential": <analysis dict with the z/planar/macroscopic profiles>, "energy", ...}``.
    ``period`` is the interlayer spacing (Å) of the macroscopic average; None detects it from the atoms.
    """
    directory = Path(directory)
    vasprun = load_vasprun(directory, parse_eigen=False)
    _require_converged(vasprun)
    _require_lvhar(vasprun)
    analysis = analyze_potential(vasp_file(directory, "LOCPOT"), axis=2, period=period)
    return {
        "potential": analysis.to_dict(profile=True),
        "energy": float(vasprun.final_energy),
        "functional": functional_name(vasprun),
        "dipole_correction": bool(_parameter(vasprun, "LDIPOL", False)),
        "code_version": code_version(vasprun),
        "engine": "vasp",
        "dir_name": str(directory),
    }
