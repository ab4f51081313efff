"""Training time and screening throughput of the L-SOAP attention network (default hyperparameters).

Training: ``--n-slabs`` synthetic slabs of about 100 atoms (nonpolar surfaces of binary library oxides,
repeated in plane to ≥ 80 atoms, randomly strained and rattled; targets from ``bandflow.ml.synthetic``),
compound split, the default ``TrainConfig`` (5 members, early stopping) with ``--jobs`` members at a time.
Reports featurisation and training time and extrapolates linearly to ``--target-slabs`` (time per epoch ∝
number of atoms; the number of epochs taken as measured: an assumption, stated in the output).

Screening: every library bulk → nonpolar surfaces up to ``--max-index`` (``bandflow.surfaces``) →
ensemble prediction with uncertainty, timed end to end; prints surfaces per minute.
Usage: ``python benchmarks/train_speed.py [--n-slabs 600] [--jobs 2] [--max-index 2]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from bandflow.bulk import library_names, load_bulk
from bandflow.ml.data import SlabFeatures
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.predict import predict_surfaces
from bandflow.ml.synthetic import synthetic_records
from bandflow.ml.train import TrainConfig, train_model
from bandflow.surfaces import nonpolar_surfaces

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

    bulks = [load_bulk(name) for name in library_names()]
    start = time.perf_counter()
    predictions = []
    for bulk in bulks:
        predictions += predict_surfaces(result.model, nonpolar_surfaces(bulk, max_index=args.max_index))
    screening = time.perf_counter() - start
    print(f"screening: {len(bulks)} bulks → {len(predictions)} surfaces (max index {args.max_index}) predicted "
          f"with uncertainty in {screening:.1f} s")
    print(f"surfaces_per_minute={len(predictions) / screening * 60:.0f}")
    print(f"train_minutes_{args.target_slabs}={(featurise + train) * scale / 60:.2f}")


if __name__ == "__main__":
    main()
