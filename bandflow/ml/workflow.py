"""The model and the results store: train on stored surfaces, predict into the store, import datasets,
fine-tune when new surfaces arrive.

Predictions are ``PredictionDoc``s keyed by (surface, model); they never touch the DFT ``SurfaceDoc``s.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pymatgen.core import Structure

from bandflow import __version__
from bandflow.bulk import library_names, load_bulk
from bandflow.dataset import first_problem, read_json_lines
from bandflow.errors import BandflowError
from bandflow.ml.data import SlabRecord
from bandflow.ml.model import ModelHyperparameters, SlabEnsemble, model_from_bytes, model_to_bytes
from bandflow.ml.predict import SurfacePrediction, predict_structures, predict_surfaces
from bandflow.ml.train import TrainConfig, TrainResult, train_model
from bandflow.ml.transfer import transfer_curves
from bandflow.schemas import ModelDoc, PredictionDoc, SurfaceDoc
from bandflow.store import BandflowStore
from bandflow.surfaces import SurfaceEntry, nonpolar_surfaces

MODEL_NAMES = {"lsoap": "lsoap-ipea", "soap": "soap-ipea"}
QUERY_KEYS = ("formula", "protocol", "chemsys", "n_cation_species", "source", "miller")


def parse_query(items: Sequence[str] | None) -> dict[str, Any]:
    """``["protocol=fast", "n_cation_species=1"]`` → keyword filters of ``BandflowStore.query_surfaces``."""
    query: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise BandflowError(f"query {item!r} is not KEY=VALUE (keys: {', '.join(QUERY_KEYS)})")
        if key not in QUERY_KEYS:
            raise BandflowError(f"unknown query key {key!r}; use one of {', '.join(QUERY_KEYS)}")
        if key == "n_cation_species":
            if not value.isdigit():
                raise BandflowError(f"n_cation_species must be a whole number, got {value!r}")
            query[key] = int(value)
        elif key == "miller":
            digits = value.replace(",", " ").split() if (" " in value or "," in value) else list(value)
            try:
                query[key] = tuple(int(d) for d in digits)
            except ValueError:
                raise BandflowError(f"miller must be three integers like 110 or 1,-1,0; got {value!r}") from None
            if len(query[key]) != 3:
                raise BandflowError(f"miller must be three integers like 110 or 1,-1,0; got {value!r}")
        else:
            query[key] = value
    return query


def surface_records(docs: Sequence[SurfaceDoc]) -> list[SlabRecord]:
    """Training records of stored surfaces: unrelaxed slab, IP, EA; grouped by the bulk's formula (so
    polymorphs of one compound fall into one split subset)."""
    return [
        SlabRecord(Structure.from_dict(doc.structure_unrelaxed), doc.ip, doc.ea, group=doc.formula, id=doc.surface_id)
        for doc in docs
    ]


def training_surfaces(store: BandflowStore, query: dict[str, Any]) -> list[SurfaceDoc]:
    """Successful stored surfaces matching ``query``, all from one protocol (IP/EA of different protocols
    are not comparable)."""
    docs = store.query_surfaces(**query, state="successful")
    if not docs:
        raise BandflowError(f"no successful stored surfaces match {query or 'the store'}; nothing to train on")
    protocols = sorted({d.protocol for d in docs})
    if len(protocols) > 1:
        raise BandflowError(
            f"the surfaces come from several protocols ({', '.join(protocols)}); choose one with --query protocol=NAME"
        )
    return docs


def flat_metrics(metrics: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    """{'test_ip_mae': ...} for the finite values of ``TrainResult.metrics``."""
    return {
        f"{subset}_{target}_{name}": value
        for subset, targets in metrics.items()
        for target, values in targets.items()
        for name, value in values.items()
        if math.isfinite(value)
    }


@dataclass
class StoredModel:
    """A model document of the store with its network (and the training result when just trained)."""

    doc: ModelDoc
    model: SlabEnsemble
    result: TrainResult | None = None


def _save(store: BandflowStore, result: TrainResult, docs: Sequence[SurfaceDoc], query: dict[str, Any],
          config: TrainConfig, name: str | None, parent: ModelDoc | None = None) -> ModelDoc:
    hp = result.model.hyperparameters
    training = {"query": {k: list(v) if isinstance(v, tuple) else v for k, v in query.items()},
                "protocol": docs[0].protocol, "split": config.split, "n_members": config.n_members,
                "seed": config.seed, "n_surfaces": len(docs)}
    doc = ModelDoc(
        name=name or (parent.name if parent else MODEL_NAMES[hp.descriptor]),
        descriptor=hp.descriptor,
        hyperparameters={**hp.as_dict(), "training": training},
        normalisation=asdict(result.model.scaling),
        training_surface_ids=sorted({d.surface_id for d in docs}),
        metrics=flat_metrics(result.metrics),
        parent_model_id=parent.model_id if parent else None,
        code_version=__version__,
    )
    return store.save_model(doc, model_to_bytes(result.model))


def train_from_store(
    store: BandflowStore,
    query: dict[str, Any] | None = None,
    hyperparameters: ModelHyperparameters | None = None,
    config: TrainConfig | None = None,
    name: str | None = None,
) -> StoredModel:
    """Train on the stored surfaces matching ``query`` and store the model (next version of ``name``)."""
    query = dict(query or {})
    config = config or TrainConfig()
    docs = training_surfaces(store, query)
    result = train_model(surface_records(docs), hyperparameters, config)
    return StoredModel(_save(store, result, docs, query, config, name), result.model, result)


def load_stored_model(store: BandflowStore, model_id: str | None = None) -> StoredModel:
    """A stored model by id (default: the newest)."""
    doc, weights = store.load_model(model_id)
    return StoredModel(doc, model_from_bytes(weights))


def surfaces_of(bulks: Sequence[str], max_index: int = 1, min_thickness: float = 10.0, vacuum: float = 15.0) -> list[SurfaceEntry]:
    """Nonpolar surfaces of library bulks or structure files."""
    entries = []
    for bulk in bulks:
        entries += nonpolar_surfaces(load_bulk(bulk), max_index=max_index, min_thickness=min_thickness, vacuum=vacuum)
    return entries


def surfaces_without_dft(
    store: BandflowStore, bulks: Sequence[str] | None = None, max_index: int = 1
) -> list[SurfaceEntry]:
    """Nonpolar surfaces of ``bulks`` (default: every library bulk) that no successful DFT result in the
    store covers."""
    computed = {d.surface_id for d in store.query_surfaces(state="successful")}
    return [e for e in surfaces_of(bulks or library_names(), max_index=max_index) if e.id not in computed]


def _prediction_doc(stored: StoredModel, prediction: SurfacePrediction, bulk_name: str, formula: str,
                    termination: str, structure: dict) -> PredictionDoc:
    return PredictionDoc(
        surface_id=prediction.id, bulk_name=bulk_name, formula=formula,
        miller_index=prediction.miller_index, termination=termination, structure_unrelaxed=structure,
        ip=prediction.ip, ea=prediction.ea, ip_std=prediction.ip_std, ea_std=prediction.ea_std,
        unseen_elements=prediction.unseen_elements, model_id=stored.doc.model_id, model_version=stored.doc.version,
        code_version=__version__,
    )


def predict_into_store(store: BandflowStore, stored: StoredModel, entries: Sequence[SurfaceEntry]) -> list[SurfacePrediction]:
    """Predict ``entries`` and upsert one ``PredictionDoc`` per surface (DFT documents are not touched)."""
    usable = [e for e in entries if e.nonpolar and e.slab is not None]
    predictions = predict_surfaces(stored.model, usable)
    docs = [_prediction_doc(stored, p, e.bulk_name, e.formula, str(e.termination), e.slab.as_dict())
            for p, e in zip(predictions, usable, strict=True)]
    store.upsert_predictions(docs)
    return predictions


@dataclass
class ImportReport:
    """Outcome of ``import_surfaces``: ids written and one message per rejected record."""

    n_records: int
    imported: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _validation_message(number: int, data: Any, exc: ValidationError) -> str:
    surface = data.get("surface_id") if isinstance(data, dict) else None
    label = f"record {number}" + (f" ({surface})" if surface else "")
    return f"{label}: {first_problem(exc)}"


def import_surfaces(store: BandflowStore, path: str | Path) -> ImportReport:
    """Import surface documents from JSON lines (``.jsonl`` or ``.jsonl.gz``, the ``bandflow export`` format).

    Every record is validated first (:func:`read_surface_records`); good records are written (marked
    ``source="import"``), each bad one is reported as one line naming the record and the field. An unreadable
    file writes nothing.
    """
    return write_surface_records(store, *read_surface_records(path))


def write_surface_records(store: BandflowStore, report: ImportReport, valid: list[SurfaceDoc]) -> ImportReport:
    """Store the documents :func:`read_surface_records` found valid and note their ids in ``report``."""
    for doc in valid:
        store.upsert_surface(doc)
        report.imported.append(doc.surface_id)
    return report


def read_surface_records(path: str | Path) -> tuple[ImportReport, list[SurfaceDoc]]:
    """The valid surface documents of a JSON-lines file (marked ``source="import"``) and a report naming each
    bad record; ``report.imported`` stays empty (nothing is written here)."""
    lines = read_json_lines(path)
    report = ImportReport(n_records=len(lines))
    valid: list[SurfaceDoc] = []
    for number, line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            report.rejected.append(f"record {number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            report.rejected.append(f"record {number}: not a JSON object")
            continue
        data = {**data, "source": "import"}
        try:
            doc = SurfaceDoc.model_validate(data)
            Structure.from_dict(doc.structure_unrelaxed)
        except ValidationError as exc:
            report.rejected.append(_validation_message(number, data, exc))
            continue
        except Exception as exc:  # pymatgen raises many types for a malformed structure dict
            report.rejected.append(f"record {number} ({data.get('surface_id')}): structure_unrelaxed: not a "
                                   f"pymatgen structure ({type(exc).__name__})")
            continue
        valid.append(doc)
    return report, valid


@dataclass
class RetrainOutcome:
    """The new model version (None when nothing changed) and what triggered it."""

    parent: ModelDoc
    stored: StoredModel | None
    new_surfaces: list[str]
    repredicted: int = 0
    seconds: float = 0.0


def retrain(
    store: BandflowStore, model_id: str | None = None, config: TrainConfig | None = None, n_jobs: int = 1,
    max_epochs: int | None = None,
) -> RetrainOutcome:
    """Fine-tune a stored model when surfaces were added (or updated) since it was trained, store the new
    version, and re-predict, under the new version, every surface the old one had predicted.

    The fine-tuning runs at most ``max_epochs`` epochs (default: the config's, capped at 100)."""
    started = time.perf_counter()
    parent = load_stored_model(store, model_id)
    training = parent.doc.hyperparameters.get("training") or {}
    query = parse_query([f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in (training.get("query") or {}).items()])
    if training.get("protocol") and "protocol" not in query:
        query["protocol"] = training["protocol"]
    docs = training_surfaces(store, query)
    known = set(parent.doc.training_surface_ids)
    trained_at = parent.doc.created_at.astimezone(UTC)
    changed = [d.surface_id for d in docs if d.surface_id not in known or d.updated_at.astimezone(UTC) > trained_at]
    if not changed:
        return RetrainOutcome(parent.doc, None, [], seconds=time.perf_counter() - started)
    base = config or TrainConfig(split=training.get("split", "compound"), n_members=len(parent.model.members),
                                 seed=int(training.get("seed", 0)), n_jobs=n_jobs)
    epochs = min(base.max_epochs, 100) if max_epochs is None else max_epochs
    fine_tune = replace(base, learning_rate=base.learning_rate / 4, max_epochs=epochs)
    result = train_model(surface_records(docs), config=fine_tune, initial=parent.model)
    saved = _save(store, result, docs, query, fine_tune, None, parent=parent.doc)
    stored = StoredModel(saved, result.model, result)
    old = store.query_predictions(model_id=parent.doc.model_id)
    if old:
        predictions = predict_structures(stored.model, [Structure.from_dict(p.structure_unrelaxed) for p in old],
                                         [p.surface_id for p in old], [tuple(p.miller_index) for p in old])
        new_docs = [_prediction_doc(stored, prediction, p.bulk_name, p.formula, p.termination, p.structure_unrelaxed)
                    for prediction, p in zip(predictions, old, strict=True)]
        store.upsert_predictions(new_docs)
    return RetrainOutcome(parent.doc, stored, changed, repredicted=len(old), seconds=time.perf_counter() - started)


def transfer_from_store(
    store: BandflowStore,
    model_id: str,
    fractions: Sequence[float] = (0.1, 0.2, 0.4, 0.8),
    query: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    repeats: int = 1,
) -> dict:
    """``transfer_curves`` of a stored source model on the stored target surfaces (default: ternary oxides
    of the source model's protocol), ``repeats`` times with other test compounds and seeds."""
    source = load_stored_model(store, model_id)
    query = dict(query if query is not None else {"n_cation_species": 2})
    protocol = (source.doc.hyperparameters.get("training") or {}).get("protocol")
    if protocol and "protocol" not in query:
        query["protocol"] = protocol
    docs = training_surfaces(store, query)
    result = transfer_curves(source.model, surface_records(docs), fractions, config or TrainConfig(n_members=1),
                             repeats=repeats)
    return {"source_model": source.doc.model_id, "query": {k: list(v) if isinstance(v, tuple) else v
                                                             for k, v in query.items()}, **result}
