"""Predictions of a trained ensemble: IP, EA and their uncertainty for slabs, surfaces or whole bulks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from bandflow.bulk import BulkOxide, load_bulk
from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures
from bandflow.ml.model import SlabEnsemble
from bandflow.ml.train import predict_features
from bandflow.surfaces import SurfaceEntry, nonpolar_surfaces


@dataclass(frozen=True)
class SurfacePrediction:
    """Ensemble mean and standard deviation (eV) for one slab; ``unseen_elements`` were not in training."""

    id: str
    formula: str
    miller_index: tuple[int, int, int] | None
    ip: float
    ea: float
    ip_std: float
    ea_std: float
    unseen_elements: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return self.ip - self.ea

    def as_dict(self) -> dict:
        out = asdict(self)
        out["miller_index"] = list(self.miller_index) if self.miller_index else None
        return out


def predict_structures(
    model: SlabEnsemble,
    slabs: Sequence[Structure],
    ids: Sequence[str] | None = None,
    miller_indices: Sequence[tuple[int, int, int] | None] | None = None,
) -> list[SurfacePrediction]:
    """Predict every slab (unrelaxed, vacuum along c) with ``model``."""
    if not slabs:
        return []
    ids = list(ids) if ids is not None else [f"slab-{i}" for i in range(len(slabs))]
    millers = list(miller_indices) if miller_indices is not None else [None] * len(slabs)
    if len(ids) != len(slabs) or len(millers) != len(slabs):
        raise BandflowError("predict_structures: ids and miller_indices must match the slabs one to one")
    features = SlabFeatures.from_structures(slabs, model.hyperparameters.soap)
    values = predict_features(model, features, np.arange(len(slabs)))
    predictions = []
    for i, slab in enumerate(slabs):
        fields = {name: float(values[name][i]) for name in ("ip", "ea", "ip_std", "ea_std")}
        if not all(np.isfinite(list(fields.values()))):
            raise BandflowError(f"the model gave a non-finite prediction for {ids[i]}")
        predictions.append(SurfacePrediction(
            id=ids[i], formula=slab.composition.reduced_formula, miller_index=millers[i],
            unseen_elements=model.unseen_elements(slab.atomic_numbers), **fields,
        ))
    return predictions


def predict_surfaces(model: SlabEnsemble, entries: Sequence[SurfaceEntry]) -> list[SurfacePrediction]:
    """Predict the nonpolar entries of ``bandflow.surfaces.enumerate_surfaces``."""
    usable = [e for e in entries if e.nonpolar and e.slab is not None]
    predictions = predict_structures(
        model, [e.slab for e in usable], [e.id for e in usable], [tuple(e.miller_index) for e in usable]
    )
    return [
        SurfacePrediction(**{**asdict(p), "formula": e.formula, "miller_index": tuple(e.miller_index)})
        for p, e in zip(predictions, usable, strict=True)
    ]


def predict_bulk(
    model: SlabEnsemble,
    bulk: str | Path | BulkOxide | Structure,
    max_index: int = 1,
    min_thickness: float = 10.0,
    vacuum: float = 15.0,
) -> list[SurfacePrediction]:
    """Enumerate the nonpolar surfaces of ``bulk`` (library name, file or structure) and predict them all."""
    if isinstance(bulk, str | Path):
        bulk = load_bulk(bulk)
    entries = nonpolar_surfaces(bulk, max_index=max_index, min_thickness=min_thickness, vacuum=vacuum)
    return predict_surfaces(model, entries)
