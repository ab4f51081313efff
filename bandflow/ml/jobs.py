"""jobflow jobs of the model, so training can follow DFT jobs in a flow or run on a FireWorks worker."""

from __future__ import annotations

from typing import Any

from jobflow import job

from bandflow.ml.descriptor import SoapSettings
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.train import TrainConfig
from bandflow.ml.workflow import retrain, train_from_store
from bandflow.store import BandflowStore


@job
def train_model_job(
    query: dict[str, Any] | None = None,
    descriptor: str = "lsoap",
    split: str = "compound",
    n_members: int = 5,
    name: str | None = None,
    soap: dict[str, Any] | None = None,
    max_epochs: int = 300,
) -> dict[str, Any]:
    """Train on the surfaces of the configured results store and save the model there.

    Returns ``model_id``, ``version`` and ``metrics`` (train/val/test → ip/ea → mae/rmse/r2).
    """
    hyperparameters = ModelHyperparameters(descriptor=descriptor, soap=SoapSettings(**(soap or {})))
    config = TrainConfig(split=split, n_members=n_members, max_epochs=max_epochs)
    with BandflowStore.from_settings() as store:
        stored = train_from_store(store, query, hyperparameters, config, name)
    return {"model_id": stored.doc.model_id, "version": stored.doc.version, "metrics": stored.result.metrics}


@job
def retrain_model_job(model_id: str | None = None, max_epochs: int | None = None) -> dict[str, Any]:
    """Fine-tune the stored model (default: the newest) on surfaces added since it was trained, store the
    next version and re-predict what the old version had predicted; nothing when it is up to date.

    Add it after a DFT campaign's flow (e.g. new ternary surfaces) so the model follows the data. Returns
    ``parent_model_id``, ``model_id`` (None when up to date), ``new_surfaces``, ``repredicted``, ``metrics``.
    """
    with BandflowStore.from_settings() as store:
        outcome = retrain(store, model_id, max_epochs=max_epochs)
    stored = outcome.stored
    return {
        "parent_model_id": outcome.parent.model_id,
        "model_id": stored.doc.model_id if stored else None,
        "new_surfaces": outcome.new_surfaces,
        "repredicted": outcome.repredicted,
        "metrics": stored.result.metrics if stored and stored.result else None,
    }
