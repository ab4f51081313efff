"""Outputs of the CP2K makers (pydantic; energies in eV, times in s).

Field names follow what :func:`bandflow.alignment.surface_document` reads: ``vbm``, ``cbm``,
``bulk_average_potential`` and ``code_version`` of the bulk step; ``potential`` (the analysis dict of
:meth:`bandflow.potential.PotentialAnalysis.to_dict` with profiles) and ``code_version`` of the slab step.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Cp2kOutputModel(BaseModel):
    """Shared configuration: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class KPointCorrection(Cp2kOutputModel):
    """PBE band-edge shifts from Γ-only to a k-point mesh in the same supercell (added to the hybrid edges)."""

    vbm: float = Field(description="PBE VBM(k-mesh) − VBM(Γ) (eV).")
    cbm: float = Field(description="PBE CBM(k-mesh) − CBM(Γ) (eV).")
    kpoints: tuple[int, int, int] = Field(description="Γ-centred k-point mesh of the PBE reference run.")
    pbe_gamma_vbm: float
    pbe_gamma_cbm: float
    pbe_kmesh_vbm: float
    pbe_kmesh_cbm: float


class Cp2kBulkHybridOutput(Cp2kOutputModel):
    """Bulk band edges at the hybrid level, on the zero of the calculation (the mean electrostatic potential)."""

    vbm: float = Field(description="Valence band maximum: hybrid Γ value + PBE k-point correction (eV).")
    cbm: float = Field(description="Conduction band minimum: hybrid Γ value + PBE k-point correction (eV).")
    gap: float = Field(description="cbm − vbm (eV).")
    bulk_average_potential: float = Field(
        description="Cell mean of the hybrid run's V_HARTREE cube (eV); 0 up to grid round-off, as CP2K drops G=0."
    )
    vbm_gamma: float = Field(description="Hybrid VBM of the Γ-only supercell, uncorrected (eV).")
    cbm_gamma: float = Field(description="Hybrid CBM of the Γ-only supercell, uncorrected (eV).")
    k_correction: KPointCorrection
    functional: str = "HSE06"
    formula: str
    n_atoms: int = Field(description="Atoms in the Γ-only supercell of the hybrid run.")
    gamma_cell_width: float | None = Field(
        None, description="Width of that supercell: the shortest distance between opposite faces (Å).")
    gamma_sampling_error: float | None = Field(
        None, description="PBE total energy at Γ minus that with the k-mesh, per atom (eV/atom): how far the "
        "Γ-only density of this supercell is from converged (CaO: 8 atoms 2.0 (SrO), 16 atoms 0.18, 54 atoms 0.018).")
    cells_tried: list[dict[str, Any]] = Field(
        default_factory=list, description="Γ cells whose PBE runs were made, in order: n_atoms, width (Å), "
        "sampling_error (eV/atom); more than one when the cell was grown (``max_sampling_error``).")
    supercell_lattice: list[list[float]] = Field(description="Lattice vectors of that supercell (Å, rows).")
    energy: float = Field(description="Total energy of the hybrid run (eV).")
    code: str = "cp2k"
    code_version: str | None = None
    wall_time: dict[str, float] = Field(
        default_factory=dict, description="Seconds per run (a reused run: what it cost when it ran), `total` (this "
        "attempt's wall clock) and `reused` (the runs restored from an earlier attempt, not in `total`).")
    settings: dict[str, Any] = Field(default_factory=dict, description="Basis, cutoffs and screening used.")
    dir_name: str | None = None


class Cp2kSlabStaticOutput(Cp2kOutputModel):
    """Electrostatic-potential analysis and energy of a PBE slab run."""

    potential: dict[str, Any] = Field(description="PotentialAnalysis.to_dict(profile=True) of the V_HARTREE cube.")
    energy: float = Field(description="Total energy of the slab (eV).")
    vbm: float | None = Field(None, description="Highest occupied slab eigenvalue over the k-points (eV).")
    cbm: float | None = Field(None, description="Lowest empty slab eigenvalue over the k-points (eV).")
    functional: str = "PBE"
    kpoints: tuple[int, int, int]
    n_atoms: int
    formula: str
    code: str = "cp2k"
    code_version: str | None = None
    wall_time: float | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    dir_name: str | None = None
    v_hartree_cube: dict[str, Any] | None = Field(
        None, description="The potential grid (eV; 'data', 'lattice' Å, 'structure'), only when asked for; "
        "jobflow puts it in the 'data' store."
    )


class Cp2kSlabRelaxOutput(Cp2kOutputModel):
    """A slab relaxed by CP2K GEO_OPT (fixed cell)."""

    structure: dict[str, Any] = Field(description="Relaxed slab (Structure.as_dict()).")
    energy: float = Field(description="Total energy of the last geometry (eV).")
    n_steps: int = Field(description="Geometry steps taken.")
    fixed_atoms: list[int] = Field(default_factory=list, description="1-based indices of the frozen atoms.")
    functional: str = "PBE"
    kpoints: tuple[int, int, int]
    code: str = "cp2k"
    code_version: str | None = None
    wall_time: float | None = None
    dir_name: str | None = None
