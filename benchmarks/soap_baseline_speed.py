"""Standard-SOAP baseline speed: gathered pair weights and scattered features vs one-hot contractions.

Standard SOAP has one channel per element, so its first layer's weights per element pair can be picked
out of the layer (``SlabNet._channel_pair_weights``) instead of contracted with one-hot channel vectors
(the route L-SOAP's learnable embeddings need). This times one training step's worth of work, forward and
backward, of the network's first layer on the committed binary reference slabs (``data/reference``), both
routes side by side (interleaved, best of ``--repeats``, one thread), and L-SOAP's for scale:

* ``soap-gather``: standard SOAP, channels of every element of the slabs, gathered pair weights;
* ``soap-contract``: the same network and batches, one-hot contraction (the route before the gather);
* ``lsoap``: L-SOAP with the default 4 pseudo-species (its contraction is small).

And the explicit standard-SOAP features of the same batches (what the feature scaling of every ensemble
member forms once): ``features-scatter`` (``soap_from_pair_spectra``) against ``features-weighted``
(``lsoap_from_pair_spectra`` with one-hot weights, the route before the scatter).

Prints seconds per pass over the slabs for each, and last ``ratio_contract_vs_gather=<…>`` and
``ratio_weighted_vs_scatter=<…>``.
Usage: ``python benchmarks/soap_baseline_speed.py [--n-slabs 60] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bandflow.dataset import read_surfaces  # noqa: E402
from bandflow.ml.data import SlabFeatures  # noqa: E402
from bandflow.ml.descriptor import lsoap_from_pair_spectra  # noqa: E402
from bandflow.ml.model import ModelHyperparameters, SlabNet  # noqa: E402
from bandflow.ml.train import TrainConfig  # noqa: E402
from bandflow.ml.workflow import surface_records  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "reference" / "binary_oxides_fast.jsonl.gz"


def one_pass(net: SlabNet, batches: list, contract: bool) -> float:
    """Seconds for the first layer's forward and backward over ``batches``."""
    started = time.perf_counter()
    for batch in batches:
        net.zero_grad()
        net._first_layer(batch, contract_one_hot=contract).pow(2).sum().backward()
    return time.perf_counter() - started


def features_pass(net: SlabNet, batches: list, weighted: bool) -> float:
    """Seconds to form the explicit standard-SOAP features of ``batches``."""
    soap = net.hyperparameters.soap
    started = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            if weighted:
                first, second = batch.row_elements[:, 0], batch.row_elements[:, 1]
                lsoap_from_pair_spectra(batch.spectra, batch.row_atom, net.element_weights(first),
                                        net.element_weights(second), first == second, batch.n_atoms,
                                        soap.n_max, soap.l_max)
            else:
                net.descriptor(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-slabs", type=int, default=60, help="reference slabs, every k-th (all: 0)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    docs = [d for d in read_surfaces(DATA) if d.state == "successful"]
    if args.n_slabs:
        docs = docs[:: max(len(docs) // args.n_slabs, 1)][: args.n_slabs]
    records = surface_records(docs)
    elements = sorted({site.specie.Z for r in records for site in r.structure})
    soap = replace(ModelHyperparameters(), descriptor="soap", soap_species=tuple(elements))
    lsoap = ModelHyperparameters()
    batch_size = TrainConfig().batch_size
    started = time.perf_counter()
    features = SlabFeatures.from_structures([r.structure for r in records], soap.soap)
    print(f"{len(records)} slabs, {sum(len(r.structure) for r in records)} atoms, {len(elements)} elements; "
          f"SOAP {soap.n_descriptor_features} features per atom, L-SOAP {lsoap.n_descriptor_features}; "
          f"pair spectra in {time.perf_counter() - started:.1f} s")
    order = np.arange(len(records))
    batches = [features.batch(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    torch.manual_seed(0)
    nets = {"soap": SlabNet(soap), "lsoap": SlabNet(lsoap)}
    runs = {"soap-gather": ("soap", False), "soap-contract": ("soap", True), "lsoap": ("lsoap", False)}
    best = dict.fromkeys([*runs, "features-scatter", "features-weighted"], float("inf"))
    for _ in range(args.repeats):
        for name, (net, contract) in runs.items():
            best[name] = min(best[name], one_pass(nets[net], batches, contract))
        for weighted in (False, True):
            name = "features-weighted" if weighted else "features-scatter"
            best[name] = min(best[name], features_pass(nets["soap"], batches, weighted))
    for name, seconds in best.items():
        print(f"{name:14s} {seconds:8.3f} s per pass ({len(batches)} batches of {batch_size} slabs)")
    print(f"ratio_contract_vs_gather={best['soap-contract'] / best['soap-gather']:.2f}")
    print(f"ratio_weighted_vs_scatter={best['features-weighted'] / best['features-scatter']:.2f}")


if __name__ == "__main__":
    main()
