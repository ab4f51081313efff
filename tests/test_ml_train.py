"""Training on synthetic band edges: splits, learning, metrics, parity plot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures, SlabRecord, split_indices
from bandflow.ml.descriptor import SoapSettings
from bandflow.ml.figures import parity_plot
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.synthetic import synthetic_records
from bandflow.ml.train import TrainConfig, regression_metrics, train_model

HYPERPARAMETERS = ModelHyperparameters(soap=SoapSettings(r_cut=5.0, n_max=4, l_max=3), n_pseudo_species=3, hidden=32)


@pytest.fixture(scope="module")
def records():
    return synthetic_records(n_variants=3, seed=1)  # 13 binary oxides, about 100 slabs


@pytest.fixture(scope="module")
def features(records):
    return SlabFeatures.from_structures([r.structure for r in records], HYPERPARAMETERS.soap)


def _spread(records):
    return np.std([r.ip for r in records]), np.std([r.ea for r in records])


def test_learns_synthetic_band_edges_random_split(records, features, tmp_path):
    result = train_model(records, HYPERPARAMETERS, TrainConfig(n_members=1, split="random", max_epochs=150, patience=40, n_threads=1),
                         features=features)
    ip_spread, ea_spread = _spread(records)
    test = result.metrics["test"]
    assert test["ip"]["mae"] < 0.15 * ip_spread
    assert test["ea"]["mae"] < 0.15 * ea_spread
    assert test["ip"]["r2"] > 0.9 and test["ea"]["r2"] > 0.9
    assert set(result.metrics) == {"train", "val", "test"}
    assert parity_plot(result.predictions, tmp_path / "parity.png").stat().st_size > 1000


def test_generalises_to_unseen_compounds(records, features):
    result = train_model(records, HYPERPARAMETERS, TrainConfig(n_members=1, split="compound", max_epochs=150, patience=40, n_threads=1),
                         features=features)
    groups = {name: {records[i].group for i in idx} for name, idx in result.split.items()}
    assert not groups["test"] & groups["train"] and not groups["val"] & groups["train"]
    ip_spread, ea_spread = _spread(records)
    assert result.metrics["test"]["ip"]["mae"] < 0.5 * ip_spread
    assert result.metrics["test"]["ea"]["mae"] < 0.5 * ea_spread


def test_split_modes():
    groups = ["A"] * 5 + ["B"] * 5 + ["C"] * 5 + ["D"] * 5 + ["E"] * 5
    compound = split_indices(groups, "compound", 0.2, 0.2, seed=4)
    assert sorted(np.concatenate(list(compound.values()))) == list(range(25))
    seen = [{groups[i] for i in idx} for idx in compound.values()]
    assert all(not (a & b) for k, a in enumerate(seen) for b in seen[k + 1 :])
    random = split_indices(groups, "random", 0.2, 0.2, seed=4)
    assert [len(random[n]) for n in ("train", "val", "test")] == [15, 5, 5]
    assert split_indices(groups, "random", 0.2, 0.2, seed=4)["test"].tolist() == random["test"].tolist()
    with pytest.raises(BandflowError, match="too few"):
        split_indices(["A", "A", "B"], "compound", 0.3, 0.3)
    with pytest.raises(BandflowError, match="unknown split"):
        split_indices(groups, "by-colour")


def test_bad_records_rejected(records):
    missing = SlabRecord(records[0].structure, ip=None, ea=3.0, group="X", id="slab-without-ip")
    with pytest.raises(BandflowError, match="slab-without-ip.*ip"):
        train_model([missing, *records[1:5]], HYPERPARAMETERS, TrainConfig(n_members=1, max_epochs=1))
    inverted = SlabRecord(records[0].structure, ip=3.0, ea=4.0, group="X", id="inverted")
    with pytest.raises(BandflowError, match="EA > IP"):
        train_model([inverted, *records[1:5]], HYPERPARAMETERS, TrainConfig(n_members=1, max_epochs=1))


def test_regression_metrics():
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 2.5]))
    assert metrics["mae"] == pytest.approx(1 / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(0.5 / 3))
    assert metrics["r2"] == pytest.approx(1 - 0.5 / 2)
    assert math.isnan(regression_metrics(np.zeros(0), np.zeros(0))["mae"])


def test_parallel_members_equal_serial(records, features):
    """Members trained in worker processes get exactly the weights of serial training (same seeds)."""
    small = [records[i] for i in range(0, len(records), 4)]
    config = TrainConfig(n_members=2, max_epochs=3, split="random")
    serial = train_model(small, HYPERPARAMETERS, config)
    parallel = train_model(small, HYPERPARAMETERS, TrainConfig(**{**config.__dict__, "n_jobs": 2}))
    for a, b in zip(serial.model.members, parallel.model.members, strict=True):
        for name, tensor in a.state_dict().items():
            assert torch.equal(tensor, b.state_dict()[name]), name
    assert serial.metrics["test"]["ip"]["mae"] == parallel.metrics["test"]["ip"]["mae"]


def test_leave_one_compound_out(records):
    from bandflow.ml.crossval import compound_cross_validation

    chosen = [r for r in records if r.group in {"MgO", "CaO", "ZnO", "SrO", "BaO", "CdO"}]
    assert len({r.group for r in chosen}) >= 5
    result = compound_cross_validation(
        chosen, HYPERPARAMETERS, TrainConfig(n_members=1, max_epochs=120, patience=30, val_fraction=0.2), progress=False)
    assert result["n_compounds"] == len({r.group for r in chosen}) == len(result["folds"])
    for fold in result["folds"]:
        assert fold["compound"] not in fold["val_compounds"] and fold["val_compounds"]
        assert fold["n_train"] + sum(r.group in fold["val_compounds"] for r in chosen) + fold["n_surfaces"] == len(chosen)
    # every surface predicted once, by the fold that held its compound out, and the baseline is that fold's mean
    assert [s["id"] for s in result["surfaces"]] == [r.id for r in chosen]
    assert all(math.isfinite(s["ip"]) and math.isfinite(s["ea"]) and s["ea"] <= s["ip"] for s in result["surfaces"])
    for fold in result["folds"]:
        others = [r.ip for r in chosen if r.group != fold["compound"] and r.group not in fold["val_compounds"]]
        held = [s for s in result["surfaces"] if s["compound"] == fold["compound"]]
        assert all(s["ip_baseline"] == pytest.approx(np.mean(others)) for s in held)
    # the synthetic band edges are learnable across compounds: the model beats the no-model baseline
    assert result["overall"]["model"]["ip"]["mae"] < result["overall"]["baseline"]["ip"]["mae"]


def test_cross_validation_needs_three_compounds(records):
    from bandflow.ml.crossval import compound_cross_validation

    with pytest.raises(BandflowError, match="at least 3 compounds"):
        compound_cross_validation([r for r in records if r.group in {"MgO", "CaO"}], HYPERPARAMETERS, progress=False)


def test_three_compounds_train_on_one_compounds_constant_gap(records):
    """With 3 compounds each fold trains on one: its gaps are one bulk gap (spread ~1e-16 eV), which once
    overflowed the gap head's starting offset (softplus⁻¹ of mean/spread)."""
    from bandflow.ml.crossval import compound_cross_validation
    from bandflow.ml.model import _inverse_softplus
    from bandflow.ml.train import _target_spread

    gaps = {"MgO": 7.8, "CaO": 7.1, "ZnO": 3.4}  # DFT data: every surface of a compound has its bulk gap
    chosen = [dataclasses.replace(r, ea=r.ip - gaps[r.group]) for r in records if r.group in gaps]
    train_gaps = np.array([r.ip - r.ea for r in chosen if r.group == "MgO"])
    assert train_gaps.std() < 1e-6  # the case: one compound, one gap
    assert _target_spread(train_gaps) == 1.0 and _target_spread(np.array([1.0, 5.0])) == 2.0
    assert _target_spread(np.array([1.0, 2.0, 3.0])) == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert _inverse_softplus(1e16) == 1e16 and math.log1p(math.exp(_inverse_softplus(0.5))) == pytest.approx(0.5)
    result = compound_cross_validation(chosen, HYPERPARAMETERS, TrainConfig(n_members=1, max_epochs=5), progress=False)
    assert result["n_compounds"] == 3
    assert all(math.isfinite(s["ip"]) and math.isfinite(s["ea"]) for s in result["surfaces"])
