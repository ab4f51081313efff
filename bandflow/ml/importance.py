"""Per-atom importances of a prediction: attention weights α_i and contributions α_i·h_i, as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure

from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically
from bandflow.ml.data import SlabFeatures
from bandflow.ml.model import SlabEnsemble
from bandflow.ml.neighbours import slab_geometry
from bandflow.ml.runtime import torch_threads


@torch.no_grad()
def atom_importances(model: SlabEnsemble, slab: Structure, slab_id: str = "") -> dict[str, Any]:
    """The prediction for ``slab`` and, per atom (ensemble means): ``alpha_ip``/``alpha_gap`` (attention,
    summing to 1 over the slab), ``h_ip``/``h_gap`` (the atom's IP and gap contribution, eV) and
    ``alpha_h_ip``/``alpha_h_gap`` (their products, summing to IP and gap); ``alpha_h_ea`` =
    α·h (IP) − α·h (gap) sums to EA. Positions for drawing: ``in_plane`` (along a), ``height`` (along the
    surface normal), ``depth_into_page``; ``depth`` is the distance below the nearer surface; ``a_length``
    is the period along a."""
    model.eval()
    features = SlabFeatures.from_structures([slab], model.hyperparameters.soap)
    with torch_threads(1):
        output = model(features.batch([0]))
    geometry, depth = slab_geometry(slab)
    lattice = geometry.cell
    normal = np.cross(lattice[0], lattice[1])
    normal /= np.linalg.norm(normal)
    along_a = lattice[0] / np.linalg.norm(lattice[0])
    into_page = np.cross(normal, along_a)
    attention = output.attention.double().numpy()
    contribution = output.contribution.double().numpy()
    weighted = output.weighted.double().numpy()
    atoms = []
    for i, site in enumerate(slab):
        position = geometry.positions[i]
        alpha_h = weighted[i]
        atoms.append({
            "index": i,
            "element": site.specie.symbol,
            "cart": [float(x) for x in position],
            "in_plane": float(position @ along_a),
            "height": float(position @ normal),
            "depth_into_page": float(position @ into_page),
            "depth": float(depth[i]),
            "alpha_ip": float(attention[i, 0]),
            "alpha_gap": float(attention[i, 1]),
            "h_ip": float(contribution[i, 0]),
            "h_gap": float(contribution[i, 1]),
            "alpha_h_ip": float(alpha_h[0]),
            "alpha_h_gap": float(alpha_h[1]),
            "alpha_h_ea": float(alpha_h[0] - alpha_h[1]),
        })
    return {
        "id": slab_id,
        "formula": slab.composition.reduced_formula,
        "ip": float(output.ip[0]),
        "ea": float(output.ea[0]),
        "ip_std": float(output.ip_std[0]),
        "ea_std": float(output.ea_std[0]),
        "a_length": float(np.linalg.norm(lattice[0])),
        "atoms": atoms,
    }


def write_importances(importances: dict[str, Any], path: str | Path) -> Path:
    """Write ``importances`` as JSON (temporary file, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise BandflowError(f"folder does not exist: {path.parent}")
    with replaced_atomically(path) as temporary:
        temporary.write_text(json.dumps(importances, indent=1))
    return path
