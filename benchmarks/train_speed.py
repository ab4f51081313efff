"""Training time and screening throughput of the L-SOAP attention network (default hyperparameters).

Training: ``--n-slabs`` synthetic slabs of about 100 atoms (nonpolar surfaces of binary library oxides,
repeated in plane to ≥ 80 atoms, randomly strained and rattled; targets from ``bandflow.ml.synthetic``),
compound split, the default ``TrainConfig`` (5 members, early stopping) with ``--jobs`` members at a time.
Reports featurisation and training time and extrapolates linearly to ``--target-slabs`` (time per epoch ∝
number of atoms; the number of epochs taken as measured: an assumption, stated in the output).

Screening: every library bulk → nonpolar surfaces up to ``--max-index`` (``bandflow.surfaces``) →
ensemble prediction with uncertainty → one ``PredictionDoc`` per surface in an embedded (montydb) store,
timed end to end (``bandflow predict``'s path); prints surfaces per minute.
Usage: ``python benchmarks/train_speed.py [--n-slabs 600] [--jobs 2] [--max-index 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bandflow import __version__
from bandflow.bulk import library_names
from bandflow.ml.data import SlabFeatures
from bandflow.ml.model import ModelHyperparameters, model_to_bytes
from bandflow.ml.synthetic import synthetic_records
from bandflow.ml.train import TrainConfig, train_model
from bandflow.ml.workflow import load_stored_model, predict_into_store, surfaces_of
from bandflow.schemas import ModelDoc
from bandflow.store import BandflowStore

BULKS = ("MgO", "CaO", "SrO", "BaO", "CdO", "ZnO", "BeO", "TiO2-rutile", "SnO2", "GeO2", "CeO2", "ThO2", "Li2O",
         "Al2O3", "Ga2O3-beta", "In2O3", "Sc2O3", "Y2O3", "La2O3", "HfO2-monoclinic", "ZrO2-monoclinic",
         "TiO2-anatase", "Cu2O", "Ag2O", "Na2O", "K2O", "PbO", "SnO")


def synthetic_slabs(n_slabs: int):
    one_each = synthetic_records(BULKS, n_variants=1, min_atoms=80, min_thickness=10.0, vacuum=12.0)
    variants = int(np.ceil(n_slabs / len(one_each)))
    records = synthetic_records(BULKS, n_variants=variants, min_atoms=80, min_thickness=10.0, vacuum=12.0, seed=1)
    rng = np.random.default_rng(0)
    return [records[i] for i in np.sort(rng.choice(len(records), size=min(n_slabs, len(records)), replace=False))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-slabs", type=int, default=600)
    parser.add_argument("--target-slabs", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=2, help="ensemble members trained at once (processes)")
    parser.add_argument("--max-index", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    hp = ModelHyperparameters()
    config = TrainConfig(n_jobs=args.jobs)

    records = synthetic_slabs(args.n_slabs)
    n_atoms = sum(len(r.structure) for r in records)
    start = time.perf_counter()
    features = SlabFeatures.from_structures([r.structure for r in records], hp.soap)
    featurise = time.perf_counter() - start
    start = time.perf_counter()
    result = train_model(records, hp, config, features=features)
    train = time.perf_counter() - start
    scale = args.target_slabs / len(records)
    test = result.metrics["test"]
    print(f"training: {len(records)} slabs, {n_atoms} atoms ({n_atoms / len(records):.0f} per slab), "
          f"{config.n_members} members, {args.jobs} at a time, 1 thread each")
    print(f"  featurise {featurise:.1f} s, train {train:.1f} s (epochs {result.epochs}), total {featurise + train:.1f} s")
    print(f"  test MAE IP {test['ip']['mae']:.3f} eV, EA {test['ea']['mae']:.3f} eV (compound split)")
    print(f"  extrapolated to {args.target_slabs} slabs (linear in atoms, same epochs): "
          f"{(featurise + train) * scale / 60:.1f} min")

    with tempfile.TemporaryDirectory(prefix="bandflow-bench-") as tmp:
        store = BandflowStore.embedded(Path(tmp))
        doc = ModelDoc(name="bench", descriptor="lsoap", code_version=__version__)
        stored = load_stored_model(store, store.save_model(doc, model_to_bytes(result.model)).model_id)
        names = library_names()
        start = time.perf_counter()
        entries = surfaces_of(names, max_index=args.max_index)
        enumerate_s = time.perf_counter() - start
        predictions = predict_into_store(store, stored, entries)
        screening = time.perf_counter() - start
        assert len(store.query_predictions(model_id=stored.doc.model_id)) == len(predictions)
        store.close()
    print(f"screening: {len(names)} bulks → {len(predictions)} surfaces (max index {args.max_index}) → stored "
          f"predictions with uncertainty in {screening:.1f} s (enumeration {enumerate_s:.1f} s)")
    print(f"surfaces_per_minute={len(predictions) / screening * 60:.0f}")
    print(f"train_minutes_{args.target_slabs}={(featurise + train) * scale / 60:.2f}")


if __name__ == "__main__":
    main()
