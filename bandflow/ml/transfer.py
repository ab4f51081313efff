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

import math
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
    repeats: int = 1,
) -> dict:
    """Test metrics of the three methods for each fraction of the target training pool (JSON-ready).

    With ``repeats`` > 1 the whole study runs again with seeds ``config.seed + 1, ...``: other test
    compounds, another order of the training pool, other initial weights. Each point then holds the mean
    of every metric over the repeats, the per-repeat values (``test_each``) and the MAE range
    (``test_range``), because with a few target compounds one split says little.
    """
    config = config or TrainConfig(n_members=1)
    if source.hyperparameters.descriptor != "lsoap":
        raise BandflowError("transfer needs an L-SOAP source model (a standard-SOAP model has no channels for new elements)")
    if any(not 0 < f <= 1 for f in fractions):
        raise BandflowError(f"fractions must lie in (0, 1], got {list(fractions)}")
    if repeats < 1:
        raise BandflowError(f"repeats must be at least 1, got {repeats}")
    features = SlabFeatures.from_structures([r.structure for r in records], source.hyperparameters.soap)
    runs = [_one_split(source, records, features, sorted(fractions), replace(config, seed=config.seed + k),
                       test_fraction) for k in range(repeats)]
    splits = [{"seed": config.seed + k, "n_test": run["n_test"], "test_groups": run["test_groups"]}
              for k, run in enumerate(runs)]
    curves = [{"method": method, "points": [_mean_point([run["curves"][method][i] for run in runs])
                                            for i in range(len(fractions))]}
              for method in runs[0]["curves"]]
    return {
        "n_target": len(records),
        "repeats": repeats,
        "n_test": int(round(float(np.mean([s["n_test"] for s in splits])))),
        "test_groups": sorted({g for s in splits for g in s["test_groups"]}),
        "splits": splits,
        "curves": curves,
    }


def _one_split(
    source: SlabEnsemble, records: Sequence[SlabRecord], features: SlabFeatures, fractions: Sequence[float],
    config: TrainConfig, test_fraction: float,
) -> dict:
    """One transfer study: the test compounds, pool order and initial weights all drawn from ``config.seed``."""
    outer = split_indices([r.group for r in records], config.split, val_fraction=0.0, test_fraction=test_fraction,
                          seed=config.seed)
    test, pool = outer["test"], outer["train"]
    if len(pool) < 2:
        raise BandflowError(f"{len(records)} target surfaces are too few for a transfer study")
    hp = source.hyperparameters
    shuffled = np.random.default_rng(config.seed).permutation(pool)
    fine_tune = replace(config, learning_rate=config.learning_rate / 4)
    setups = {
        METHODS[0]: ({"initial": source}, fine_tune),
        METHODS[1]: ({"hyperparameters": hp}, config),
        METHODS[2]: ({"hyperparameters": replace(hp, descriptor="soap", soap_species=())}, config),
    }
    curves: dict[str, list[dict]] = {method: [] for method in (*METHODS, SOURCE_AS_IS, BASELINE)}
    targets = {name: np.array([getattr(r, name) for r in records], float) for name in ("ip", "ea")}
    as_is = predict_features(source, features, np.asarray(test))
    as_is_metrics = {name: regression_metrics(values[test], as_is[name]) for name, values in targets.items()}
    for fraction in fractions:
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
    return {"n_test": int(len(test)), "test_groups": sorted({records[i].group for i in test}), "curves": curves}


def _mean_point(points: Sequence[dict]) -> dict:
    """One point of a curve over the repeats: every metric averaged (NaN only where all are NaN), the
    per-repeat test metrics and the range of the test MAE."""
    def mean(key: str) -> dict[str, dict[str, float]]:
        return {target: {name: _nanmean([p[key][target][name] for p in points]) for name in points[0][key][target]}
                for target in points[0][key]}

    point = {"fraction": points[0]["fraction"], "n_train": int(round(float(np.mean([p["n_train"] for p in points])))),
             "test": mean("test"), "test_each": [p["test"] for p in points],
             "test_range": {target: [min(p["test"][target]["mae"] for p in points),
                                     max(p["test"][target]["mae"] for p in points)] for target in points[0]["test"]}}
    if "train" in points[0]:
        point["train"] = mean("train")
    return point


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def transfer_verdict(result: dict) -> dict[str, dict]:
    """Whether a learnt method beats both references, per target, at the largest share of the pool.

    The comparison is paired: in each repeat the method and the references are tested on the same held-out
    compounds, so the method must beat the better reference of *that* repeat. It "helps" only where it does
    so in every repeat. Returns, per target: the share and surfaces trained on, the learnt method with the
    lowest mean test MAE and that MAE, the reference with the lowest mean MAE and its MAE, the repeats won
    and run, and the mean paired gain in eV (positive: the method is better).
    """
    curves = {curve["method"]: curve["points"][-1] for curve in result["curves"]}
    if SOURCE_AS_IS not in curves or BASELINE not in curves:
        raise BandflowError("a transfer verdict needs both reference curves (source model as is, baseline)")
    references = (curves[SOURCE_AS_IS], curves[BASELINE])
    learnt = {method: point for method, point in curves.items() if method not in (SOURCE_AS_IS, BASELINE)}
    if not learnt:
        raise BandflowError("a transfer verdict needs at least one learnt method")

    # per repeat where every curve has its repeats (an older metrics file: the means, as one repeat)
    paired = all("test_each" in p for p in curves.values()) and len({len(p["test_each"]) for p in curves.values()}) == 1

    def each(point: dict, target: str) -> list[float]:
        runs = point["test_each"] if paired else [point["test"]]
        return [math.inf if math.isnan(mae := run[target]["mae"]) else mae for run in runs]  # NaN: no score

    def mean(method: str, target: str) -> float:
        value = curves[method]["test"][target]["mae"]
        return math.inf if math.isnan(value) else value

    verdict = {}
    for target in ("ip", "ea"):
        method = min(learnt, key=lambda m: mean(m, target))
        reference = min((SOURCE_AS_IS, BASELINE), key=lambda m: mean(m, target))
        best_reference = [min(pair) for pair in zip(*(each(p, target) for p in references), strict=True)]
        gains = [ref - mine if math.isfinite(ref - mine) else math.nan
                 for ref, mine in zip(best_reference, each(learnt[method], target), strict=True)]
        verdict[target] = {
            "fraction": curves[method]["fraction"], "n_train": curves[method]["n_train"],
            "method": method, "mae": curves[method]["test"][target]["mae"],
            "reference": reference, "reference_mae": curves[reference]["test"][target]["mae"],
            "wins": sum(gain > 0 for gain in gains), "repeats": len(gains), "gain": _nanmean(gains),
            "helps": all(gain > 0 for gain in gains),
        }
    return verdict


def verdict_sentence(verdict: dict[str, dict]) -> str:
    """The verdict of :func:`transfer_verdict` in words, one clause per target."""
    first = next(iter(verdict.values()))
    clauses = []
    for target, v in verdict.items():
        # a gain that rounds to zero is shown as +0.00, not -0.00 (round() keeps the sign of -0.003; + 0.0 drops it)
        clauses.append(
            f"{target.upper()}: {v['method']}, the best learnt method ({v['mae']:.2f} eV against "
            f"{v['reference_mae']:.2f} eV for the best reference, {v['reference']}), beats the better reference on "
            f"the same test compounds in {v['wins']} of {v['repeats']} repeat{'s' if v['repeats'] > 1 else ''} "
            f"(mean gain {round(v['gain'], 2) + 0.0:+.2f} eV): {'it helps' if v['helps'] else 'it does not help yet'}")
    caution = " One test set says little; run more repeats." if first["repeats"] == 1 else ""
    return (f"At {first['fraction']:.0%} of the pool ({first['n_train']} surfaces): " + "; ".join(clauses) + "."
            + caution)
