"""VASP input set generators of the ``accurate`` protocol.

Each generator is an atomate2 generator (PBEsol base config, PBE_54 POTCARs, atomate2's POTCAR choices)
with the protocol's common settings layered on top:

* the same plane-wave cutoff (``encut``) and the same reciprocal-space k-point spacing (``kspacing``) in
  every step, so the bulk and slab calculations are converged alike;
* Γ-centred meshes; one k-point along c for slabs (c is the surface normal, vacuum lies along it);
* spin polarisation only for structures holding an element that atomate2 starts with a magnetic moment.

Which generator does what:

====================================  =====================================================================
``BulkRelaxSetGenerator``             PBEsol, ISIF = 3 (cell shape and volume)
``SlabRelaxSetGenerator``             PBEsol, ISIF = 2 (fixed cell), dipole correction along c
``BulkDielectricSetGenerator``        PBE DFPT (LEPSILON), ion-clamped: ε∞ only
``BulkHybridSetGenerator``            HSE06, or a PBE0-type hybrid with AEXX = ``exact_exchange``; LVHAR
``SlabStaticSetGenerator``            PBEsol static, LVHAR, dipole correction along c
====================================  =====================================================================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from atomate2.vasp.sets.core import (
    HSEStaticSetGenerator,
    RelaxConstVolSetGenerator,
    RelaxSetGenerator,
    StaticSetGenerator,
)
from pymatgen.io.vasp import Kpoints

from bandflow.errors import BandflowError

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Plane-wave cutoff (eV) of every step: 1.3 × the largest ENMAX of the common oxide POTCARs (O: 400 eV).
DEFAULT_ENCUT = 520.0
#: k-point spacing (Å⁻¹, 2π included, VASP's KSPACING convention) of every step.
DEFAULT_KSPACING = 0.3
#: A slab must have at least this much vacuum (Å) along c.
MIN_VACUUM = 5.0


def kpoint_mesh(structure: Structure, kspacing: float, slab: bool = False) -> tuple[int, int, int]:
    """Subdivisions ``max(1, ceil(|b_i| / kspacing))`` (VASP's KSPACING rule); 1 along c for a slab.

    Written here because pymatgen's density helpers work per atom or per real-space length, which gives
    different reciprocal spacings for a bulk cell and an oriented slab cell, and VASP's own KSPACING tag
    cannot force a single k-point along the vacuum direction.
    """
    if not kspacing > 0:
        raise BandflowError(f"kspacing must be positive, got {kspacing}")
    lengths = structure.lattice.reciprocal_lattice.abc
    mesh = [max(1, math.ceil(length / kspacing - 1e-9)) for length in lengths]
    if slab:
        mesh[2] = 1
    return mesh[0], mesh[1], mesh[2]


def gamma_kpoints(structure: Structure, kspacing: float, slab: bool = False) -> Kpoints:
    """A Γ-centred KPOINTS with the :func:`kpoint_mesh` subdivisions."""
    mesh = kpoint_mesh(structure, kspacing, slab)
    kind = "slab, 1 along c" if slab else "bulk"
    return Kpoints.gamma_automatic(mesh, comment=f"bandflow: k-spacing {kspacing} 1/A ({kind})")


def slab_center_fraction(structure: Structure) -> float:
    """Fractional c coordinate of the slab's mid-plane, correct also when the slab wraps across c = 0.

    The vacuum is the largest gap between consecutive atomic planes along c (periodically); the slab is
    the rest. pymatgen's centre of mass ignores the wrap, so this is done by hand.
    """
    c_frac = np.sort(np.mod(structure.frac_coords[:, 2], 1.0))
    gaps = np.diff(np.append(c_frac, c_frac[0] + 1.0))
    widest = int(np.argmax(gaps))
    c_normal = structure.volume / np.linalg.norm(np.cross(*structure.lattice.matrix[:2]))
    vacuum = gaps[widest] * c_normal
    if vacuum < MIN_VACUUM:
        raise BandflowError(
            f"{structure.composition.reduced_formula}: only {vacuum:.1f} Å of vacuum along c; a slab needs "
            f"at least {MIN_VACUUM:.0f} Å of vacuum along its third lattice vector"
        )
    slab_start = c_frac[(widest + 1) % len(c_frac)]
    thickness = 1.0 - gaps[widest]
    return float(np.mod(slab_start + 0.5 * thickness, 1.0))


def _element_of(species: str) -> str:
    return re.sub(r"[^A-Za-z]", "", species)


#: Site moments (μB) below this count as non-magnetic (atomate2's ``auto_ispin`` threshold).
MAGMOM_THRESHOLD = 0.02


def is_spin_polarized(structure: Structure, magmom_table: dict[str, Any]) -> bool:
    """True if a site carries a magnetic moment or an element is in the config's MAGMOM table."""
    magmoms = structure.site_properties.get("magmom")
    if magmoms is not None and any(np.any(np.abs(np.asarray(m, dtype=float)) > MAGMOM_THRESHOLD) for m in magmoms):
        return True
    magnetic = {_element_of(key) for key in magmom_table}
    return any(el.symbol in magnetic for el in structure.composition.elements)


def dipole_tags(structure: Structure) -> dict[str, Any]:
    """Dipole correction along c (IDIPOL = 3), centred on the slab so the potential jump is in vacuum."""
    return {"LDIPOL": True, "IDIPOL": 3, "DIPOL": [0.5, 0.5, round(slab_center_fraction(structure), 6)]}


@dataclass
class AccurateSettingsMixin:
    """Fields and helpers shared by the generators of the accurate protocol (put first in the bases).

    Parameters
    ----------
    encut
        Plane-wave cutoff (eV), identical in every step.
    kspacing
        k-point spacing (Å⁻¹, 2π included), identical in every step.
    auto_ismear
        Off: each generator sets ISMEAR/SIGMA itself (atomate2's automatic choice needs a previous run).
    """

    encut: float = DEFAULT_ENCUT
    kspacing: float = DEFAULT_KSPACING
    auto_ismear: bool = False

    is_slab: ClassVar[bool] = False

    @property
    def kpoints_updates(self) -> Kpoints:
        """Γ-centred mesh at ``kspacing``; one k-point along c for slabs."""
        return gamma_kpoints(self.structure, self.kspacing, slab=self.is_slab)

    def common_incar(self) -> dict[str, Any]:
        """INCAR tags every step of the protocol shares."""
        spin = is_spin_polarized(self.structure, self._config_dict["INCAR"].get("MAGMOM", {}))
        tags: dict[str, Any] = {
            "ENCUT": self.encut,
            "PREC": "Accurate",
            "LASPH": True,
            "LREAL": False,
            "LAECHG": False,
            "LVTOT": None,  # a total (with XC) potential is never wanted: LVHAR writes the electrostatic one
            "ISPIN": 2 if spin else 1,
        }
        if self.is_slab:
            tags.update(dipole_tags(self.structure))
        return tags


@dataclass
class BulkRelaxSetGenerator(AccurateSettingsMixin, RelaxSetGenerator):
    """PBEsol relaxation of the bulk: ions, cell shape and volume (ISIF = 3)."""

    @property
    def incar_updates(self) -> dict[str, Any]:
        """atomate2's relax tags, the protocol's common tags and tight convergence."""
        return {
            **super().incar_updates,
            **self.common_incar(),
            "ISIF": 3,
            "EDIFF": 1e-6,
            "EDIFFG": -0.01,
            "ISMEAR": 0,
            "SIGMA": 0.05,
        }


@dataclass
class SlabRelaxSetGenerator(AccurateSettingsMixin, RelaxConstVolSetGenerator):
    """PBEsol relaxation of a slab at fixed cell (ISIF = 2) with the dipole correction along c.

    Atoms carrying a ``selective_dynamics`` site property (e.g. from
    :func:`bandflow.forcefields.fix_central_layers`) are written with their flags, so the central layers
    can be frozen at their bulk positions; by default every atom relaxes.
    """

    is_slab: ClassVar[bool] = True

    @property
    def incar_updates(self) -> dict[str, Any]:
        """atomate2's fixed-cell relax tags, the common tags and the dipole correction."""
        return {
            **super().incar_updates,
            **self.common_incar(),
            "ISIF": 2,
            "EDIFF": 1e-5,
            "EDIFFG": -0.02,
            "ISMEAR": 0,
            "SIGMA": 0.05,
            "NELMIN": 6,
        }


@dataclass
class BulkDielectricSetGenerator(AccurateSettingsMixin, StaticSetGenerator):
    """PBE density-functional perturbation theory for the electronic (ion-clamped) dielectric tensor ε∞.

    atomate2's dielectric set uses IBRION = 8, which adds the ionic response (Born charges and Γ phonons);
    only ε∞ is needed here, so the run is a plain LEPSILON static (NSW = 0, VASP's default IBRION = -1).
    PBE (not PBEsol) because ε∞ sets the exact exchange of a PBE0-type hybrid.
    """

    lepsilon: bool = True

    @property
    def incar_updates(self) -> dict[str, Any]:
        """LEPSILON static with PBE, without +U, tightly converged."""
        return {
            **super().incar_updates,
            **self.common_incar(),
            "GGA": "PE",
            "LDAU": False,
            "NSW": 0,
            "IBRION": None,
            "EDIFF": 1e-7,
            "LCHARG": False,
        }


@dataclass
class BulkHybridSetGenerator(AccurateSettingsMixin, HSEStaticSetGenerator):
    """Hybrid static of the bulk for its band edges, writing the electrostatic potential (LVHAR).

    Parameters
    ----------
    exact_exchange
        None: HSE06 (atomate2's tags). A number a: an unscreened PBE0-type hybrid with AEXX = a and the
        semilocal exchange scaled by 1 − a (the dielectric-dependent hybrid uses a = 1/ε∞).
    """

    exact_exchange: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.exact_exchange is not None and not 0.0 < self.exact_exchange <= 1.0:
            raise BandflowError(f"exact_exchange must be in (0, 1], got {self.exact_exchange}")

    @property
    def incar_updates(self) -> dict[str, Any]:
        """atomate2's HSE06 tags (or PBE0-type with AEXX), LVHAR and tight convergence."""
        tags = {**super().incar_updates, **self.common_incar(), "LVHAR": True, "EDIFF": 1e-6}
        if self.exact_exchange is not None:
            a = float(self.exact_exchange)
            tags.update(
                HFSCREEN=None,  # unscreened (PBE0-type)
                AEXX=a,
                ALDAX=1.0 - a,
                AGGAX=1.0 - a,
                ALDAC=1.0,
                AGGAC=1.0,
            )
        return tags


@dataclass
class SlabStaticSetGenerator(AccurateSettingsMixin, StaticSetGenerator):
    """PBEsol static of a slab writing the electrostatic potential (LVHAR) with the dipole correction."""

    is_slab: ClassVar[bool] = True

    @property
    def incar_updates(self) -> dict[str, Any]:
        """atomate2's static tags, the common tags, LVHAR and the dipole correction."""
        return {
            **super().incar_updates,
            **self.common_incar(),
            "LVHAR": True,
            "EDIFF": 1e-6,
            "ISMEAR": 0,
            "SIGMA": 0.05,
            "NELMIN": 6,
        }
