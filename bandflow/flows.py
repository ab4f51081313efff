"""Engine-agnostic flows: bulk band edges → per-surface relaxation → slab potential → alignment.

Every job gets a deterministic UUID built from what it computes (bulk or surface id, protocol, step and
the settings of that step, :class:`SettingsKeys`). The same campaign therefore always builds the same jobs,
so ``bandflow run`` can skip jobs whose outputs are already in the job store (resume after a crash or
SIGKILL), and ``bandflow submit`` can skip jobs already on the LaunchPad. A change to how the bulk is
computed re-runs the bulk and alignment jobs only: the slab steps keep their UUIDs and stored outputs.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobConfig, Maker, OnMissing, job
from pymatgen.core import Structure

from bandflow.bulk import BulkOxide, load_bulk
from bandflow.errors import BandflowError
from bandflow.protocols import Protocol
from bandflow.spec import CampaignSpec
from bandflow.surfaces import SurfaceEntry, enumerate_surfaces

#: Namespace of bandflow's deterministic job UUIDs.
_UUID_NAMESPACE = uuidlib.UUID("5d0c2f0e-6a59-4e57-9d3b-6a2b1f0b7e11")

STEPS = ("bulk_edges", "slab_relax", "slab_potential", "alignment")


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _without_versions(obj: Any) -> Any:
    """``obj`` (a maker's ``as_dict``) without ``@version`` entries, so a release alone changes no key."""
    if isinstance(obj, dict):
        return {k: _without_versions(v) for k, v in obj.items() if k != "@version"}
    if isinstance(obj, list | tuple):
        return [_without_versions(v) for v in obj]
    return obj


def maker_settings(maker: Maker) -> Any:
    """Everything a maker computes with: its class and every field, defaults included, except the fields a
    maker names in ``KEYED_WHEN_SET`` while they are empty (fields added after results were stored, which
    must not change the keys of the results that do not use them)."""
    try:
        settings = _without_versions(maker.as_dict())
    except Exception:  # a user maker that cannot serialise itself: its class and its repr then
        return {"class": f"{type(maker).__module__}:{type(maker).__qualname__}", "repr": repr(maker)}
    for name in getattr(type(maker), "KEYED_WHEN_SET", ()):
        if not getattr(maker, name, None):
            settings.pop(name, None)
    return settings


@dataclass(frozen=True)
class SettingsKeys:
    """Fingerprints of the settings each step depends on (part of every job's deterministic UUID).

    ``slab``       protocol + the spec's engine settings other than ``bulk`` (relaxation, slab potential);
    ``bulk``       protocol + the bulk maker's full configuration, so a new default (for example a larger Γ
                   cell) recomputes the bulk band edges;
    ``alignment``  both, since an alignment combines a bulk and a slab.
    """

    slab: str
    bulk: str
    alignment: str

    @classmethod
    def of(cls, protocol: Protocol, engine_settings: dict, bulk_maker: Maker) -> SettingsKeys:
        """The keys of a campaign run with ``protocol``, ``engine_settings`` and ``bulk_maker``."""
        slab_engine = {k: v for k, v in engine_settings.items() if k != "bulk"}
        # same recipe as before the per-step keys, so slab jobs already computed keep their UUIDs
        slab = _fingerprint({"protocol": protocol.model_dump(), "engine": slab_engine})
        bulk = _fingerprint({"protocol": protocol.model_dump(), "bulk_maker": maker_settings(bulk_maker)})
        return cls(slab=slab, bulk=bulk, alignment=_fingerprint({"slab": slab, "bulk": bulk}))

    def revised(self, revisions: dict[str, str]) -> SettingsKeys:
        """These keys for a bulk whose elements carry ``revisions`` (element → engine settings set apart
        from the family rule); the same keys when there are none."""
        if not revisions:
            return self
        return SettingsKeys(*(_fingerprint({"key": key, "elements": revisions})
                              for key in (self.slab, self.bulk, self.alignment)))


def structure_key(structure: Structure) -> str:
    """A short, machine-independent fingerprint of a structure (species, rounded lattice and positions)."""
    rows = [
        [site.species_string, *(round(float(x), 5) % 1.0 for x in site.frac_coords)]
        for site in structure
    ]
    lattice = [round(float(x), 5) for x in structure.lattice.matrix.ravel()]
    return _fingerprint({"lattice": lattice, "sites": sorted(rows, key=str)})


def deterministic_uuid(*parts: str) -> str:
    """A UUID that depends only on ``parts``."""
    return str(uuidlib.uuid5(_UUID_NAMESPACE, "|".join(parts)))


def _tag(j: Job | Flow, step: str, key: str, settings_key: str, extra: dict | None = None) -> None:
    """Give ``j`` its deterministic UUID and bandflow metadata (used by queries and resume)."""
    uuid = deterministic_uuid(step, key, settings_key)
    if isinstance(j, Job):
        j.set_uuid(uuid)
        j.name = f"{step} {key[:40]}"
    metadata = {"bandflow_step": step, "bandflow_key": key, "bandflow_settings": settings_key, **(extra or {})}
    j.update_metadata(metadata)


# --------------------------------------------------------------------------------------------- engines
def _construct(factory: Any, step: str, settings: dict) -> Any:
    """``factory(**settings)``, with a misspelled or unknown setting reported as one error line."""
    try:
        return factory(**settings)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        name = str(exc).rsplit("argument", 1)[-1].strip(" '\"")
        raise BandflowError(f"engine settings: {step}: {getattr(factory, '__name__', factory)} has no setting "
                            f"{name!r}") from None


def _user_maker(section: dict, step: str) -> Maker | None:
    """A maker named in a spec's engine settings as ``maker: "package.module:ClassName"``, if any.

    This lets a campaign swap in its own Maker for a step (other codes, site-specific settings); the
    remaining keys of the section are passed to the maker's constructor.
    """
    path = section.get("maker")
    if not path:
        return None
    module_name, _, class_name = str(path).partition(":")
    try:
        import importlib

        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise BandflowError(f"engine settings: cannot import maker '{path}' (use 'package.module:Class')") from None
    return _construct(cls, step, {k: v for k, v in section.items() if k != "maker"})


def bulk_edges_maker(protocol: Protocol, engine_settings: dict) -> Maker:
    """The maker of the bulk hybrid band-edge step for this protocol's engine."""
    if maker := _user_maker(engine_settings.get("bulk", {}), "bulk"):
        return maker
    if protocol.engine == "cp2k":
        from bandflow.cp2k import Cp2kBulkHybridMaker

        return _construct(Cp2kBulkHybridMaker, "bulk", engine_settings.get("bulk", {}))
    from bandflow.vasp import VaspBulkEdgesMaker

    settings = {"functional": protocol.bulk_functional, **engine_settings.get("bulk", {})}
    return _construct(VaspBulkEdgesMaker, "bulk", settings)


def slab_relax_maker(protocol: Protocol, engine_settings: dict) -> Maker | None:
    """The maker of the slab relaxation step (CHGNet for ``fast``, DFT for ``accurate``)."""
    if protocol.slab_relax == "none":
        return None
    if maker := _user_maker(engine_settings.get("relax", {}), "relax"):
        return maker
    if protocol.slab_relax == "chgnet":
        from bandflow.forcefields import chgnet_relax_maker

        return _construct(chgnet_relax_maker, "relax", engine_settings.get("relax", {}))
    if protocol.engine == "cp2k":
        from bandflow.cp2k import Cp2kSlabRelaxMaker

        return _construct(Cp2kSlabRelaxMaker, "relax", engine_settings.get("relax", {}))
    from bandflow.vasp import VaspSlabRelaxMaker

    return _construct(VaspSlabRelaxMaker, "relax", engine_settings.get("relax", {}))


def slab_potential_maker(protocol: Protocol, engine_settings: dict) -> Maker:
    """The maker of the slab calculation that writes and analyses the electrostatic potential."""
    if maker := _user_maker(engine_settings.get("slab", {}), "slab"):
        return maker
    if protocol.engine == "cp2k":
        from bandflow.cp2k import Cp2kSlabStaticMaker

        return _construct(Cp2kSlabStaticMaker, "slab", engine_settings.get("slab", {}))
    from bandflow.vasp import VaspSlabStaticMaker

    return _construct(VaspSlabStaticMaker, "slab", engine_settings.get("slab", {}))


def relaxed_structure(relax_output: Any) -> Structure:
    """The relaxed structure from a relaxation job's output (atomate2 task document, dict or Structure)."""
    obj = relax_output
    for attr in ("output", "structure"):
        if isinstance(obj, Structure):
            break
        obj = obj.get(attr, obj) if isinstance(obj, dict) else getattr(obj, attr, obj)
    if isinstance(obj, dict):
        obj = Structure.from_dict(obj)
    if not isinstance(obj, Structure):
        raise BandflowError("relaxation output holds no structure")
    return obj


@job
def extract_structure(relax_output: Any) -> Structure:
    """Pull the relaxed slab out of a relaxation output, so the potential step reads a plain Structure."""
    return relaxed_structure(relax_output)


# ----------------------------------------------------------------------------------------- alignment
@job(config=JobConfig(on_missing_references=OnMissing.NONE))
def align_surface(
    surface: dict,
    protocol: dict,
    bulk_edges: Any,
    relaxed: Structure | dict | None,
    potential_output: Any,
) -> dict:
    """Combine bulk edges and slab potential into IP/EA; write one surface document to the store.

    Runs even when an upstream job failed (its inputs are then None) and records a failed document, so
    one failing surface never hides the others.
    """
    from bandflow.alignment import surface_document
    from bandflow.store import BandflowStore

    doc = surface_document(surface, protocol, bulk_edges, relaxed, potential_output)
    BandflowStore.from_settings().upsert_surface(doc)
    return doc.model_dump(mode="json")


# ---------------------------------------------------------------------------------------- flow build
@dataclass
class BulkPlan:
    """The bulk of a campaign with the surfaces that will be computed and those skipped."""

    bulk: BulkOxide
    surfaces: list[SurfaceEntry]
    polar: list[SurfaceEntry]
    bulk_settings: dict[str, Any] = field(default_factory=dict)  # the spec's per-bulk band-edge settings


def plan_campaign(spec: CampaignSpec) -> list[BulkPlan]:
    """Load every bulk and enumerate its nonpolar surfaces; fail early on anything unusable."""
    protocol = spec.protocol_settings
    plans = []
    for selection in spec.bulks:
        bulk = load_bulk(selection.bulk)
        entries = enumerate_surfaces(
            bulk,
            max_index=selection.max_index or spec.max_index,
            min_thickness=protocol.min_thickness,
            vacuum=protocol.vacuum,
        )
        nonpolar = [e for e in entries if e.nonpolar]
        if spec.max_atoms:
            nonpolar = [e for e in nonpolar if e.n_atoms <= spec.max_atoms]
        # smallest slabs first (stable: enumeration order among equals), so that a campaign stopped at any
        # point has finished the most surfaces it could: the runner goes surface by surface in this order
        nonpolar.sort(key=lambda e: e.n_atoms)
        if not nonpolar:
            raise BandflowError(f"{bulk.name}: no nonpolar surface up to Miller index "
                                f"{selection.max_index or spec.max_index} (within the size limit)")
        plans.append(BulkPlan(bulk=bulk, surfaces=nonpolar, polar=[e for e in entries if not e.nonpolar],
                              bulk_settings=dict(selection.bulk_settings)))
    return plans


def surface_summary(entry: SurfaceEntry, bulk: BulkOxide) -> dict:
    """What the alignment job needs to know about a surface (JSON-serialisable)."""
    symbol, number = bulk.spacegroup()
    return {
        "surface_id": entry.id,
        "bulk_name": bulk.name,
        "formula": bulk.formula,
        "chemsys": bulk.structure.composition.chemical_system,
        "n_cation_species": bulk.n_cation_species,
        "spacegroup_symbol": symbol,
        "spacegroup_number": number,
        "miller_index": list(entry.miller_index),
        "termination": entry.termination,
        "structure_unrelaxed": entry.slab.as_dict(),
    }


def element_revisions(protocol: Protocol, bulk: BulkOxide) -> dict[str, str]:
    """Engine settings of ``bulk``'s elements set apart from the engine's family rule (CP2K: Li, Al)."""
    if protocol.engine != "cp2k":
        return {}
    from bandflow.cp2k.sets import element_revisions as cp2k_revisions

    return cp2k_revisions(el.symbol for el in bulk.structure.composition.elements)


def plan_engine_settings(engine_settings: dict, plan: BulkPlan) -> dict:
    """The spec's engine settings with ``plan``'s own band-edge settings over its ``bulk`` section."""
    return {**engine_settings, "bulk": {**engine_settings.get("bulk", {}), **plan.bulk_settings}}


def plan_bulk_maker(protocol: Protocol, engine_settings: dict, plan: BulkPlan) -> Maker:
    """The band-edge maker of ``plan`` from ``engine_settings``, an error naming the bulk when it fails."""
    try:
        return bulk_edges_maker(protocol, engine_settings)
    except BandflowError as exc:
        raise BandflowError(f"{plan.bulk.name}: bulk_settings: {exc}") from None


def check_makers(spec: CampaignSpec, plans: list[BulkPlan]) -> None:
    """Build every step's maker once, so a misspelled engine setting fails before anything is written."""
    protocol = spec.protocol_settings
    bulk_edges_maker(protocol, spec.engine_settings)
    slab_relax_maker(protocol, spec.engine_settings)
    slab_potential_maker(protocol, spec.engine_settings)
    for plan in plans:
        if plan.bulk_settings:
            plan_bulk_maker(protocol, plan_engine_settings(spec.engine_settings, plan), plan)


@contextmanager
def unconnected_jobs_allowed() -> Iterator[None]:
    """Silence jobflow's warning that some jobs of a flow are not connected, wherever it walks a campaign's
    graph: a campaign's bulks are separate graphs by design, and bandflow orders them itself
    (:func:`bandflow.runner.run_order`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some jobs are not connected", category=UserWarning)
        yield


def flow_jobs(flow: Flow) -> list[tuple[Job, list[str]]]:
    """``flow.iterflow()`` as a list (each job with its parents' uuids), under
    :func:`unconnected_jobs_allowed`."""
    with unconnected_jobs_allowed():
        return list(flow.iterflow())


def campaign_flow(spec: CampaignSpec, plans: list[BulkPlan] | None = None) -> Flow:
    """The whole campaign as one jobflow Flow (what ``submit`` sends to FireWorks)."""
    plans = plans if plans is not None else plan_campaign(spec)
    protocol = spec.protocol_settings
    bulk_maker = bulk_edges_maker(protocol, spec.engine_settings)
    keys = SettingsKeys.of(protocol, spec.engine_settings, bulk_maker)
    jobs: list[Job] = []
    for plan in plans:
        bulk_key = f"{plan.bulk.formula}-{structure_key(plan.bulk.structure)}"
        maker, plan_keys = bulk_maker, keys
        if plan.bulk_settings:  # its own band-edge settings: own bulk and alignment keys, the same slab key
            settings = plan_engine_settings(spec.engine_settings, plan)
            maker = plan_bulk_maker(protocol, settings, plan)
            plan_keys = SettingsKeys.of(protocol, settings, maker)
        bulk_keys = plan_keys.revised(element_revisions(protocol, plan.bulk))
        bulk_job = maker.make(plan.bulk.structure)
        _tag(bulk_job, "bulk_edges", bulk_key, bulk_keys.bulk, {"bulk_name": plan.bulk.name})
        jobs.append(bulk_job)
        for entry in plan.surfaces:
            jobs.extend(surface_jobs(entry, plan.bulk, protocol, spec.engine_settings, bulk_keys, bulk_job.output))
    return Flow(jobs, name=f"bandflow {spec.name} ({protocol.name}/{protocol.engine})")


def surface_jobs(
    entry: SurfaceEntry,
    bulk: BulkOxide,
    protocol: Protocol,
    engine_settings: dict,
    keys: SettingsKeys,
    bulk_edges: Any,
) -> list[Job]:
    """relax → (extract structure) → potential → alignment for one surface."""
    # n_atoms lets a FireWorks worker size a slab step against its allocation's time left (queue.fitting_fworker)
    meta = {"surface_id": entry.id, "bulk_name": bulk.name, "protocol": protocol.name, "n_atoms": entry.n_atoms}
    jobs: list[Job] = []
    relaxer = slab_relax_maker(protocol, engine_settings)
    relaxed: Any = entry.slab
    if relaxer is not None:
        from bandflow.forcefields import fix_central_layers

        relax_job = relaxer.make(fix_central_layers(entry.slab))
        _tag(relax_job, "slab_relax", entry.model_key, keys.slab, meta)
        structure_job = extract_structure(relax_job.output)
        _tag(structure_job, "slab_structure", entry.model_key, keys.slab, meta)
        jobs += [relax_job, structure_job]
        relaxed = structure_job.output
    potential_maker = slab_potential_maker(protocol, engine_settings)
    potential_job = potential_maker.make(relaxed)
    _tag(potential_job, "slab_potential", entry.model_key, keys.slab, meta)
    summary = surface_summary(entry, bulk)
    if getattr(potential_maker, "period", None) is not None:  # the user's period is kept in the alignment
        summary["slab_period_given"] = True
    summary["job_uuids"] = {
        "bulk_edges": getattr(bulk_edges, "uuid", None), "slab_potential": potential_job.uuid,
        **({"slab_relax": jobs[0].uuid} if jobs else {}),
    }
    summary["job_uuids"] = {k: v for k, v in summary["job_uuids"].items() if v}
    align_job = align_surface(summary, protocol.model_dump(), bulk_edges, relaxed, potential_job.output)
    _tag(align_job, "alignment", entry.model_key, keys.alignment, meta)
    return [*jobs, potential_job, align_job]
