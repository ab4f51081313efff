"""CHGNet pre-relaxation of slabs (the ``fast`` protocol), through atomate2's force-field makers.

CHGNet's pretrained weights ship inside its wheel, so this works offline.
"""

from __future__ import annotations

import numpy as np
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from pymatgen.core import Structure

from bandflow.settings import get_settings

#: Fraction of the slab thickness around its centre held fixed during relaxation (bulk-like layers).
DEFAULT_FIXED_FRACTION = 1.0 / 3.0


def fix_central_layers(slab: Structure, fixed_fraction: float = DEFAULT_FIXED_FRACTION) -> Structure:
    """Return a copy of ``slab`` with ``selective_dynamics`` freezing the central layers.

    Atoms within ``fixed_fraction × thickness / 2`` of the slab's mid-plane (along c, which is normal to
    the surface) are fixed; the outer layers on both faces relax. ASE receives this as ``FixAtoms``.
    """
    if not 0.0 <= fixed_fraction < 1.0:
        raise ValueError("fixed_fraction must be in [0, 1)")
    z = np.array([site.coords[2] for site in slab])
    centre = 0.5 * (z.max() + z.min())
    half_window = 0.5 * fixed_fraction * (z.max() - z.min()) + 1e-3
    fixed = np.abs(z - centre) <= half_window
    out = slab.copy()
    out.add_site_property("selective_dynamics", [[not f] * 3 for f in fixed])
    return out


def limit_torch_threads() -> int | None:
    """Give torch (the CHGNet relaxations run in this process) the engines' thread budget.

    With ``omp_num_threads`` set (``BANDFLOW_OMP_NUM_THREADS``), torch's intra-op threads are set to it and
    that number is returned; unset, torch keeps its default (every core) and ``None`` is returned.
    Needed when several runners share the cores: with torch's pool of 2 threads beside a busy CP2K on
    2 cores, the threads wait on each other, and a 36-atom CHGNet relaxation (56 FIRE steps) took
    137–143 s against 16–17 s with 1 thread (``benchmarks/chgnet_threads.py``).
    """
    configured = get_settings().omp_num_threads
    if not configured:
        return None
    import torch

    torch.set_num_threads(int(configured))
    return int(configured)


def chgnet_relax_maker(fmax: float = 0.05, steps: int = 300) -> ForceFieldRelaxMaker:
    """A fixed-cell CHGNet relaxation of a slab's atomic positions (atomate2 ForceFieldRelaxMaker)."""
    return ForceFieldRelaxMaker(
        name="chgnet slab relax",
        force_field_name="CHGNet",
        relax_cell=False,
        steps=steps,
        relax_kwargs={"fmax": fmax},
    )
