"""Transfer learning from binary to ternary oxides (cf. Kiyohara, Hinuma & Oba 2024, fig. 4).

For growing fractions of the target (e.g. ternary) training data, three models are compared on one
fixed target test set of unseen compounds:

* ``L-SOAP fine-tuned``: the source L-SOAP model, fine-tuned (its element embeddings already map the
  new elements, because they are functions of elemental properties);
* ``L-SOAP from scratch``: the same architecture, fresh weights;
* ``SOAP from scratch``: one fixed channel per element (its descriptor grows with the element count and
  cannot reuse a model trained on other elements).

Two references go beside them, so that a curve can be judged: the source model as it is (no target
data) and the baseline, the mean IP/EA of the target surfaces each point may train on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures, SlabRecord, split_indices
from bandflow.ml.model import SlabEnsemble
from bandflow.ml.train import TrainConfig, predict_features, regression_metrics, train_model

METHODS = ("L-SOAP fine-tuned", "L-SOAP from scratch", "SOAP from scratch")
SOURCE_AS_IS = "source model, not fine-tuned"
BASELINE = "baseline: mean of the target training surfaces"


def transfer_curves(
    source: SlabEnsemble,
    records: Sequence[SlabRecord],
    fractions: Sequence[float] = (0.1, 0.2, 0.4, 0.8),
    config: TrainConfig | None = None,
    test_fraction: float = 0.25,
) -> dict:
    """Test metrics of the three methods for each fraction of the target training pool (JSON-ready)."""
    config = config or TrainConfig(n_members=1)
    if source.hyperparameters.descriptor != "lsoap":
        raise BandflowError("transfer needs an L-SOAP source model (a standard-SOAP model has no channels for new elements)")
    if any(not 0 < f <= 1 for f in fractions):
        raise BandflowError(f"fractions must lie in (0, 1], got {list(fractions)}")
    outer = split_indices([r.group for r in records], config.split, val_fraction=0.0, test_fraction=test_fraction,
                          seed=config.seed)
    test, pool = outer["test"], outer["train"]
    if len(pool) < 2:
        raise BandflowError(f"{len(records)} target surfaces are too few for a transfer study")
    hp = source.hyperparameters
    features = SlabFeatures.from_structures([r.structure for r in records], hp.soap)
    rng = np.random.default_rng(config.seed)
    shuffled = rng.permutation(pool)
    fine_tune = replace(config, learning_rate=config.learning_rate / 4)
    setups = {
        METHODS[0]: ({"initial": source}, fine_tune),
        METHODS[1]: ({"hyperparameters": hp}, config),
        METHODS[2]: ({"hyperparameters": replace(hp, descriptor="soap", soap_species=())}, config),
    }
    curves = {method: [] for method in (*METHODS, SOURCE_AS_IS, BASELINE)}
    targets = {name: np.array([getattr(r, name) for r in records], float) for name in ("ip", "ea")}
    as_is = predict_features(source, features, np.asarray(test))
    as_is_metrics = {name: regression_metrics(values[test], as_is[name]) for name, values in targets.items()}
    for fraction in sorted(fractions):
        chosen = shuffled[: max(2, int(round(fraction * len(pool))))]
        n_val = max(1, int(round(config.val_fraction * len(chosen))))
        split = {"train": np.sort(chosen[n_val:]), "val": np.sort(chosen[:n_val]), "test": test}
        for method, (arguments, method_config) in setups.items():
            result = train_model(records, config=method_config, features=features, split=split, **arguments)
            curves[method].append({"fraction": float(fraction), "n_train": int(len(split["train"])),
                                   "test": result.metrics["test"], "train": result.metrics["train"]})
        curves[SOURCE_AS_IS].append({"fraction": float(fraction), "n_train": 0, "test": as_is_metrics})
        curves[BASELINE].append({"fraction": float(fraction), "n_train": int(len(chosen)), "test": {
            name: regression_metrics(values[test], np.full(len(test), values[chosen].mean()))
            for name, values in targets.items()}})
    return {
        "n_target": len(records),
        "n_test": int(len(test)),
        "test_groups": sorted({records[i].group for i in test}),
        "curves": [{"method": method, "points": points} for method, points in curves.items()],
    }
