"""Campaign checkpoints: the finished jobs of unfinished surfaces, carried to another machine.

A surface document (``bandflow export``) holds everything a finished surface needs, but a formula whose
bulk hybrid has run and whose slabs are half done has nothing in it yet: a new machine would compute the
bulk (30–70 min) and those slabs again. A checkpoint is those job outputs as JSON lines. Because bandflow's
job uuids are deterministic (:mod:`bandflow.flows`), loading it into another store makes
``bandflow run`` skip them there.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from bandflow.dataset import write_json_lines
from bandflow.errors import BandflowError
from bandflow.flows import BulkPlan, campaign_flow, plan_campaign
from bandflow.runner import completed_uuids, stored_surface_jobs
from bandflow.spec import CampaignSpec
from bandflow.store import BandflowStore

#: Fields every job document of a checkpoint must have (jobflow's ``JobStoreDocument``).
REQUIRED_FIELDS = ("uuid", "index", "output", "completed_at")


def checkpoint_documents(spec: CampaignSpec, store: BandflowStore, plans: list[BulkPlan] | None = None
                         ) -> list[dict[str, Any]]:
    """The stored job documents of ``spec`` that a finished surface document does not already cover.

    These are the finished jobs of the surfaces not yet aligned (their bulk job, relaxed structures, slab
    potentials), with their outputs loaded from the additional stores, sorted by uuid. A job whose readers
    are all kept is left out (a relaxation, whose trajectory is most of a checkpoint's size, once its
    structure job has run): the runner skips it as unneeded.
    """
    ordered = list(campaign_flow(spec, plans if plans is not None else plan_campaign(spec)).iterflow())
    covered = stored_surface_jobs(store, ordered)
    keep = completed_uuids(store, [job.uuid for job, _ in ordered]) - covered
    readers: dict[str, list[str]] = {}
    for job, parents in ordered:
        for parent in parents:
            readers.setdefault(parent, []).append(job.uuid)
    for job, _ in reversed(ordered):  # readers before the jobs they read from
        children = readers.get(job.uuid, [])
        if job.uuid in keep and children and all(c in keep or c in covered for c in children):
            keep.discard(job.uuid)
    docs = store.job_store.query({"uuid": {"$in": sorted(keep)}}, load=True)
    return sorted(({k: v for k, v in doc.items() if k != "_id"} for doc in docs), key=lambda d: d["uuid"])


def save_checkpoint(spec: CampaignSpec, store: BandflowStore, path: Path | str,
                    plans: list[BulkPlan] | None = None) -> int:
    """Write the checkpoint of ``spec`` to ``path`` (``.jsonl.gz``) atomically; with nothing to keep, remove
    ``path`` instead (no stale checkpoint stays behind). Returns the number of job documents."""
    docs = checkpoint_documents(spec, store, plans)
    if not docs:
        Path(path).unlink(missing_ok=True)
        return 0
    return write_json_lines(docs, path)


def read_checkpoint(path: Path | str) -> list[dict[str, Any]]:
    """Job documents of a checkpoint file; a malformed file raises one :class:`BandflowError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"checkpoint not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    docs = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BandflowError(f"{path}:{number}: not JSON ({exc.msg})") from None
                missing = [f for f in REQUIRED_FIELDS if not isinstance(doc, dict) or f not in doc]
                if missing:
                    raise BandflowError(f"{path}:{number}: not a job document (no {', '.join(missing)})")
                docs.append(doc)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise BandflowError(f"cannot read {path}: {exc}") from None
    return docs


def load_checkpoint(store: BandflowStore, path: Path | str) -> int:
    """Put the job documents of a checkpoint file into ``store``'s job store (all or, on a bad line, none)."""
    return store.upsert_jobs(read_checkpoint(path))
