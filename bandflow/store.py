"""The results store: jobflow outputs plus bandflow's surfaces, predictions and models.

Two backends, chosen by :class:`~bandflow.settings.BandflowSettings`:

- ``store_uri`` set: a MongoDB server (maggma ``MongoURIStore``; large blobs in GridFS);
- nothing set: an embedded montydb database with sqlite storage under ``data_dir/store`` (maggma
  ``MontyStore``), safe for several processes (see :class:`LockedMontyStore`).

The same :class:`jobflow.JobStore` serves ``run_locally`` and FireWorks workers;
:meth:`BandflowStore.write_jobflow_config` writes it for ``JOBFLOW_CONFIG_FILE``.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import operator
import re
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import yaml
from jobflow import JobStore
from jobflow.utils.find import find_key
from maggma.core import Store
from maggma.stores import MemoryStore, MongoURIStore, MontyStore
from maggma.stores.gridfs import GridFSURIStore
from monty.json import jsanitize
from pydantic import BaseModel
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically
from bandflow.schemas import (
    ModelDoc,
    PredictionDoc,
    SurfaceDoc,
    normalise_chemsys,
    normalise_datetime,
    normalise_formula,
    utc_now,
    validate_document,
)
from bandflow.settings import BandflowSettings, get_settings

MONGO_TIMEOUT_MS = 3000
"""How long to wait for a MongoDB server to answer before giving up (milliseconds)."""

CONNECT_LOCK_NAME = ".bandflow-connect.lock"
WRITE_LOCK_NAME = ".bandflow-write.lock"

DocT = TypeVar("DocT", bound=BaseModel)

_thread_state = threading.local()


@contextmanager
def exclusive_file_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) against other processes and threads.

    ``flock`` locks belong to an open file description, so two threads that open the file separately
    exclude each other too; re-entering in the thread that holds the lock is a no-op.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    held: set[str] = _thread_state.__dict__.setdefault("held", set())
    if str(path) in held:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(str(path))
        try:
            yield
        finally:
            held.discard(str(path))
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the last one received to the handler that was
    there before. Only in the main thread (where Python runs signal handlers); elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not None:  # None: a handler set outside Python, which cannot be restored
            previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[-1])


class InterruptSafeJobStore(JobStore):
    """jobflow's ``JobStore`` whose ``update`` is not cut in two by Ctrl-C or SIGTERM.

    jobflow writes a job's document first and its additional-store outputs (``blob_uuid`` references: a
    relaxation's trajectory) after; a runner stopped between the two left a completed job whose output cannot
    be resolved, failing the next step and every export (2026-12-07: a Cs2O relaxation stopped by SIGTERM).
    The signals now wait the moment both writes take. SIGKILL cannot be held: :func:`dangling_jobs` finds
    what it leaves.
    """

    def update(self, docs, key=None, save=None):  # noqa: D102 (JobStore.update)
        with interrupts_held():
            return super().update(docs, key=key, save=save)


def dangling_jobs(job_store: JobStore, older_than_s: float = 600.0,
                  uuids: Iterable[str] | None = None) -> list[tuple[str, int, str]]:
    """``(uuid, index, name)`` of the job documents completed more than ``older_than_s`` ago whose output refers
    to an additional-store object that is not there (a writer killed between the document and its outputs);
    removing them makes the jobs run again. Younger ones are left: another runner may be writing their outputs.

    ``uuids`` limits the scan to those jobs (a campaign's own, on a shared database holding many others). No
    stored object is read: only which ``blob_uuid`` values exist (on MongoDB, those the documents refer to).
    """
    wanted_jobs = None if uuids is None else set(uuids)
    # montydb has no index: a $in costs it more than reading every document and filtering here (measured on the
    # reference store: 4.9 s to list all objects, 7.0 s to list those of a $in)
    indexed = not isinstance(job_store.docs_store, MontyStore)
    criteria = {"uuid": {"$in": sorted(wanted_jobs)}} if indexed and wanted_jobs is not None else {}
    cutoff = datetime.now().timestamp() - older_than_s  # jobflow's completed_at is local time
    candidates: list[tuple[dict, list[str]]] = []
    for doc in job_store.docs_store.query(criteria, properties=["uuid", "index", "name", "output", "completed_at"]):
        if wanted_jobs is not None and doc["uuid"] not in wanted_jobs:
            continue
        output = doc.get("output")  # the references, found as jobflow finds them to resolve an output
        refs = [reduce(operator.getitem, route, output) for route in find_key(output, "blob_uuid", include_end=True)]
        try:
            old = datetime.fromisoformat(str(doc.get("completed_at"))).timestamp() < cutoff
        except ValueError:
            old = True
        if old and refs:
            candidates.append((doc, refs))
    wanted = sorted({ref for _, refs in candidates for ref in refs})
    # distinct, not query: maggma's GridFSStore answers it from the files' metadata; a query for the
    # blob_uuid property would download every object
    blob_criteria = {"blob_uuid": {"$in": wanted}} if indexed else {}
    present = {ref for store in job_store.additional_stores.values()
               for ref in store.distinct("blob_uuid", blob_criteria)} if wanted else set()
    return [(doc["uuid"], doc["index"], doc.get("name") or "") for doc, refs in candidates
            if any(ref not in present for ref in refs)]


class LockedMontyStore(MontyStore):
    """maggma's MontyStore with connects serialised across processes by a file lock.

    ``MontyStore.connect`` calls montydb's ``set_storage``, which rewrites ``monty.storage.cfg`` on every
    connect; with many processes connecting at once a reader sees a half-written file and crashes (5 of
    16 concurrent connects failed on the CI machine). montydb offers no lock of its own, hence this one.
    The class is importable, so jobflow config files and FireWorks workers that deserialise the store
    get the lock too.
    """

    def connect(self, force_reset: bool = False) -> None:
        Path(self.database_path).mkdir(parents=True, exist_ok=True)
        with exclusive_file_lock(Path(self.database_path) / CONNECT_LOCK_NAME):
            super().connect(force_reset=force_reset)
            # montydb creates a collection's sqlite file on the first write and its table a moment
            # later; a reader in another process that sees the file in between fails with "no such
            # table", and two first writers collide. Creating it here, under the lock, closes both gaps.
            database = self._coll.database
            if self.collection_name not in database.list_collection_names():
                database.create_collection(self.collection_name)


def redact_uri(uri: str) -> str:
    """``uri`` with the password (``scheme://user:PASSWORD@host``) replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


def scrub_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (raw or URL-decoded) replaced by ``***``."""
    if secret:
        for form in {secret, unquote(secret)}:
            text = text.replace(form, "***")
    return text


def uri_password(uri: str) -> str | None:
    """The password part of a MongoDB URI, if any."""
    match = re.search(r"://[^:/@]*:([^@]*)@", uri)
    return match.group(1) if match else None


def mongo_error_line(exc: BaseException, secret: str | None) -> str:
    """One short line for a pymongo error, without ``secret``."""
    text = str(exc).split(", Timeout:")[0].strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return scrub_secret(f"{type(exc).__name__}: {line}"[:300], secret)


def check_mongo_reachable(uri: str, timeout_ms: int | None = None) -> None:
    """Ping the MongoDB server of ``uri``; a BandflowError without the password if it does not answer."""
    import pymongo

    timeout_ms = timeout_ms or MONGO_TIMEOUT_MS
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        try:
            client.admin.command("ping")
        finally:
            client.close()
    except Exception as exc:  # InvalidURI, ConfigurationError, ServerSelectionTimeoutError, OperationFailure...
        raise BandflowError(
            f"cannot use the MongoDB at {redact_uri(uri)} ({mongo_error_line(exc, uri_password(uri))}); "
            "check store_uri (BANDFLOW_STORE_URI) or unset it to use the embedded store"
        ) from None


def _to_store(doc: BaseModel) -> dict[str, Any]:
    """A document as stored: plain Python types, naive UTC datetimes (what montydb can compare)."""
    data = doc.model_dump(mode="python")
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.astimezone(UTC).replace(tzinfo=None)
        elif isinstance(value, tuple):
            data[key] = list(value)
    return data


def _from_store(model: type[DocT], data: dict[str, Any]) -> DocT:
    data = {k: v for k, v in data.items() if k != "_id"}
    return model.model_validate(data)


def _naive_utc(when: datetime | str) -> datetime:
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            raise BandflowError(f"cannot read the date {when!r} (expected ISO 8601, e.g. 2025-01-31)") from None
    return normalise_datetime(when).replace(tzinfo=None)


def _miller(miller: tuple[int, int, int] | list[int] | str) -> list[int]:
    if isinstance(miller, str):  # "1 0 0", "1,0,0" or "100"
        parts = miller.replace(",", " ").split()
        miller = parts if len(parts) > 1 else list(miller.strip())
    try:
        values = [int(v) for v in miller]
    except (TypeError, ValueError):
        raise BandflowError(f"cannot read the Miller index {miller!r} (expected three integers)") from None
    if len(values) != 3 or not any(values):
        raise BandflowError(f"invalid Miller index {miller!r}: three integers, not all zero")
    return values


def _formula(formula: str) -> str:
    try:
        return normalise_formula(formula)
    except ValueError as exc:
        raise BandflowError(str(exc)) from None


def _chemsys(chemsys: str) -> str:
    try:
        return normalise_chemsys(chemsys)
    except ValueError as exc:
        raise BandflowError(str(exc)) from None


class BandflowStore:
    """The jobflow ``JobStore`` and bandflow's collections, connected and indexed; ``settings`` made it.

    Collections: ``surfaces`` (:class:`SurfaceDoc`, key surface_id + protocol), ``predictions``
    (:class:`PredictionDoc`, key surface_id + model_id), ``models`` (:class:`ModelDoc`, key model_id)
    and ``model_weights`` (weights bytes, base64, key model_id). Build one with :meth:`from_settings`.
    """

    def __init__(
        self,
        *,
        job_store: JobStore,
        surfaces: Store,
        predictions: Store,
        models: Store,
        model_weights: Store,
        write_lock_path: Path | None = None,
        location: str = "",
        settings: BandflowSettings | None = None,
    ) -> None:
        """Wrap already built maggma stores; ``write_lock_path`` serialises writes (embedded backend)."""
        self.settings = settings or get_settings()
        self.job_store = job_store
        self.surfaces = surfaces
        self.predictions = predictions
        self.models = models
        self.model_weights = model_weights
        self.write_lock_path = write_lock_path
        self.location = location
        self.connect()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_settings(cls, settings: BandflowSettings | None = None) -> BandflowStore:
        """MongoDB when ``store_uri`` is set (checked to answer first), else the embedded montydb store."""
        settings = settings or get_settings()
        if settings.store_uri:
            store = cls.from_uri(settings.store_uri, settings.database)
        else:
            store = cls.embedded(Path(settings.data_dir).expanduser() / "store", settings.database)
        store.settings = settings
        return store

    @classmethod
    def embedded(cls, path: Path, database: str = "bandflow") -> BandflowStore:
        """montydb (sqlite storage) under ``path``: no server, several processes may use it at once."""
        path = Path(path).expanduser().resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BandflowError(f"cannot create the store folder {path}: {exc.strerror}") from None

        def monty(collection: str, key: str) -> LockedMontyStore:
            return LockedMontyStore(
                collection, database_path=str(path), database_name=database, storage="sqlite", key=key
            )

        return cls(
            job_store=InterruptSafeJobStore(monty("outputs", "uuid"), additional_stores={"data": monty("outputs_blobs", "blob_uuid")}),
            surfaces=monty("surfaces", "surface_id"),
            predictions=monty("predictions", "surface_id"),
            models=monty("models", "model_id"),
            model_weights=monty("model_weights", "model_id"),
            write_lock_path=path / WRITE_LOCK_NAME,
            location=f"montydb (sqlite) at {path}",
        )

    @classmethod
    def from_uri(cls, uri: str, database: str = "bandflow", timeout_ms: int | None = None) -> BandflowStore:
        """A MongoDB server; raises one BandflowError (password hidden) if it does not answer in time."""
        check_mongo_reachable(uri, timeout_ms)

        def mongo(collection: str, key: str) -> MongoURIStore:
            return MongoURIStore(uri, collection, database=database, key=key)

        def gridfs(collection: str, key: str) -> GridFSURIStore:
            return GridFSURIStore(uri, collection, database=database, key=key)

        return cls(
            job_store=InterruptSafeJobStore(mongo("outputs", "uuid"), additional_stores={"data": gridfs("outputs_blobs", "blob_uuid")}),
            surfaces=mongo("surfaces", "surface_id"),
            predictions=mongo("predictions", "surface_id"),
            models=mongo("models", "model_id"),
            model_weights=gridfs("model_weights", "model_id"),
            location=f"MongoDB {redact_uri(uri)} database {database}",
        )

    @classmethod
    def in_memory(cls) -> BandflowStore:
        """mongomock-backed stores (maggma ``MemoryStore``), for tests and throw-away runs."""
        return cls(
            job_store=InterruptSafeJobStore(MemoryStore("outputs", key="uuid"), additional_stores={"data": MemoryStore("outputs_blobs", key="blob_uuid")}),
            surfaces=MemoryStore("surfaces", key="surface_id"),
            predictions=MemoryStore("predictions", key="surface_id"),
            models=MemoryStore("models", key="model_id"),
            model_weights=MemoryStore("model_weights", key="model_id"),
            location="in memory (mongomock)",
        )

    def connect(self) -> None:
        """Connect every store and build the indexes (MongoDB and mongomock; montydb has none)."""
        self.job_store.connect()
        for store in (self.surfaces, self.predictions, self.models, self.model_weights):
            store.connect()
        self._ensure_indexes()

    def close(self) -> None:
        """Close all connections."""
        for store in (self.job_store, self.surfaces, self.predictions, self.models, self.model_weights):
            try:
                store.close()
            except Exception:  # closing a half-open connection must not hide the real error
                pass

    def __enter__(self) -> BandflowStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ensure_indexes(self) -> None:
        # montydb implements no indexes (create_index is a no-op, index_information raises): skip it.
        if isinstance(self.surfaces, MontyStore):
            return
        surfaces = self.surfaces._collection
        surfaces.create_index([("surface_id", 1), ("protocol", 1)], unique=True, name="surface_protocol")
        for field in ("protocol", "formula", "chemsys", "miller_index", "n_cation_species", "state", "updated_at"):
            surfaces.create_index(field)
        predictions = self.predictions._collection
        predictions.create_index([("surface_id", 1), ("model_id", 1)], unique=True, name="surface_model")
        for field in ("model_id", "formula", "chemsys", "miller_index", "n_cation_species"):
            predictions.create_index(field)
        self.job_store.ensure_index("uuid")  # jobflow does not build it; a run looks its campaign's jobs up by uuid
        for blobs in self.job_store.additional_stores.values():
            blobs.ensure_index("blob_uuid")
        models = self.models._collection
        models.create_index("model_id", unique=True)
        models.create_index([("name", 1), ("version", 1)], unique=True, name="name_version")

    def _write_lock(self):
        return exclusive_file_lock(self.write_lock_path) if self.write_lock_path else nullcontext()

    # ---------------------------------------------------------------- jobs
    def upsert_jobs(self, docs: list[dict[str, Any]], save: dict[str, list] | bool = False) -> int:
        """Insert or replace jobflow job documents (key uuid + index), for example a campaign checkpoint;
        ``save`` puts parts of them in the additional stores (jobflow's ``JobStore.update``)."""
        if docs:
            with self._write_lock():
                self.job_store.update(docs, key=["uuid", "index"], save=save)
        return len(docs)

    # ---------------------------------------------------------------- surfaces
    def upsert_surface(self, doc: SurfaceDoc | dict[str, Any]) -> SurfaceDoc:
        """Insert or update the surface with this (surface_id, protocol); created_at is kept, updated_at set.

        A failed document never replaces a successful one (for example a re-alignment with a new bulk method
        whose bulk step failed): the stored result stays, and the returned document is the stored one.
        """
        doc = validate_document(SurfaceDoc, doc)
        fields = _to_store(doc)
        created_at = fields.pop("created_at")
        fields["updated_at"] = _naive_utc(utc_now())
        key = {"surface_id": doc.surface_id, "protocol": doc.protocol}
        if doc.state == "failed" and self.surfaces._collection.find_one({**key, "state": "successful"}):
            return _from_store(SurfaceDoc, self.surfaces._collection.find_one(key))
        self._upsert(self.surfaces, key, {"$set": fields, "$setOnInsert": {"created_at": created_at}})
        return _from_store(SurfaceDoc, self.surfaces._collection.find_one(key))

    def query_surfaces(
        self,
        formula: str | None = None,
        miller: tuple[int, int, int] | list[int] | None = None,
        protocol: str | None = None,
        chemsys: str | None = None,
        n_cation_species: int | None = None,
        state: str | None = "successful",
        source: str | None = None,
        since: datetime | str | None = None,
        surface_id: str | None = None,
    ) -> list[SurfaceDoc]:
        """Surfaces matching every given filter (``state=None`` for all states), sorted by formula and id."""
        criteria = self._common_criteria(formula, miller, chemsys, n_cation_species, surface_id)
        if protocol is not None:
            criteria["protocol"] = protocol
        if state is not None:
            if state not in ("successful", "failed"):
                raise BandflowError(f"unknown state {state!r}: use 'successful' or 'failed'")
            criteria["state"] = state
        if source is not None:
            criteria["source"] = source
        if since is not None:
            criteria["updated_at"] = {"$gte": _naive_utc(since)}
        rows = self.surfaces.query(criteria, sort={"formula": 1, "surface_id": 1, "protocol": 1})
        return [_from_store(SurfaceDoc, row) for row in rows]

    # ---------------------------------------------------------------- predictions
    def upsert_prediction(self, doc: PredictionDoc | dict[str, Any]) -> PredictionDoc:
        """Insert or replace the prediction with this (surface_id, model_id)."""
        doc = validate_document(PredictionDoc, doc)
        key = {"surface_id": doc.surface_id, "model_id": doc.model_id}
        self._upsert(self.predictions, key, {"$set": _to_store(doc)})
        return doc

    def upsert_predictions(self, docs: list[PredictionDoc | dict[str, Any]]) -> int:
        """Insert or replace many predictions at once (all validated before the first write).

        MongoDB gets one ``bulk_write`` of upserting replacements. montydb has no ``bulk_write`` and scans
        the collection on every single upsert, so there the old versions are deleted and the new ones
        inserted in one batch, under the store's write lock.
        """
        valid = [validate_document(PredictionDoc, doc) for doc in docs]
        if not valid:
            return 0
        # one row per key, the last one winning (as consecutive upserts would)
        rows = list({(d.surface_id, d.model_id): _to_store(d) for d in valid}.values())
        collection = self.predictions._collection
        with self._write_lock():
            if not isinstance(self.predictions, MontyStore):
                collection.bulk_write([
                    ReplaceOne({"surface_id": r["surface_id"], "model_id": r["model_id"]}, r, upsert=True)
                    for r in rows
                ], ordered=False)
            else:
                for model_id in {r["model_id"] for r in rows}:
                    ids = [r["surface_id"] for r in rows if r["model_id"] == model_id]
                    collection.delete_many({"model_id": model_id, "surface_id": {"$in": ids}})
                collection.insert_many(rows)
        return len(rows)

    def query_predictions(
        self,
        formula: str | None = None,
        miller: tuple[int, int, int] | list[int] | None = None,
        model_id: str | None = None,
        chemsys: str | None = None,
        n_cation_species: int | None = None,
        surface_id: str | None = None,
        since: datetime | str | None = None,
    ) -> list[PredictionDoc]:
        """Predictions matching every given filter, sorted by formula, surface id and model id."""
        criteria = self._common_criteria(formula, miller, chemsys, n_cation_species, surface_id)
        if model_id is not None:
            criteria["model_id"] = model_id
        if since is not None:
            criteria["created_at"] = {"$gte": _naive_utc(since)}
        rows = self.predictions.query(criteria, sort={"formula": 1, "surface_id": 1, "model_id": 1})
        return [_from_store(PredictionDoc, row) for row in rows]

    @staticmethod
    def _common_criteria(formula, miller, chemsys, n_cation_species, surface_id) -> dict[str, Any]:
        criteria: dict[str, Any] = {}
        if formula is not None:
            criteria["formula"] = _formula(formula)
        if miller is not None:
            criteria["miller_index"] = _miller(miller)
        if chemsys is not None:
            criteria["chemsys"] = _chemsys(chemsys)
        if n_cation_species is not None:
            criteria["n_cation_species"] = int(n_cation_species)
        if surface_id is not None:
            criteria["surface_id"] = surface_id
        return criteria

    def _upsert(self, store: Store, key: dict[str, Any], update: dict[str, Any]) -> None:
        with self._write_lock():
            try:
                store._collection.update_one(key, update, upsert=True)
            except DuplicateKeyError:
                # Two MongoDB clients upserted the same new key at once; the document exists now.
                store._collection.update_one(key, update, upsert=True)

    # ---------------------------------------------------------------- models
    def save_model(self, doc: ModelDoc | dict[str, Any], weights: bytes) -> ModelDoc:
        """Store a model and its weights with the next version number of its name; returns the saved doc.

        The weights are written first and removed again if the model document cannot be inserted, so a
        model document never points to missing weights.
        """
        doc = validate_document(ModelDoc, doc)
        if not isinstance(weights, bytes | bytearray) or not weights:
            raise BandflowError("model weights must be non-empty bytes")
        weights = bytes(weights)
        digest = hashlib.sha256(weights).hexdigest()
        with self._write_lock():
            for _attempt in range(5):
                latest = self.models._collection.find_one({"name": doc.name}, sort=[("version", -1)])
                version = (latest["version"] if latest else 0) + 1
                model_id = doc.model_id or f"{doc.name}-v{version}"
                if self.models.count({"model_id": model_id}):
                    raise BandflowError(f"a model with id {model_id!r} is stored already; choose another model_id")
                saved = doc.model_copy(
                    update={"model_id": model_id, "version": version, "weights_key": model_id,
                            "weights_sha256": digest, "weights_size": len(weights)}
                )
                self.model_weights.update(
                    {"model_id": model_id, "sha256": digest, "weights_b64": base64.b64encode(weights).decode()},
                    key="model_id",
                )
                try:
                    self.models._collection.insert_one(_to_store(saved))
                except DuplicateKeyError:  # another MongoDB client took this version: try the next one
                    self.model_weights.remove_docs({"model_id": model_id})
                    continue
                except Exception:
                    self.model_weights.remove_docs({"model_id": model_id})
                    raise
                return saved
        raise BandflowError(f"could not assign a version to model {doc.name!r}: too many concurrent saves")

    def load_model(self, model_id: str | None = None, name: str | None = None) -> tuple[ModelDoc, bytes]:
        """A model and its weights: by id, else the latest version of ``name``, else the newest model."""
        criteria: dict[str, Any] = {}
        if model_id is not None:
            criteria["model_id"] = model_id
        if name is not None:
            criteria["name"] = name
        # equal creation times (a model copied from another, or two within one millisecond) go to the one
        # inserted last: ObjectIds grow with insertion, whatever the model's name and version
        sort = [("version", -1)] if name is not None else [("created_at", -1), ("_id", -1)]
        row = self.models._collection.find_one(criteria, sort=sort)
        if row is None:
            what = " ".join(f"{k} {v!r}" for k, v in criteria.items()) or "at all"
            raise BandflowError(f"no model stored {'with ' + what if criteria else what}")
        doc = _from_store(ModelDoc, row)
        blob = self.model_weights.query_one({"model_id": doc.weights_key})
        if blob is None:
            raise BandflowError(f"the weights of model {doc.model_id!r} are missing from the store")
        weights = base64.b64decode(blob["weights_b64"])
        if hashlib.sha256(weights).hexdigest() != doc.weights_sha256:
            raise BandflowError(f"the weights of model {doc.model_id!r} are corrupt (checksum mismatch)")
        return doc, weights

    def list_models(self, name: str | None = None) -> list[ModelDoc]:
        """Stored models (optionally of one name), by name and version."""
        rows = self.models.query({"name": name} if name else {}, sort={"name": 1, "version": 1})
        return [_from_store(ModelDoc, row) for row in rows]

    # ---------------------------------------------------------------- overview and configuration
    def counts(self) -> dict[str, int]:
        """Numbers of successful and failed surfaces, predictions, models and jobflow outputs."""
        return {
            "surfaces_successful": self.surfaces.count({"state": "successful"}),
            "surfaces_failed": self.surfaces.count({"state": "failed"}),
            "predictions": self.predictions.count(),
            "models": self.models.count(),
            "job_outputs": self.job_store.count(),
        }

    def write_jobflow_config(self, path: Path | str) -> Path:
        """Write a jobflow settings file (for ``JOBFLOW_CONFIG_FILE``) whose JOB_STORE is this store.

        Workers that read it write their outputs where bandflow reads them. The file may hold a MongoDB
        password, so it is created readable by the owner only. Written atomically.
        """
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {"JOB_STORE": jsanitize(self.job_store.as_dict(), strict=True)}
        with replaced_atomically(path, mode=0o600) as tmp:
            tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        return path
