"""Campaign checkpoints: the finished jobs of unfinished surfaces, carried to another machine.

A surface document (``bandflow export``) holds everything a finished surface needs, but a formula whose
bulk hybrid has run and whose slabs are half done has nothing in it yet: a new machine would compute the
bulk (30–70 min) and those slabs again. A checkpoint is those job outputs as JSON lines. Because bandflow's
job uuids are deterministic (:mod:`bandflow.flows`), loading it into another store makes
``bandflow run`` skip them there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobflow.utils.find import find_key

from bandflow.dataset import read_json_lines, write_json_lines
from bandflow.errors import BandflowError
from bandflow.flows import BulkPlan, campaign_flow, flow_jobs, plan_campaign
from bandflow.runner import completed_uuids, dependants_of, stored_surface_jobs
from bandflow.spec import CampaignSpec
from bandflow.store import BandflowStore

#: Fields every job document of a checkpoint must have (jobflow's ``JobStoreDocument``).
REQUIRED_FIELDS = ("uuid", "index", "output", "completed_at")

#: Checkpoint-only field of a job document: where its outputs lived in the job store's additional stores
#: (``{store name: [key path, ...]}``), so that loading puts them back there, not inline.
BLOB_LOCATIONS = "bandflow_blob_locations"

#: Where a relaxation's trajectory sits in its job document (atomate2's force-field task document). A
#: relaxation is carried only when its structure job has not run (a run killed between the two), and then
#: its trajectory (MBs of JSON for a 60-atom CHGNet run) is what would make the checkpoint large; nothing
#: downstream reads more than the final structure, so only the last ionic step travels.
TRAJECTORY_KEYS = ("output", "output", "ionic_steps")


def checkpoint_documents(spec: CampaignSpec, store: BandflowStore, plans: list[BulkPlan] | None = None
                         ) -> list[dict[str, Any]]:
    """The stored job documents of ``spec`` that a finished surface document does not already cover.

    These are the finished jobs of the surfaces not yet aligned (their bulk job, relaxed structures, slab
    potentials), with their outputs loaded from the additional stores, sorted by uuid and index. Alignment
    jobs are never kept: what they make is the surface document, which ``bandflow export`` carries. A job
    whose readers are all kept is left out (a relaxation, whose trajectory is most of a checkpoint's size,
    once its structure job has run): the runner skips it as unneeded. A relaxation that is kept carries only
    the last step of its trajectory (:data:`TRAJECTORY_KEYS`).
    """
    ordered = flow_jobs(campaign_flow(spec, plans if plans is not None else plan_campaign(spec)))
    covered = stored_surface_jobs(store, ordered)
    alignments = {job.uuid for job, _ in ordered if job.metadata.get("bandflow_step") == "alignment"}
    keep = completed_uuids(store, [job.uuid for job, _ in ordered]) - covered - alignments
    dependants = dependants_of(ordered)
    for job, _ in reversed(ordered):  # readers before the jobs they read from
        children = dependants.get(job.uuid, [])
        if job.uuid in keep and children and all(c in keep or c in covered for c in children):
            keep.discard(job.uuid)
    criteria = {"uuid": {"$in": sorted(keep)}}
    locations = {(doc["uuid"], doc["index"]): _blob_locations(doc) for doc in store.job_store.query(criteria)}
    docs = []
    for doc in store.job_store.query(criteria, load=True):
        doc = {k: v for k, v in doc.items() if k != "_id"}
        if doc.get("metadata", {}).get("bandflow_step") == "slab_relax":
            _keep_final_ionic_step(doc)
        if blobs := locations.get((doc["uuid"], doc["index"])):
            doc[BLOB_LOCATIONS] = blobs
        docs.append(doc)
    return sorted(docs, key=lambda d: (d["uuid"], d["index"]))


def _keep_final_ionic_step(doc: dict[str, Any]) -> None:
    """Cut the trajectory of a relaxation's job document (if it has one) to its final step, in place."""
    parent: Any = doc
    for key in TRAJECTORY_KEYS[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    steps = parent.get(TRAJECTORY_KEYS[-1]) if isinstance(parent, dict) else None
    if isinstance(steps, list) and len(steps) > 1:
        parent[TRAJECTORY_KEYS[-1]] = steps[-1:]


def _blob_locations(doc: dict[str, Any]) -> dict[str, list[list[str]]]:
    """``{store name: [key path, ...]}`` of the additional-store references in a raw job document."""
    locations: dict[str, list[list[str]]] = {}
    for path in find_key(doc, "blob_uuid"):
        reference = doc
        for key in path:
            reference = reference[key]
        locations.setdefault(reference["store"], []).append([str(key) for key in path])
    return locations


def save_checkpoint(spec: CampaignSpec, store: BandflowStore, path: Path | str,
                    plans: list[BulkPlan] | None = None, remove_when_empty: bool = False) -> int:
    """Write the checkpoint of ``spec`` to ``path`` (``.jsonl.gz``) atomically and return its number of job
    documents. With nothing to keep, nothing is written; ``remove_when_empty`` then deletes ``path`` (a
    committed checkpoint whose work has all been exported)."""
    docs = checkpoint_documents(spec, store, plans)
    if not docs:
        if remove_when_empty:
            Path(path).unlink(missing_ok=True)
        return 0
    return write_json_lines(docs, path)


def read_checkpoint(path: Path | str) -> list[dict[str, Any]]:
    """Job documents of a checkpoint file; a malformed file raises one :class:`BandflowError` naming the line."""
    docs = []
    for number, line in read_json_lines(path, "checkpoint"):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BandflowError(f"{path}:{number}: not JSON ({exc.msg})") from None
        missing = [f for f in REQUIRED_FIELDS if not isinstance(doc, dict) or f not in doc]
        if missing:
            raise BandflowError(f"{path}:{number}: not a job document (no {', '.join(missing)})")
        if problem := _malformed(doc):
            raise BandflowError(f"{path}:{number}: not a job document ({problem})")
        docs.append(doc)
    return docs


def _malformed(doc: dict[str, Any]) -> str | None:
    """What makes a job document that has the required fields unusable, if anything: checked for every line
    before any is stored, so that a bad line does not leave half a checkpoint loaded."""
    if not isinstance(doc["uuid"], str) or not doc["uuid"]:
        return "uuid is not a string"
    if not isinstance(doc["index"], int) or isinstance(doc["index"], bool):
        return "index is not an integer"
    blobs = doc.get(BLOB_LOCATIONS) or {}
    if not isinstance(blobs, dict) or not all(
            isinstance(name, str) and isinstance(paths, list)
            and all(isinstance(p, list) and all(isinstance(k, str | int) for k in p) for p in paths)
            for name, paths in blobs.items()):
        return f"{BLOB_LOCATIONS} is not {{store name: [key path, ...]}}"
    return None


def load_checkpoint(store: BandflowStore, docs: list[dict[str, Any]]) -> int:
    """Put checkpoint job documents (:func:`read_checkpoint`) into ``store``'s job store, replacing those with
    the same uuid and index; outputs that lived in an additional store go back there."""
    known = set(store.job_store.additional_stores)
    if unknown := sorted({name for doc in docs for name in (doc.get(BLOB_LOCATIONS) or {})} - known):
        raise BandflowError(f"the checkpoint puts outputs in additional stores this job store does not have: "
                            f"{', '.join(unknown)} (it has: {', '.join(sorted(known)) or 'none'}); nothing loaded")
    by_locations: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        blobs = doc.get(BLOB_LOCATIONS) or {}
        key = json.dumps(blobs, sort_keys=True)
        by_locations.setdefault(key, []).append({k: v for k, v in doc.items() if k != BLOB_LOCATIONS})
    for key, group in by_locations.items():
        save = {name: [tuple(path) for path in paths] for name, paths in json.loads(key).items()}
        store.upsert_jobs(group, save=save or False)
    return len(docs)
