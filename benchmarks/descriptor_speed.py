"""Descriptor speed: bandflow L-SOAP vs DScribe SOAP, side by side in one run, one thread each.

Slabs: the nonpolar (hkl ≤ 1) surfaces of a few library oxides, each repeated in plane to ≥ ``--min-atoms``
atoms. Settings as the task states: r_cut 6 Å, n_max 8, l_max 6, σ 0.5 Å (DScribe adds its Gaussian
padding 3.7 σ to the neighbour search; L-SOAP damps to zero at r_cut). Times, best of ``--repeats``
(interleaved, so both feel the same machine load):

* ``lsoap``: Structure → slab geometry → vesin neighbour list → density coefficients → pseudo-species
  embedding (K = ``--pseudo``) → power spectrum, float32 (the training/prediction dtype), slabs in chunks
  of about 512 atoms (as prediction batches them);
* ``lsoap-f64``: the same in float64;
* ``lsoap-cached``: only the learnable part (embedding + contraction + power spectrum) on cached
  coefficients, which is what a training epoch recomputes;
* ``soap-ours``: bandflow's standard SOAP (DScribe-equal, float64);
* ``dscribe``: ``dscribe.descriptors.SOAP(rbf="gto", periodic=True).create(atoms, n_jobs=1)``.

Prints atoms/s for each and, last, ``ratio_vs_dscribe=<lsoap atoms/s ÷ dscribe atoms/s>``.
Usage: ``python benchmarks/descriptor_speed.py [--repeats 5] [--min-atoms 100] [--pseudo 4]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bandflow.bulk import load_bulk  # noqa: E402
from bandflow.ml.descriptor import (  # noqa: E402
    SoapSettings,
    density_coefficients,
    pseudo_species_power_spectrum,
    soap_features,
)
from bandflow.ml.model import ElementEmbedding  # noqa: E402
from bandflow.ml.neighbours import slab_geometry  # noqa: E402
from bandflow.surfaces import nonpolar_surfaces  # noqa: E402

BULKS = ("MgO", "ZnO", "TiO2-rutile", "SnO2", "CeO2", "Al2O3")
CHUNK_ATOMS = 512


def benchmark_slabs(min_atoms: int):
    slabs = []
    for name in BULKS:
        for entry in nonpolar_surfaces(load_bulk(name), max_index=1, min_thickness=10.0, vacuum=15.0):
            slab = entry.slab.copy()
            while len(slab) < min_atoms:
                slab.make_supercell([2, 1, 1] if slab.lattice.a <= slab.lattice.b else [1, 2, 1])
            slabs.append(slab)
    return slabs


def chunks(items, sizes, limit):
    group, total = [], 0
    for item, size in zip(items, sizes, strict=True):
        if group and total + size > limit:
            yield group
            group, total = [], 0
        group.append(item)
        total += size
    if group:
        yield group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-atoms", type=int, default=100)
    parser.add_argument("--pseudo", type=int, default=4, help="L-SOAP pseudo-species K")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from ase import Atoms
    from dscribe.descriptors import SOAP

    r_cut, n_max, l_max, sigma = 6.0, 8, 6, 0.5
    slabs = benchmark_slabs(args.min_atoms)
    n_atoms = sum(len(s) for s in slabs)
    lsoap = SoapSettings(r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma)
    standard = SoapSettings.dscribe(r_cut, n_max, l_max, sigma)
    torch.manual_seed(0)
    embedding = ElementEmbedding(args.pseudo, 16)
    species = sorted({z for s in slabs for z in s.atomic_numbers})
    geometries = [slab_geometry(s)[0] for s in slabs]
    atoms = [Atoms(numbers=g.numbers, positions=g.positions, cell=g.cell, pbc=g.pbc) for g in geometries]
    dscribe = SOAP(species=species, r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma, rbf="gto", periodic=True)
    groups = list(chunks(slabs, [len(s) for s in slabs], CHUNK_ATOMS))

    def lsoap_forward(dtype: torch.dtype) -> None:
        with torch.no_grad():
            for group in groups:
                coefficients = density_coefficients([slab_geometry(s)[0] for s in group], lsoap, dtype=dtype)
                weights = embedding.to(dtype)(coefficients.row_element)
                pseudo_species_power_spectrum(coefficients.values, coefficients.row_atom, weights,
                                              coefficients.n_atoms, l_max)

    cached = [density_coefficients([slab_geometry(s)[0] for s in group], lsoap, dtype=torch.float32) for group in groups]

    def lsoap_contraction() -> None:
        with torch.no_grad():
            for coefficients in cached:
                weights = embedding.float()(coefficients.row_element)
                pseudo_species_power_spectrum(coefficients.values, coefficients.row_atom, weights,
                                              coefficients.n_atoms, l_max)

    candidates = {
        "lsoap": lambda: lsoap_forward(torch.float32),
        "lsoap-f64": lambda: lsoap_forward(torch.float64),
        "lsoap-cached": lsoap_contraction,
        "soap-ours": lambda: [soap_features([slab_geometry(s)[0] for s in g], species, standard) for g in groups],
        "dscribe": lambda: dscribe.create(atoms, n_jobs=1),
    }
    best = dict.fromkeys(candidates, np.inf)
    for function in candidates.values():
        function()  # warm-up
    for _ in range(args.repeats):
        for name, function in candidates.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"{len(slabs)} slabs, {n_atoms} atoms ({min(len(s) for s in slabs)}-{max(len(s) for s in slabs)} per slab), "
          f"r_cut {r_cut} Å, n_max {n_max}, l_max {l_max}, sigma {sigma} Å, K {args.pseudo}, 1 thread, "
          f"best of {args.repeats}")
    for name, seconds in best.items():
        print(f"{name:14s} {seconds * 1e3:9.1f} ms  {n_atoms / seconds:10.0f} atoms/s")
    print(f"ratio_vs_dscribe={best['dscribe'] / best['lsoap']:.2f}")


if __name__ == "__main__":
    main()
