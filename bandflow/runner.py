"""Run a campaign on this machine, job by job, resuming from the job store.

jobflow's ``run_locally`` cannot resume a flow (re-making a flow gives new UUIDs, jobflow#873). bandflow's
jobs have deterministic UUIDs (see :mod:`bandflow.flows`), so this runner walks the flow in dependency
order, skips every job whose output is already stored, and hands each remaining job to ``run_locally``
(with ``allow_external_references`` so that it reads its parents' outputs from the store). A run killed at
any point and started again therefore recomputes only the job that was interrupted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, Job, run_locally
from tqdm.auto import tqdm

from bandflow.flows import BulkPlan, campaign_flow, plan_campaign
from bandflow.schemas import SurfaceDoc
from bandflow.spec import CampaignSpec
from bandflow.store import BandflowStore


@dataclass
class RunSummary:
    """What a local run did."""

    total: int = 0
    skipped: int = 0
    ran: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # job name -> reason
    seconds: float = 0.0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def completed_uuids(store: BandflowStore, uuids: list[str]) -> set[str]:
    """UUIDs among ``uuids`` whose output is in the job store (a failed alignment does not count)."""
    found = store.job_store.query({"uuid": {"$in": uuids}}, properties=["uuid", "output.state"])
    return {doc["uuid"] for doc in found if (doc.get("output") or {}).get("state", "successful") == "successful"}


def run_campaign(
    spec: CampaignSpec,
    store: BandflowStore | None = None,
    work_dir: Path | None = None,
    progress: bool = True,
    plans: list[BulkPlan] | None = None,
) -> RunSummary:
    """Run every job of ``spec`` not yet done; a failing job fails only the jobs that need its output."""
    store = store or BandflowStore.from_settings()
    work_dir = Path(work_dir or store.settings.data_dir / "runs")
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    flow: Flow = campaign_flow(spec, plans if plans is not None else plan_campaign(spec))
    ordered: list[tuple[Job, list[str]]] = list(flow.iterflow())
    summary = RunSummary(total=len(ordered))
    done = completed_uuids(store, [j.uuid for j, _ in ordered])
    failed: dict[str, str] = {}  # uuid -> reason, inherited by the jobs that need its output
    logging.getLogger("jobflow").setLevel(logging.WARNING)
    bar = tqdm(total=len(ordered), desc="jobs", unit="job", disable=not progress)
    for job, parents in ordered:
        step = job.metadata.get("bandflow_step", job.name)
        bar.set_postfix_str(f"{step} {job.metadata.get('surface_id', job.metadata.get('bulk_name', ''))}"[:60])
        if job.uuid in done:
            summary.skipped += 1
            bar.update()
            continue
        upstream = [failed[p] for p in parents if p in failed]
        if upstream and step != "alignment":
            failed[job.uuid] = upstream[0]
            bar.update()
            continue
        job.hosts = []  # run_locally wraps the job in a flow of its own; a job may belong to one flow only
        try:
            responses = run_locally(
                job, store=store.job_store, create_folders=True, root_dir=work_dir, log=False,
                allow_external_references=True, raise_immediately=True,
            )
            if job.uuid not in responses:
                raise RuntimeError("job produced no output")
            summary.ran += 1
            if upstream:  # the alignment recorded a failed document: say why in it
                output = responses[job.uuid][1].output
                store.upsert_surface(SurfaceDoc(**{**output, "failure_reason": upstream[0]}))
        except Exception as exc:  # an engine failure: recorded, the other surfaces go on
            failed[job.uuid] = f"{step}: {_reason(exc)}"
            summary.failed[job.name] = failed[job.uuid]
            tqdm.write(f"failed: {job.name}: {failed[job.uuid]}")
        bar.update()
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
