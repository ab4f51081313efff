"""Run a campaign on this machine, job by job, resuming from the job store.

jobflow's ``run_locally`` cannot resume a flow (re-making a flow gives new UUIDs, jobflow#873). bandflow's
jobs have deterministic UUIDs (see :mod:`bandflow.flows`), so this runner walks the flow in dependency
order, skips every job whose output is already stored, and hands each remaining job to ``run_locally``
(with ``allow_external_references`` so that it reads its parents' outputs from the store). A run killed at
any point and started again therefore recomputes only the job that was interrupted.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from jobflow import Flow, Job, run_locally
from tqdm.auto import tqdm

from bandflow.activity import (
    ActiveJob,
    active_jobs,
    clear_active,
    drop_stopped,
    duration_text,
    mark_active,
    record_stopped,
    stopped_seconds,
)
from bandflow.alignment import run_seconds
from bandflow.dataset import recorded_step_seconds
from bandflow.errors import BandflowError
from bandflow.flows import BulkPlan, campaign_flow, flow_jobs, plan_campaign
from bandflow.schemas import SurfaceDoc
from bandflow.spec import CampaignSpec
from bandflow.store import BandflowStore, dangling_jobs
from bandflow.timing import WALLTIME_MARGIN, JobDurations, SizeScaling, bulk_scalings, fit_size_scaling

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a local run did."""

    total: int = 0
    skipped: int = 0
    ran: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # job name -> reason
    seconds: float = 0.0
    #: jobs not started because they were not expected to finish within the walltime (left for a later run)
    deferred: int = 0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def _is_reference(output: object) -> bool:
    return isinstance(output, dict) and output.get("@class") == "OutputReference"


def completed_uuids(store: BandflowStore, uuids: list[str]) -> set[str]:
    """UUIDs among ``uuids`` whose output is in the job store.

    A failed alignment does not count, and neither does a job that replaced itself with other jobs
    (atomate2's VASP makers do) unless the job its output points to finished too.
    """
    outputs: dict[str, object] = {}
    pending = list(uuids)
    while pending:
        found = store.job_store.query({"uuid": {"$in": pending}}, properties=["uuid", "output"])
        new = {doc["uuid"]: doc.get("output") for doc in found}
        outputs.update(new)
        pending = [o["uuid"] for o in new.values() if _is_reference(o) and o["uuid"] not in outputs]

    def done(uuid: str, depth: int = 0) -> bool:
        if uuid not in outputs or depth > 20:
            return False
        output = outputs[uuid]
        if _is_reference(output):
            return done(output["uuid"], depth + 1)
        is_surface_doc = isinstance(output, dict) and "surface_id" in output
        return not is_surface_doc or output.get("state") == "successful"

    return {uuid for uuid in uuids if done(uuid)}


def dependants_of(ordered: list[tuple[Job, list[str]]]) -> dict[str, list[str]]:
    """For each job uuid of a flow (``Flow.iterflow`` order), the uuids of the jobs that read its output."""
    dependants: dict[str, list[str]] = {}
    for job, parents in ordered:
        for parent in parents:
            dependants.setdefault(parent, []).append(job.uuid)
    return dependants


def expected_job_uuids(ordered: list[tuple[Job, list[str]]]) -> dict[str, dict[str, str]]:
    """For each surface of a flow, the ``slab_potential`` and ``bulk_edges`` job uuids its document must name."""
    by_uuid = {job.uuid: job for job, _ in ordered}
    wanted: dict[str, dict[str, str]] = {}
    for job, parents in ordered:
        surface_id = job.metadata.get("surface_id")
        if surface_id is None:
            continue
        if job.metadata.get("bandflow_step") == "slab_potential":
            wanted.setdefault(surface_id, {})["slab_potential"] = job.uuid
        if job.metadata.get("bandflow_step") == "alignment":
            bulk = [p for p in parents if by_uuid[p].metadata.get("bandflow_step") == "bulk_edges"]
            if bulk:
                wanted.setdefault(surface_id, {})["bulk_edges"] = bulk[0]
    return wanted


def is_current(doc: SurfaceDoc | dict, wanted: dict[str, dict[str, str]]) -> bool:
    """Whether a stored surface document was computed by the flow ``wanted`` came from (same settings)."""
    if isinstance(doc, dict):
        surface_id, job_uuids = doc["surface_id"], doc.get("job_uuids") or {}
    else:
        surface_id, job_uuids = doc.surface_id, doc.job_uuids or {}
    expected = wanted.get(surface_id)
    return bool(expected) and all(job_uuids.get(k) == v for k, v in expected.items())


def stored_surface_jobs(store: BandflowStore, ordered: list[tuple[Job, list[str]]]) -> set[str]:
    """UUIDs of jobs made unnecessary by successful surface documents already in the store.

    A surface counts when its stored document was computed by this very flow (its ``slab_potential`` and
    ``bulk_edges`` job uuids, deterministic in the structures and the settings, match): for example a
    reference dataset imported with ``bandflow import`` on a fresh machine whose job store is empty. Its
    relax, potential and alignment jobs are then skipped, and so is a bulk job whose dependants are all
    skipped. A document from an older bulk method does not count: its surface is aligned again.
    """
    wanted = expected_job_uuids(ordered)
    if not wanted:
        return set()
    stored = {
        doc["surface_id"]
        for doc in store.surfaces.query(
            {"surface_id": {"$in": sorted(wanted)}, "state": "successful"},
            properties=["surface_id", "job_uuids"],
        )
        if is_current(doc, wanted)
    }
    skip = {job.uuid for job, _ in ordered if job.metadata.get("surface_id") in stored}
    dependants = dependants_of(ordered)
    for job, _ in ordered:
        children = dependants.get(job.uuid, [])
        if children and "surface_id" not in job.metadata and all(c in skip for c in children):
            skip.add(job.uuid)
    return skip


def restore_slab_outputs(store: BandflowStore, ordered: list[tuple[Job, list[str]]], done: set[str]) -> set[str]:
    """Write back into the job store the slab-step outputs that stored surface documents already hold.

    A surface whose successful document was computed by this flow's slab steps (its ``slab_potential``
    uuid matches) but from another bulk method, and whose slab outputs are not in the job store (an
    imported dataset, a new machine), would otherwise be relaxed and computed again just to be re-aligned.
    Its relaxed structure and potential analysis (vacuum levels, slab-centre average, profile when kept)
    are taken from the document instead, marked ``restored_from`` in the job metadata. Returns the uuids
    now done: the structure and potential jobs, and the relaxation whose only use was the structure.
    """
    steps = surface_steps(ordered)
    candidates = {
        surface_id: jobs for surface_id, jobs in steps.items()
        if "slab_potential" in jobs and jobs["slab_potential"].uuid not in done
        and ("slab_structure" not in jobs or jobs["slab_structure"].uuid not in done)
    }
    if not candidates:
        return set()
    restored: set[str] = set()
    for doc in store.surfaces.query({"surface_id": {"$in": sorted(candidates)}, "state": "successful"}):
        surface_id, jobs = doc["surface_id"], candidates[doc["surface_id"]]
        if (doc.get("job_uuids") or {}).get("slab_potential") != jobs["slab_potential"].uuid:
            continue  # another slab method: nothing to reuse
        fields = ("vacuum_level_top", "vacuum_level_bottom", "slab_center_average")
        if not doc.get("structure_relaxed") or any(doc.get(f) is None for f in fields):
            continue
        extra = doc.get("extra") or {}
        potential = {f: doc[f] for f in fields} | dict(extra.get("profile") or {})
        potential |= {f: doc[f] for f in ("period", "period_source") if doc.get(f) is not None}
        if relaxed_atoms := extra.get("relaxed_atoms"):  # what the first analysis found, kept through re-takes
            potential |= {"relaxed_atoms_period": relaxed_atoms.get("period"),
                          "relaxed_atoms_center_average": relaxed_atoms.get("slab_center_average")}
        engine = doc.get("engine", "")
        outputs = {"slab_potential": {"potential": potential, "restored_from_surface_document": True,
                                      "code_version": (doc.get("code_versions") or {}).get(f"{engine} (slab)")}}
        if isinstance(seconds := ((doc.get("extra") or {}).get("wall_time") or {}).get("slab_potential"), float | int):
            outputs["slab_potential"]["wall_time"] = seconds  # what computing it cost, kept for the new document
        if "slab_structure" in jobs:
            outputs["slab_structure"] = doc["structure_relaxed"]
        for step, output in outputs.items():
            _store_restored_output(store, jobs[step], output, surface_id)
            restored.add(jobs[step].uuid)
        if "slab_relax" in jobs:  # its only dependant, the structure job, is restored
            restored.add(jobs["slab_relax"].uuid)
    return restored


def _run_setting(store: BandflowStore | None, work_dir: Path | None) -> tuple[BandflowStore, Path]:
    """The store (the configured one by default) and the job folder root (made) of a run of jobs, with
    jobflow's per-job logging and monty's cd() deprecation notice silenced."""
    store = store or BandflowStore.from_settings()
    work_dir = Path(work_dir or store.settings.data_dir / "runs")
    work_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("jobflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning, module="jobflow")
    return store, work_dir


def _run_job(job: Job, store: BandflowStore, work_dir: Path, campaign: str = ""):
    """Run one job with ``run_locally`` (its parents' outputs read from the store) in a folder of its own
    under ``work_dir``, recorded as this process's active job while it runs; its response."""
    job.hosts = []  # run_locally wraps the job in a flow of its own; a job may belong to one flow only
    # jobflow stores only completed_at (local time); with this the status knows each job's duration
    started = datetime.now()
    job.metadata["started_at"] = started.isoformat()
    # the folder is made here, named as jobflow's create_folders would, so that it can be recorded
    folder = work_dir / f"job_{started:%Y-%m-%d-%H-%M-%S-%f}-{os.getpid()}"
    folder.mkdir()
    active = ActiveJob(
        campaign=campaign, job_name=job.name, step=job.metadata.get("bandflow_step", job.name),
        target=str(job.metadata.get("surface_id") or job.metadata.get("bulk_name") or ""), pid=os.getpid(),
        host=socket.gethostname(), started_at=started.isoformat(), folder=str(folder), uuid=job.uuid)
    mark_active(work_dir, active)  # a record that cannot be written is only logged: the job runs anyway
    try:
        responses = run_locally(job, store=store.job_store, create_folders=False, root_dir=folder, log=False,
                                allow_external_references=True, raise_immediately=True)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (bandflow.cli.exit_on_sigterm)
        record_stopped(work_dir, active, (datetime.now() - started).total_seconds())
        raise
    if job.uuid not in responses:
        raise RuntimeError("job produced no output")
    return responses[job.uuid][1]


def surface_steps(ordered: list[tuple[Job, list[str]]]) -> dict[str, dict[str, Job]]:
    """``{surface_id: {step: job}}`` of a flow's surface jobs."""
    steps: dict[str, dict[str, Job]] = {}
    for job, _ in ordered:
        if (surface_id := job.metadata.get("surface_id")) is not None:
            steps.setdefault(surface_id, {})[job.metadata.get("bandflow_step", "")] = job
    return steps


def _store_restored_output(store: BandflowStore, job: Job, output: object, surface_id: str) -> None:
    """Write ``output`` into the job store as ``job``'s, marked ``metadata.restored_from``."""
    from jobflow.core.schemas import JobStoreDocument

    now = datetime.now().isoformat()
    record = JobStoreDocument(
        uuid=job.uuid, index=job.index, output=output, completed_at=now, hosts=[], name=job.name,
        metadata={**job.metadata, "started_at": now, "restored_from": surface_id},
    )
    store.job_store.update(record.model_dump(), key=["uuid", "index"])


def recompute_slab_potentials(
    spec: CampaignSpec,
    store: BandflowStore,
    surface_ids: list[str],
    work_dir: Path | None = None,
    progress: bool = True,
) -> RunSummary:
    """Compute again the slab potential of surfaces known only from their documents, and align them with
    the bulk band edges those documents hold: no relaxation and no bulk job run.

    For documents made before the planar profile was kept (2026-12-04), whose slab-centre average was
    taken over the period of the relaxed atoms and cannot be re-taken. The document's relaxed structure is
    written to the job store as the structure step's output (``restored_from``), the potential job runs on
    it, and the new document takes the old one's bulk edges (``bulk_vbm``, ``bulk_cbm``,
    ``bulk_average_potential``, ``extra.bulk``). Only successful documents of this flow's settings qualify;
    an engine failure leaves the old document as it was.
    """
    from bandflow.alignment import stored_bulk_edges, surface_document

    store, work_dir = _run_setting(store, work_dir)
    started = time.perf_counter()
    plans = [replace(plan, surfaces=[s for s in plan.surfaces if s.id in set(surface_ids)])
             for plan in plan_campaign(spec)]
    ordered = run_order(campaign_flow(spec, [plan for plan in plans if plan.surfaces]))
    steps, wanted = surface_steps(ordered), expected_job_uuids(ordered)
    summary = RunSummary(total=len(surface_ids))
    for surface_id in tqdm(surface_ids, desc="slab potentials", unit="surface", disable=not progress):
        found = store.query_surfaces(protocol=spec.protocol, surface_id=surface_id)
        jobs = steps.get(surface_id, {})
        if not found or not is_current(found[0], wanted) or "slab_potential" not in jobs:
            summary.failed[surface_id] = "no successful document of this campaign's settings"
            continue
        doc = found[0]
        potential = jobs["slab_potential"]
        if "slab_structure" in jobs:
            _store_restored_output(store, jobs["slab_structure"], doc.structure_relaxed, surface_id)
        bulk_edges = stored_bulk_edges(doc)
        surface, protocol = jobs["alignment"].function_args[:2]  # what the alignment job would be given
        try:
            try:
                output = _run_job(potential, store, work_dir, spec.name).output
            finally:
                clear_active(work_dir)
            new = surface_document(surface, protocol, bulk_edges, doc.structure_relaxed, output)
            if new.state != "successful":
                raise BandflowError(new.failure_reason or "alignment failed")
        except Exception as exc:  # the old document stays
            summary.failed[surface_id] = _reason(exc)
            tqdm.write(f"failed: {surface_id}: {summary.failed[surface_id]}")
            continue
        store.upsert_surface(new.model_copy(update={"extra": {**new.extra, "recomputed_slab_potential": True}}))
        summary.ran += 1
    summary.seconds = time.perf_counter() - started
    return summary


def unneeded_jobs(ordered: list[tuple[Job, list[str]]], done: set[str]) -> set[str]:
    """Jobs not in ``done`` whose dependants are all done (or unneeded themselves): nothing would read their
    output. A relaxation whose relaxed structure was restored in an earlier run is one."""
    dependants = dependants_of(ordered)
    unneeded: set[str] = set()
    for job, _ in reversed(ordered):  # dependants before the jobs they read from
        children = dependants.get(job.uuid, [])
        if job.uuid not in done and children and all(c in done or c in unneeded for c in children):
            unneeded.add(job.uuid)
    return unneeded


def realignable(store: BandflowStore, ordered: list[tuple[Job, list[str]]]) -> set[str]:
    """UUIDs of the alignment jobs whose parent jobs' outputs are all in the job store (not only in a surface
    document, as after ``bandflow import``): they can be run again without running anything else."""
    alignments = [(job, parents) for job, parents in ordered if job.metadata.get("bandflow_step") == "alignment"]
    in_store = completed_uuids(store, sorted({p for _, parents in alignments for p in parents}))
    return {job.uuid for job, parents in alignments if parents and all(p in in_store for p in parents)}


def recorded_bulk_failures(store: BandflowStore, ordered: list[tuple[Job, list[str]]]) -> dict[str, str]:
    """Bulk band-edge jobs of this flow whose failure a failed surface document records: uuid → reason.

    A job's UUID carries its settings key, so these failed with the settings of this run: a diverged hybrid
    would take its hours to diverge again. Changed settings (a new maker default, Li's kinds) give a new
    UUID, which runs.
    """
    bulk_uuids = {j.uuid for j, _ in ordered if j.metadata.get("bandflow_step") == "bulk_edges"}
    found: dict[str, str] = {}
    for doc in store.surfaces.query({"failure_reason": {"$ne": None}}, properties=["job_uuids", "failure_reason"]):
        uuid = (doc.get("job_uuids") or {}).get("bulk_edges")
        if uuid in bulk_uuids and str(doc["failure_reason"]).startswith("bulk_edges:"):
            found.setdefault(uuid, doc["failure_reason"])
    return found


def plans_with_documents(plans: list[BulkPlan], store: BandflowStore, protocol: str) -> list[BulkPlan]:
    """``plans`` cut to the surfaces that already have a document of ``protocol`` in ``store`` (any state).

    After a change of settings this re-computes what was stored (for a new bulk method: the bulks and the
    alignments only) and starts no new surface; bulks left without surfaces are dropped.
    """
    stored = {doc.surface_id for doc in store.query_surfaces(protocol=protocol, state=None)}
    cut = [replace(plan, surfaces=[s for s in plan.surfaces if s.id in stored]) for plan in plans]
    return [plan for plan in cut if plan.surfaces]


def run_order(flow: Flow) -> list[tuple[Job, list[str]]]:
    """The jobs of a campaign flow with their parents' uuids, in the order the flow lists them: per bulk its
    bulk job, then each surface's jobs one surface after the other (a valid order: each job follows those
    it reads from). So surfaces finish, and are stored, one by one while a campaign runs. jobflow's own
    order (``Flow.iterflow``) runs a generation at a time: every relaxation of every bulk first (MgTiO3,
    20 CHGNet relaxations of ≈ 5 min each), and no surface is finished until nearly the end.
    """
    position = {uuid: i for i, uuid in enumerate(flow.all_uuids)}  # depth first: a maker may return a Flow
    ordered = sorted(flow_jobs(flow), key=lambda item: position[item[0].uuid])
    for job, parents in ordered:
        if any(position[parent] > position[job.uuid] for parent in parents):  # a flow built otherwise
            raise BandflowError(f"job {job.name} is listed before a job it reads from")
    return ordered


def run_campaign(
    spec: CampaignSpec,
    store: BandflowStore | None = None,
    work_dir: Path | None = None,
    progress: bool = True,
    plans: list[BulkPlan] | None = None,
    realign: bool = False,
    retry_failed: bool = False,
    slabs_only: bool = False,
    walltime: float | None = None,
    whole: CampaignSpec | None = None,
) -> RunSummary:
    """Run every job of ``spec`` not yet done; a failing job fails only the jobs that need its output.

    When a bulk's band-edge job fails, the slab jobs of its surfaces are not started (they would wait for
    it); its surfaces get failed documents that say why. A bulk job whose failure is recorded from an
    earlier run with the same settings is not run again unless ``retry_failed``
    (:func:`recorded_bulk_failures`).

    ``realign`` also runs again every alignment whose inputs (bulk and slab outputs) are all in the job
    store: the surface documents are re-taken from them without an engine step, after a change in how
    an alignment is taken (:func:`realignable`).

    ``slabs_only`` runs only the slab steps (relaxation, slab potential), which need no bulk output: work
    that fits a short allocation, where a bulk hybrid of hours would be cut off. Bulk steps and alignments
    are left for a later full run (not failed).

    ``walltime`` (seconds from now: a batch allocation, the end of a working session) starts only the jobs
    expected to finish before it, with :data:`~bandflow.timing.WALLTIME_MARGIN` to spare, judged from the
    campaign's timed jobs (:func:`campaign_status`; ``whole`` is the campaign ``spec`` was picked from, for
    its times where the picked bulks have none). A bulk hybrid that would be cut off is left for a later run
    (not failed), and so are the jobs that need it; slab steps that still fit run meanwhile. A job whose
    length nothing can tell yet starts while time is left; once it is up, nothing starts.
    """
    from bandflow.forcefields import limit_torch_threads  # atomate2's force fields: a slow import

    store, work_dir = _run_setting(store, work_dir)
    drop_stopped(work_dir)  # records of runners killed before they could remove them
    limit_torch_threads()  # CHGNet relaxations run in this process, beside other runners' engines
    started = time.perf_counter()
    deadline = time.monotonic() + walltime if walltime is not None else None
    plans = plans if plans is not None else plan_campaign(spec)
    flow: Flow = campaign_flow(spec, plans)
    ordered = run_order(flow)
    # a runner SIGKILLed between a document and its outputs; only this campaign's jobs are looked at
    uuids = [job.uuid for job, _ in ordered]
    for uuid, index, name in dangling_jobs(store.job_store, uuids=uuids):
        logger.warning("%s: its stored output is incomplete (a runner was killed while writing it); running it again",
                       name)
        store.job_store.docs_store.remove_docs({"uuid": uuid, "index": index})
    durations = None
    if deadline is not None:
        status = campaign_status(spec, store, plans, whole=whole)
        durations = JobDurations(bulk_seconds=status.bulk_seconds, surface_seconds=status.surface_seconds,
                                 scaling=status.size_scaling, atoms=slab_atoms(plans),
                                 stopped=stopped_seconds(work_dir), bulk_scalings=status.bulk_scalings,
                                 bulk_of=slab_bulks(plans))
        untimed = [what for what, seconds in (("bulk", status.bulk_seconds), ("slab", status.surface_seconds))
                   if seconds is None]
        if untimed:
            logger.warning("walltime: no %s job of this campaign is timed yet; such jobs start while time is left",
                           " or ".join(untimed))
    summary = RunSummary(total=len(ordered))
    done = completed_uuids(store, uuids) | stored_surface_jobs(store, ordered)
    done |= restore_slab_outputs(store, ordered, done)
    done |= unneeded_jobs(ordered, done)
    if realign:
        done -= realignable(store, ordered)
    recorded = {} if retry_failed else recorded_bulk_failures(store, ordered)
    bar = tqdm(total=len(ordered), desc="jobs", unit="job", disable=not progress)
    try:
        _run_ordered(ordered, done, recorded, slabs_only, store, work_dir, spec.name, summary, bar,
                     deadline, durations)
    finally:
        clear_active(work_dir)
        bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _run_ordered(
    ordered: list[tuple[Job, list[str]]], done: set[str], recorded: dict[str, str], slabs_only: bool,
    store: BandflowStore, work_dir: Path, campaign: str, summary: RunSummary, bar: tqdm,
    deadline: float | None = None, durations: JobDurations | None = None,
) -> None:
    """:func:`run_campaign`'s loop: each job not done, in order; a failure fails the jobs that need it; a job
    not expected to finish before ``deadline`` (monotonic seconds) is left, with the jobs that need it."""
    failed: dict[str, str] = {}  # uuid -> reason, inherited by the jobs that need its output
    failed_bulks: dict[str, str] = {}  # bulk name -> why its band-edge job failed
    deferred: set[str] = set()  # uuids left for a later run (past the deadline), and the jobs that need them
    for job, parents in ordered:
        step = job.metadata.get("bandflow_step", job.name)
        bulk_name = job.metadata.get("bulk_name")
        bar.set_postfix_str(f"{step} {job.metadata.get('surface_id', bulk_name or '')}"[:60])
        if job.uuid in done:
            summary.skipped += 1
            bar.update()
            continue
        if slabs_only and step in ("bulk_edges", "alignment"):
            bar.update()
            continue
        if job.uuid in recorded:
            failed[job.uuid] = failed_bulks[bulk_name] = recorded[job.uuid]
            summary.failed[job.name] = f"{recorded[job.uuid]} (recorded earlier: not run again; --retry-failed)"
            tqdm.write(f"not retried: {job.name}: {summary.failed[job.name]}")
            bar.update()
            continue
        upstream = [failed[p] for p in parents if p in failed]
        if not upstream and step not in ("bulk_edges", "alignment") and bulk_name in failed_bulks:
            upstream = [failed_bulks[bulk_name]]  # a slab job of a bulk without band edges: not started
        if upstream and step != "alignment":
            failed[job.uuid] = upstream[0]
            bar.update()
            continue
        left, why = (False, None) if deadline is None else _left_for_later(job, step, parents, deferred, deadline,
                                                                          durations)
        if left:
            deferred.add(job.uuid)
            summary.deferred += 1
            if why:
                tqdm.write(f"left for a later run: {job.name}: {why}")
            bar.update()
            continue
        try:
            response = _run_job(job, store, work_dir, campaign)
            summary.ran += 1
            if upstream:  # the alignment recorded a failed document: say why in it
                output = response.output
                store.upsert_surface(SurfaceDoc(**{**output, "failure_reason": upstream[0]}))
        except Exception as exc:  # an engine failure: recorded, the other surfaces go on
            failed[job.uuid] = f"{step}: {_reason(exc)}"
            summary.failed[job.name] = failed[job.uuid]
            if step == "bulk_edges":
                failed_bulks[bulk_name] = failed[job.uuid]
            tqdm.write(f"failed: {job.name}: {failed[job.uuid]}")
        bar.update()


def _left_for_later(job: Job, step: str, parents: list[str], deferred: set[str], deadline: float,
                    durations: JobDurations | None) -> tuple[bool, str | None]:
    """Whether ``job`` needs a job left for later, or is expected to end past ``deadline`` (with the margin);
    past the deadline every job is left, also one whose length nothing can tell. The second value says why
    where an earlier attempt of the job, stopped unfinished, is what leaves it (its usual length would fit)."""
    if any(parent in deferred for parent in parents) or time.monotonic() >= deadline:
        return True, None
    if durations is None:
        return False, None

    def fits(seconds: float | None) -> bool:
        return seconds is None or time.monotonic() + WALLTIME_MARGIN * seconds <= deadline

    surface_id = job.metadata.get("surface_id")
    if fits(durations.expected(step, surface_id, job.uuid)):
        return False, None
    if fits(durations.expected(step, surface_id)):  # only the stopped attempt does not fit
        return True, f"an earlier attempt was stopped after {duration_text(durations.stopped[job.uuid])} without finishing"
    return True, None


@dataclass
class BulkProgress:
    """One bulk of a campaign: its surfaces' states and whether its bulk job's output is in the store."""

    name: str
    total: int
    successful: int
    failed: int
    #: the bulk job (hybrid band edges) has a finished output in the job store, so only slab steps are left
    bulk_stored: bool
    #: how long the longest attempt of the bulk job ran before it was stopped unfinished (None: none was)
    stopped_seconds: float | None = None

    @property
    def bulk_job_to_run(self) -> bool:
        """Surfaces are left and the bulk job has no stored output."""
        return bool(self.remaining) and not self.bulk_stored

    @property
    def remaining(self) -> int:
        """Surfaces still to compute (failed ones are not retried with the same settings)."""
        return self.total - self.successful - self.failed


@dataclass
class CampaignStatus:
    """Progress of one campaign in the store, with an estimate of the time left."""

    name: str
    total: int
    successful: int
    failed: int
    remaining: int
    outdated: int  # successful documents of an earlier method (other settings): among the remaining
    seconds_per_surface: float | None
    eta_seconds: float | None
    #: where the time per surface comes from: "jobs" (this machine's job store), "documents" (the wall
    #: times recorded in the surface documents, which travel with an export), "campaign" (the whole
    #: campaign's means, for picked bulks with nothing timed yet), or None (nothing timed)
    timed_from: Literal["jobs", "documents", "campaign"] | None = None
    #: per bulk, in the spec's order
    bulks: list[BulkProgress] = field(default_factory=list)
    #: mean bulk job and mean slab steps of one surface, where timed; with them the estimate is
    #: ``bulks_to_run × bulk_seconds + remaining × surface_seconds`` instead of ``remaining × seconds_per_surface``
    bulk_seconds: float | None = None
    surface_seconds: float | None = None
    #: jobs of this campaign that runners on this machine (or sharing its data folder) compute now
    running: list[ActiveJob] = field(default_factory=list)
    #: the slab steps' time as a power of the slab's atom count, fitted to the timed surfaces (None where
    #: they cannot fix it); the estimate then sizes each remaining surface by its own atom count
    size_scaling: SizeScaling | None = None
    #: per bulk with enough timed surfaces, its own pace (``size_scaling``'s exponent, its own coefficient)
    bulk_scalings: dict[str, SizeScaling] = field(default_factory=dict)
    #: the remaining surfaces' slab steps in the estimate (sized by ``size_scaling`` where there is one, at
    #: their bulk's pace where ``bulk_scalings`` has it)
    remaining_surface_seconds: float | None = None

    def slab_pace(self) -> str:
        """The remaining surfaces' slab steps in words: their sized mean and how it was sized, or the flat mean."""
        if self.size_scaling and self.remaining_surface_seconds is not None and self.remaining:
            own = sum(1 for b in self.bulks if b.remaining and b.name in self.bulk_scalings)
            return (f"{self.remaining_surface_seconds / self.remaining / 60:.1f} min per surface: "
                    f"{(self.surface_seconds or 0) / 60:.1f} min for those timed, sized to each remaining slab as "
                    f"atoms^{self.size_scaling.exponent:.1f}"
                    + (" (the whole campaign's exponent)" if self.size_scaling.borrowed else "")
                    + (f", {own} bulk{'s' if own != 1 else ''} at {'their' if own != 1 else 'its'} own pace"
                       if own else ""))
        return f"{(self.surface_seconds or 0) / 60:.1f} min per surface"

    @property
    def bulks_to_run(self) -> int:
        """Bulks with surfaces left whose bulk job has no stored output."""
        return sum(1 for b in self.bulks if b.bulk_job_to_run)


#: Fewer surfaces timed on this machine than this (and than the documents time), and the documents' recorded
#: times (all machines) judge the campaign instead: one 32-min slab, the first on a new machine, had set 32 min
#: for each of the 26 surfaces left where the documents time 80.
MIN_TIMED_HERE = 5

#: A pause longer than this between two finished jobs means the campaign was stopped, not computing.
PAUSE_SECONDS = 6 * 3600


def _own_seconds(doc: dict) -> float | None:
    """A finished job's duration from its recorded start or its output's wall time, if either is known."""
    completed = datetime.fromisoformat(str(doc["completed_at"]))
    if started := (doc.get("metadata") or {}).get("started_at"):
        return max((completed - datetime.fromisoformat(str(started))).total_seconds(), 0.0)
    wall = (doc.get("output") or {}).get("wall_time") if isinstance(doc.get("output"), dict) else None
    wall = wall.get("total") if isinstance(wall, dict) else wall
    return float(wall) if isinstance(wall, int | float) else None


def job_seconds(jobs: list[dict]) -> dict[str, float]:
    """Computing time of each finished job (by uuid): its own duration where known (:func:`_own_seconds`),
    else the gap since the previous finished job (a gap over :data:`PAUSE_SECONDS`, when nothing ran, is 0)."""
    seconds, previous = {}, None
    for doc in sorted(jobs, key=lambda doc: datetime.fromisoformat(str(doc["completed_at"]))):
        completed = datetime.fromisoformat(str(doc["completed_at"]))
        own = _own_seconds(doc)
        if own is None:
            gap = (completed - previous).total_seconds() if previous is not None else 0.0
            own = gap if 0 < gap < PAUSE_SECONDS else 0.0
        seconds[doc["uuid"]] = own
        previous = completed
    return seconds


def step_seconds(jobs: list[dict], seconds: dict[str, float] | None = None,
                 surfaces_per_bulk: dict[str, int] | None = None) -> tuple[float, float | None, float] | None:
    """``(surface_seconds, bulk_seconds, seconds_per_surface)`` of a campaign from its finished jobs (uuid,
    completed_at, metadata, wall times), or None when no surface went through its steps here.

    The surface steps are averaged over the surfaces aligned here whose slab steps also ran here (not
    restored from documents); ``bulk_seconds`` is the mean of the timed bulk jobs (None if none is), and
    ``seconds_per_surface`` spreads the timed bulks' time over the surfaces they serve: those of the
    campaign's plan (``surfaces_per_bulk``, by bulk name) where given, else those aligned here. (Bulk jobs
    stored in earlier sessions serve surfaces whose alignment jobs are not here: the ternary campaign's five,
    spread over the one surface aligned since, made 4.8 h "per surface".) ``seconds`` is :func:`job_seconds`
    of ``jobs`` where already known.
    """
    seconds = job_seconds(jobs) if seconds is None else seconds
    meta = {doc["uuid"]: doc.get("metadata") or {} for doc in jobs}
    aligned = _aligned_surfaces(meta)
    per_surface = surface_step_seconds(jobs, seconds)
    if not per_surface:
        return None
    surface_time = sum(per_surface.values())
    timed_bulks = _timed_bulk_jobs(jobs, seconds)
    bulk_times = [seconds[doc["uuid"]] for doc in timed_bulks]
    bulk_mean = sum(bulk_times) / len(bulk_times) if bulk_times else None
    served = len(aligned)
    if surfaces_per_bulk is not None:
        names = {meta[doc["uuid"]].get("bulk_name") for doc in timed_bulks}
        served = max(sum(surfaces_per_bulk.get(name, 0) for name in names if name), 1)
    return surface_time / len(per_surface), bulk_mean, surface_time / len(per_surface) + sum(bulk_times) / served


def _timed_bulk_jobs(jobs: list[dict], seconds: dict[str, float]) -> list[dict]:
    """The bulk jobs among ``jobs`` with a computing time (``seconds``: :func:`job_seconds`)."""
    return [doc for doc in jobs
            if (doc.get("metadata") or {}).get("bandflow_step") == "bulk_edges" and seconds.get(doc["uuid"], 0) > 0]


def _mean_bulk_seconds(jobs: list[dict], seconds: dict[str, float]) -> float | None:
    """The mean computing time of the timed bulk jobs, None if none is timed."""
    times = [seconds[doc["uuid"]] for doc in _timed_bulk_jobs(jobs, seconds)]
    return sum(times) / len(times) if times else None


def _aligned_surfaces(meta: dict[str, dict]) -> set[str]:
    """Surfaces (ids) with an alignment job and a slab potential job among the jobs' ``meta`` (by uuid). A
    surface whose bulk job failed has an alignment job, which stores its failure, and no slab steps: it
    would count as a surface done in no time (28 Ga2O3 surfaces halved the time per surface on 2026-12-06)."""
    steps: dict[str, set[str]] = {}
    for m in meta.values():
        if "surface_id" in m:
            steps.setdefault(m["surface_id"], set()).add(m.get("bandflow_step"))
    return {surface for surface, done in steps.items() if {"alignment", "slab_potential"} <= done}


def surface_step_seconds(jobs: list[dict], seconds: dict[str, float] | None = None) -> dict[str, float]:
    """The slab steps' computing time of each surface aligned here whose slab steps also ran here (not
    restored from documents), by surface id; ``seconds`` is :func:`job_seconds` of ``jobs`` if known."""
    seconds = job_seconds(jobs) if seconds is None else seconds
    meta = {doc["uuid"]: doc.get("metadata") or {} for doc in jobs}
    aligned = _aligned_surfaces(meta)
    restored = {m.get("surface_id") for m in meta.values() if m.get("restored_from")}
    per_surface = dict.fromkeys(aligned - restored, 0.0)
    for uuid, t in seconds.items():
        if (surface := meta[uuid].get("surface_id")) in per_surface:
            per_surface[surface] += t
    return per_surface


def store_durations(store: BandflowStore) -> JobDurations:
    """Expected job lengths from every timed bandflow job in ``store`` (all campaigns; a FireWorks worker does
    not know its jobs' campaigns): the mean bulk job, the mean slab steps of a surface, and their scaling
    with the slab's atom count where the timed surfaces' jobs record it (``n_atoms``) and can fix one."""
    jobs = [doc for doc in store.job_store.query({"metadata.bandflow_step": {"$exists": True}},
                                                 properties=["uuid", "completed_at", "metadata", "output.wall_time"])
            if doc.get("completed_at")]
    seconds = job_seconds(jobs)
    times = step_seconds(jobs, seconds)  # None where no surface is timed; the bulk jobs may still be
    atoms = {m["surface_id"]: int(m["n_atoms"]) for doc in jobs
             if "surface_id" in (m := doc.get("metadata") or {}) and isinstance(m.get("n_atoms"), int)}
    bulk_of = {m["surface_id"]: str(m["bulk_name"]) for doc in jobs
               if "surface_id" in (m := doc.get("metadata") or {}) and m.get("bulk_name")}
    timed = {i: t for i, t in surface_step_seconds(jobs, seconds).items() if i in atoms}
    scaling = fit_size_scaling([(atoms[i], t) for i, t in timed.items()])
    return JobDurations(bulk_seconds=_mean_bulk_seconds(jobs, seconds), surface_seconds=times[0] if times else None,
                        scaling=scaling, atoms=atoms, bulk_of=bulk_of,
                        bulk_scalings=bulk_scalings(_by_bulk(timed, atoms, bulk_of), scaling))


def _by_bulk(timed: dict[str, float], atoms: dict[str, int],
             bulk_of: dict[str, str]) -> dict[str, list[tuple[int, float]]]:
    """The ``(n_atoms, seconds)`` samples of the timed surfaces (``timed``: seconds by surface id), per bulk."""
    samples: dict[str, list[tuple[int, float]]] = {}
    for surface, t in timed.items():
        if surface in bulk_of and surface in atoms:
            samples.setdefault(bulk_of[surface], []).append((atoms[surface], t))
    return samples


def slab_atoms(plans: list[BulkPlan]) -> dict[str, int]:
    """The slab atom count of each planned surface, by surface id."""
    return {e.id: e.n_atoms for p in plans for e in p.surfaces}


def slab_bulks(plans: list[BulkPlan]) -> dict[str, str]:
    """The bulk name of each planned surface, by surface id (as the campaign counts them)."""
    return {e.id: p.bulk.name for p in plans for e in p.surfaces}


def bulk_progress(plans: list[BulkPlan], docs: list[SurfaceDoc], current: list[bool], stored_bulks: set[str],
                  stopped: dict[str, float] | None = None) -> list[BulkProgress]:
    """Per bulk of ``plans``: its surfaces' states among ``docs`` (only those of the present settings,
    ``current``), whether its bulk job's output is stored (``stored_bulks``: names) and how long its longest
    stopped attempt ran (``stopped``: seconds by bulk name)."""
    stopped = stopped or {}
    owner = slab_bulks(plans)
    states: dict[str, list[str]] = {}
    for doc, now in zip(docs, current, strict=True):
        if now and doc.surface_id in owner:
            states.setdefault(owner[doc.surface_id], []).append(doc.state)
    return [BulkProgress(name=p.bulk.name, total=len(p.surfaces),
                         successful=states.get(p.bulk.name, []).count("successful"),
                         failed=states.get(p.bulk.name, []).count("failed"),
                         bulk_stored=p.bulk.name in stored_bulks,
                         stopped_seconds=None if p.bulk.name in stored_bulks else stopped.get(p.bulk.name))
            for p in plans]


def campaign_status(spec: CampaignSpec, store: BandflowStore, plans: list[BulkPlan] | None = None,
                    whole: CampaignSpec | None = None) -> CampaignStatus:
    """Done/failed/remaining surfaces of ``spec`` and the estimated time left.

    ``whole`` is the campaign ``spec`` was picked from (``--bulk``): where the picked bulks have no timed
    bulk job or surface yet, the estimate takes the mean times of the whole campaign (``timed_from`` then
    says so).

    Done means a successful document computed with the spec's present settings; one from an earlier method
    (for example a smaller bulk Γ cell) is counted as outdated, among the remaining.

    The time left is the bulk jobs still to run at their mean time (one with an attempt stopped unfinished:
    at least as long as that attempt ran) plus the remaining surfaces at the mean time of their slab steps
    (:func:`step_seconds`); ``seconds_per_surface`` spreads the bulk steps over their surfaces instead, the
    pace of the campaign so far.
    """
    plans = plans if plans is not None else plan_campaign(spec)
    ids = {e.id for p in plans for e in p.surfaces}
    docs = [d for d in store.query_surfaces(protocol=spec.protocol, state=None) if d.surface_id in ids]
    flow = campaign_flow(spec, plans)
    wanted = expected_job_uuids(flow_jobs(flow))
    current = [is_current(d, wanted) for d in docs]
    outdated = sum(d.state == "successful" and not now for d, now in zip(docs, current, strict=True))
    uuids = [job.uuid for job in flow.jobs]
    properties = ["uuid", "completed_at", "metadata", "output.wall_time"]
    jobs = [doc for doc in store.job_store.query({"uuid": {"$in": uuids}}, properties=properties)
            if doc.get("completed_at")]
    stored_bulks = {(doc.get("metadata") or {}).get("bulk_name") for doc in jobs
                    if (doc.get("metadata") or {}).get("bandflow_step") == "bulk_edges"}
    attempts = stopped_seconds(store.settings.data_dir / "runs")
    stopped = {job.metadata.get("bulk_name"): attempts[job.uuid] for job in flow.jobs
               if job.metadata.get("bandflow_step") == "bulk_edges" and job.uuid in attempts}
    bulks = bulk_progress(plans, docs, current, stored_bulks, stopped)  # failures of earlier settings are retried
    successful, failed = sum(b.successful for b in bulks), sum(b.failed for b in bulks)
    timed_from: Literal["jobs", "documents", "campaign"] = "jobs"
    atoms = slab_atoms(plans)
    seconds = job_seconds(jobs)
    # from surfaces computed here (imported ones have no jobs here), the bulks spread over their plans' surfaces
    times = step_seconds(jobs, seconds, {p.bulk.name: len(p.surfaces) for p in plans})
    timed = {i: t for i, t in surface_step_seconds(jobs, seconds).items() if i in atoms}
    done = [d for d, now in zip(docs, current, strict=True) if d.state == "successful" and now]
    recorded_timed = {d.surface_id: t for d in done if (t := (d.extra.get("wall_time") or {}).get("slab_potential"))}
    # a fresh machine, or one that has timed only a few of the surfaces the documents time: the documents judge
    if times is None or len(timed) < min(MIN_TIMED_HERE, len(recorded_timed)):
        if recorded := recorded_step_seconds(done):
            times, timed_from, timed = recorded, "documents", recorded_timed
    samples = [(atoms[i], t) for i, t in timed.items()]
    scaling = fit_size_scaling(samples)
    settled = {d.surface_id for d, now in zip(docs, current, strict=True) if now and d.state in ("successful", "failed")}
    remaining_atoms = [(e.id, e.n_atoms) for p in plans for e in p.surfaces if e.id not in settled]
    remaining = sum(b.remaining for b in bulks)
    status = CampaignStatus(
        name=spec.name, total=len(ids), successful=successful, failed=failed, remaining=remaining, outdated=outdated,
        seconds_per_surface=None, eta_seconds=None, bulks=bulks,
        running=active_jobs(store.settings.data_dir / "runs", spec.name),
    )
    needs_campaign = times is None or scaling is None or (times[1] is None and status.bulks_to_run)
    campaign = campaign_status(whole, store) if whole is not None and needs_campaign else None
    if campaign is not None and campaign.surface_seconds is not None:
        if times is None:  # nothing timed among the picked bulks: the whole campaign's times and sizes
            times = (campaign.surface_seconds, campaign.bulk_seconds, campaign.seconds_per_surface)
            scaling, timed_from = campaign.size_scaling, "campaign"
        else:
            if times[1] is None and status.bulks_to_run:
                times, timed_from = (times[0], campaign.bulk_seconds, times[2]), "campaign"
            if scaling is None and campaign.size_scaling:  # their own times, sized as the campaign's
                scaling = campaign.size_scaling.rescaled(samples)
    if times is not None:
        status.surface_seconds, status.bulk_seconds, status.seconds_per_surface = times
        status.size_scaling = scaling
        owner = slab_bulks(plans)
        status.bulk_scalings = bulk_scalings(_by_bulk(timed, atoms, owner), scaling)
        status.remaining_surface_seconds = (
            sum(status.bulk_scalings.get(owner[i], scaling).seconds(n) for i, n in remaining_atoms) if scaling
            else remaining * status.surface_seconds)
        # bulk jobs that nothing can time yet (no bulk of this campaign timed) are left out of the estimate
        # a bulk job stopped unfinished before counts as at least as long as that attempt ran
        status.eta_seconds = sum(max(status.bulk_seconds or 0.0, b.stopped_seconds or 0.0) for b in bulks
                                 if b.bulk_job_to_run) + status.remaining_surface_seconds
        status.timed_from = timed_from
    return status


def record_wall_times(store: BandflowStore, docs: list[SurfaceDoc]) -> int:
    """Copy the engine steps' wall times from this machine's job store into documents made before they
    recorded them (``extra["wall_time"]``, see :func:`bandflow.alignment.run_seconds`), and store them.

    Returns how many documents gained times. Documents whose jobs ran elsewhere (imported) keep none.
    """
    updated = 0
    for doc in docs:
        if doc.state != "successful" or doc.extra.get("wall_time"):
            continue
        outputs = {}
        for step in ("bulk_edges", "slab_potential"):
            uuid = doc.job_uuids.get(step)
            job = store.job_store.query_one({"uuid": uuid}, properties=["output.wall_time"]) if uuid else None
            outputs[step] = (job or {}).get("output") or None
        if seconds := run_seconds(outputs["bulk_edges"], outputs["slab_potential"]):
            doc.extra["wall_time"] = seconds
            store.upsert_surface(doc)
            updated += 1
    return updated
