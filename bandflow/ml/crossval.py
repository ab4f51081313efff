"""Leave-one-compound-out cross-validation: the honest error for compounds the model has never seen.

With a few dozen compounds a single compound-grouped test split holds one or two compounds, and its MAE
says more about those compounds than about the model. Here every compound is the test set once: the
model is trained on all other compounds (early stopping on a validation subset of *other* whole
compounds) and predicts the held-out one. Beside it stands the baseline a user has without any model,
the mean IP and EA of the training compounds, so the table shows what the model adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures, SlabRecord, split_indices
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.train import TrainConfig, regression_metrics, train_model

#: The held-out compound needs at least this many other compounds: some to train on, one to validate on.
MIN_COMPOUNDS = 3


def compound_cross_validation(
    records: Sequence[SlabRecord],
    hyperparameters: ModelHyperparameters | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> dict:
    """Out-of-compound predictions and metrics of the model and of the training-mean baseline (JSON-ready).

    ``config.val_fraction`` sets the share of the remaining compounds used for early stopping in each
    fold; ``config.split`` is ignored (the folds are compounds by construction). Every fold is handed all
    records, so standard SOAP gets a channel per element of all of them (a held-out compound's own element
    has an untrained channel).
    """
    config = config or TrainConfig(n_members=3)
    hp = hyperparameters or ModelHyperparameters()
    groups = [r.group for r in records]
    compounds = sorted(set(groups))
    if len(compounds) < MIN_COMPOUNDS:
        raise BandflowError(f"cross-validation needs at least {MIN_COMPOUNDS} compounds, got {len(compounds)}"
                            f" ({', '.join(compounds) or 'none'})")
    features = SlabFeatures.from_structures([r.structure for r in records], hp.soap)
    labels = np.asarray(groups)
    ip = np.array([r.ip for r in records], float)
    ea = np.array([r.ea for r in records], float)
    predicted = {name: np.full(len(records), np.nan) for name in ("ip", "ea", "ip_std", "ea_std", "ip_baseline", "ea_baseline")}
    folds = []
    for compound in tqdm(compounds, desc="compounds", unit="fold", disable=not progress):
        test = np.flatnonzero(labels == compound)
        rest = np.flatnonzero(labels != compound)
        inner = split_indices(labels[rest].tolist(), "compound", val_fraction=config.val_fraction, test_fraction=0.0,
                              seed=config.seed)
        split = {"train": rest[inner["train"]], "val": rest[inner["val"]], "test": test}
        result = train_model(records, hyperparameters=hp, config=config, features=features, split=split)
        rows = result.predictions["test"]
        for name in ("ip", "ea", "ip_std", "ea_std"):
            predicted[name][test] = rows[name]
        predicted["ip_baseline"][test] = ip[split["train"]].mean()
        predicted["ea_baseline"][test] = ea[split["train"]].mean()
        folds.append({
            "compound": compound, "n_surfaces": int(len(test)), "n_train": int(len(split["train"])),
            "val_compounds": sorted(set(labels[split["val"]].tolist())), "epochs": result.epochs,
            "model": result.metrics["test"],
            "baseline": {"ip": regression_metrics(ip[test], predicted["ip_baseline"][test]),
                         "ea": regression_metrics(ea[test], predicted["ea_baseline"][test])},
        })
    overall = {
        "model": {"ip": regression_metrics(ip, predicted["ip"]), "ea": regression_metrics(ea, predicted["ea"])},
        "baseline": {"ip": regression_metrics(ip, predicted["ip_baseline"]),
                     "ea": regression_metrics(ea, predicted["ea_baseline"])},
    }
    surfaces = [
        {"id": record.id, "compound": record.group, "ip_true": float(ip[i]), "ea_true": float(ea[i]),
         **{name: float(values[i]) for name, values in predicted.items()}}
        for i, record in enumerate(records)
    ]
    return {"descriptor": hp.descriptor, "n_surfaces": len(records), "n_compounds": len(compounds),
            "n_members": config.n_members, "overall": overall, "folds": folds, "surfaces": surfaces}
