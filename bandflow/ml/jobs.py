"""jobflow jobs of the model, so training can follow DFT jobs in a flow or run on a FireWorks worker."""

from __future__ import annotations

from typing import Any

from jobflow import job

from bandflow.ml.descriptor import SoapSettings
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.train import TrainConfig
from bandflow.ml.workflow import train_from_store
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
