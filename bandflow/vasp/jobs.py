"""VASP makers of the ``accurate`` protocol, with the roles of the CP2K makers.

The VASP runs themselves are atomate2's makers (``RelaxMaker``, ``StaticMaker``, ``HSEStaticMaker``,
``DielectricMaker``: custodian, task documents, file handling) driven by the generators of
:mod:`bandflow.vasp.sets`. bandflow adds small analysis jobs that read the run directory (vasprun.xml,
LOCPOT) and return what the alignment needs:

* :class:`VaspBulkEdgesMaker` → ``{"vbm", "cbm", "gap", "bulk_average_potential", "functional",
  "code_version", ...}`` (eV) from an HSE06 run, or from a DFPT run (ε∞) followed by the
  dielectric-dependent hybrid (AEXX = 1/ε∞);
* :class:`VaspSlabStaticMaker` → ``{"potential": <analysis dict with profiles>, "energy", ...}``;
* :class:`VaspSlabRelaxMaker`, :class:`VaspBulkRelaxMaker` → the atomate2 relaxation job itself (its task
  document's ``output.structure`` is the relaxed structure).

The bulk-edges and slab makers return one job that replaces itself by the VASP run and its analysis, so a
caller can give it a fixed UUID and refer to its output before anything has run. The analysis jobs read
the VASP run directory, so they must run where that directory is visible (same file system), as
atomate2's own follow-up jobs do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atomate2.utils.path import strip_hostname
from atomate2.vasp.jobs.core import DielectricMaker, HSEStaticMaker, RelaxMaker, StaticMaker
from jobflow import Flow, Maker, Response, job

from bandflow.errors import BandflowError
from bandflow.settings import get_settings
from bandflow.vasp.parsing import read_bulk_edges, read_epsilon_infinity, read_slab_potential
from bandflow.vasp.sets import (
    DEFAULT_ENCUT,
    DEFAULT_KSPACING,
    BulkDielectricSetGenerator,
    BulkHybridSetGenerator,
    BulkRelaxSetGenerator,
    SlabRelaxSetGenerator,
    SlabStaticSetGenerator,
)

if TYPE_CHECKING:
    from pathlib import Path

    from jobflow import Job
    from pymatgen.core import Structure

#: Bulk hybrid choices: HSE06, or the dielectric-dependent PBE0-type hybrid (AEXX = 1/ε∞).
BULK_FUNCTIONALS = {"hse06": "HSE06", "ddh": "DDH", "dielectric-dependent": "DDH"}


@dataclass
class _VaspStepMaker(Maker):
    """Settings every VASP step shares; keep ``encut`` and ``kspacing`` equal across bulk and slab.

    Parameters
    ----------
    encut
        Plane-wave cutoff (eV).
    kspacing
        k-point spacing (Å⁻¹, 2π included); slabs get one k-point along c.
    incar
        Extra INCAR tags (atomate2 ``user_incar_settings``), applied last; ``None`` values remove a tag.
    vasp_cmd
        VASP command; default the ``vasp_command`` bandflow setting, read when the job is made.
    """

    name: str = "vasp step"
    encut: float = DEFAULT_ENCUT
    kspacing: float = DEFAULT_KSPACING
    incar: dict[str, Any] = field(default_factory=dict)
    vasp_cmd: str | None = None

    def __post_init__(self) -> None:
        if not self.encut > 0:
            raise BandflowError(f"encut must be a positive number of eV, got {self.encut}")
        if not self.kspacing > 0:
            raise BandflowError(f"kspacing must be a positive number of 1/Å, got {self.kspacing}")
        if not isinstance(self.incar, dict):
            raise BandflowError(f"incar must be a mapping of INCAR tags, got {type(self.incar).__name__}")

    def _generator_kwargs(self) -> dict[str, Any]:
        return {"encut": self.encut, "kspacing": self.kspacing, "user_incar_settings": dict(self.incar)}

    def _run_vasp_kwargs(self) -> dict[str, Any]:
        return {"vasp_cmd": self.vasp_cmd or get_settings().vasp_command}


@dataclass
class VaspBulkRelaxMaker(_VaspStepMaker):
    """PBEsol relaxation of a bulk cell (ions, shape and volume: ISIF = 3)."""

    name: str = "vasp bulk relax"

    def relax_maker(self) -> RelaxMaker:
        """The atomate2 maker that runs the relaxation."""
        return RelaxMaker(
            name=f"{self.name} (PBEsol)",
            input_set_generator=BulkRelaxSetGenerator(**self._generator_kwargs()),
            run_vasp_kwargs=self._run_vasp_kwargs(),
        )

    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Job:
        """The atomate2 relaxation job; its output task document holds the relaxed structure."""
        return self.relax_maker().make(structure, prev_dir=prev_dir)


@dataclass
class VaspSlabRelaxMaker(_VaspStepMaker):
    """PBEsol relaxation of a slab at fixed cell (ISIF = 2) with the dipole correction along c.

    Every atom relaxes unless the structure carries ``selective_dynamics`` flags (e.g. from
    :func:`bandflow.forcefields.fix_central_layers`, which freezes the central layers); they go to the
    POSCAR as they are.
    """

    name: str = "vasp slab relax"

    def relax_maker(self) -> RelaxMaker:
        """The atomate2 maker that runs the relaxation."""
        return RelaxMaker(
            name=f"{self.name} (PBEsol)",
            input_set_generator=SlabRelaxSetGenerator(**self._generator_kwargs()),
            run_vasp_kwargs=self._run_vasp_kwargs(),
        )

    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Job:
        """The atomate2 relaxation job; its output task document holds the relaxed slab."""
        return self.relax_maker().make(structure, prev_dir=prev_dir)


@dataclass
class VaspBulkEdgesMaker(_VaspStepMaker):
    """Bulk band edges from a hybrid static run, relative to the mean of its LOCPOT.

    Parameters
    ----------
    functional
        ``"HSE06"`` (default), or ``"DDH"``: a DFPT run gives ε∞, then a PBE0-type hybrid with
        AEXX = 1/ε∞ runs.
    """

    name: str = "vasp bulk edges"
    functional: str = "HSE06"

    def __post_init__(self) -> None:
        super().__post_init__()
        key = str(self.functional).strip().lower()
        if key not in BULK_FUNCTIONALS:
            raise BandflowError(f"VASP bulk functional '{self.functional}' is not supported (use HSE06 or DDH)")
        self.functional = BULK_FUNCTIONALS[key]

    def hybrid_maker(self, exact_exchange: float | None = None) -> HSEStaticMaker:
        """The atomate2 maker of the hybrid run: HSE06, or PBE0-type with AEXX = ``exact_exchange``."""
        label = "HSE06" if exact_exchange is None else f"DDH, AEXX={exact_exchange:.4f}"
        return HSEStaticMaker(
            name=f"{self.name} hybrid ({label})",
            input_set_generator=BulkHybridSetGenerator(exact_exchange=exact_exchange, **self._generator_kwargs()),
            run_vasp_kwargs=self._run_vasp_kwargs(),
        )

    def dielectric_maker(self) -> DielectricMaker:
        """The atomate2 maker of the DFPT run that gives ε∞."""
        return DielectricMaker(
            name=f"{self.name} dielectric (DFPT)",
            input_set_generator=BulkDielectricSetGenerator(**self._generator_kwargs()),
            run_vasp_kwargs=self._run_vasp_kwargs(),
        )

    @job
    def make(self, structure: Structure) -> Response:
        """Replace this job by [hybrid, edges] or, for DDH, by [DFPT, (hybrid, edges)]."""
        if self.functional == "DDH":
            dielectric = self.dielectric_maker().make(structure)
            edges = dielectric_dependent_edges(structure, dielectric.output.dir_name, self)
            return Response(replace=Flow([dielectric, edges], output=edges.output, name=self.name))
        return Response(replace=hybrid_edges_flow(self.hybrid_maker(), structure))


def hybrid_edges_flow(hybrid_maker: HSEStaticMaker, structure: Structure,
                      epsilon_infinity: float | None = None) -> Flow:
    """The hybrid run followed by the job that reads its band edges and LOCPOT mean."""
    hybrid = hybrid_maker.make(structure)
    edges = bulk_band_edges(hybrid.output.dir_name, epsilon_infinity=epsilon_infinity)
    return Flow([hybrid, edges], output=edges.output, name=hybrid_maker.name)


@job
def dielectric_dependent_edges(structure: Structure, dielectric_dir: str, maker: VaspBulkEdgesMaker) -> Response:
    """Read ε∞ of the DFPT run and replace this job by the PBE0-type hybrid with AEXX = 1/ε∞ + its edges."""
    eps = read_epsilon_infinity(strip_hostname(dielectric_dir))
    flow = hybrid_edges_flow(maker.hybrid_maker(exact_exchange=1.0 / eps), structure, epsilon_infinity=eps)
    return Response(replace=flow)


@job
def bulk_band_edges(dir_name: str, epsilon_infinity: float | None = None) -> dict[str, Any]:
    """VBM, CBM, gap, the LOCPOT mean and provenance of a finished bulk hybrid run (eV)."""
    return read_bulk_edges(strip_hostname(dir_name), epsilon_infinity=epsilon_infinity)


@dataclass
class VaspSlabStaticMaker(_VaspStepMaker):
    """PBEsol static of a slab (LVHAR, dipole correction) and the analysis of its electrostatic potential.

    Parameters
    ----------
    period
        Interlayer spacing (Å) for the macroscopic average; None detects it from the atoms.
    """

    name: str = "vasp slab potential"
    period: float | None = None

    def static_maker(self) -> StaticMaker:
        """The atomate2 maker of the slab static run."""
        return StaticMaker(
            name=f"{self.name} static (PBEsol)",
            input_set_generator=SlabStaticSetGenerator(**self._generator_kwargs()),
            run_vasp_kwargs=self._run_vasp_kwargs(),
        )

    @job
    def make(self, structure: Structure) -> Response:
        """Replace this job by [static, potential analysis]."""
        static = self.static_maker().make(structure)
        potential = slab_potential(static.output.dir_name, period=self.period)
        return Response(replace=Flow([static, potential], output=potential.output, name=self.name))


@job
def slab_potential(dir_name: str, period: float | None = None) -> dict[str, Any]:
    """Potential analysis (vacuum levels, slab-centre average, profiles) and energy of a slab run."""
    return read_slab_potential(strip_hostname(dir_name), period=period)
