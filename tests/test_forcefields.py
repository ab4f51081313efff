"""CHGNet slab relaxation helpers."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator

from bandflow.forcefields import chgnet_relax_maker, fix_central_layers, limit_torch_threads


@pytest.fixture(scope="module")
def mgo_slab():
    bulk = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    slab = SlabGenerator(bulk, (1, 0, 0), 10, 12, center_slab=True, primitive=True).get_slabs()[0]
    return Structure.from_sites(slab.get_orthogonal_c_slab())


def test_central_layers_fixed_outer_free(mgo_slab):
    fixed = fix_central_layers(mgo_slab)
    z = fixed.cart_coords[:, 2]
    moving = np.array([all(sd) for sd in fixed.site_properties["selective_dynamics"]])
    centre = 0.5 * (z.max() + z.min())
    assert moving[np.argmax(z)] and moving[np.argmin(z)]
    assert not moving[np.argmin(np.abs(z - centre))]
    assert "selective_dynamics" not in mgo_slab.site_properties  # the input is not modified


def test_fixed_fraction_bounds(mgo_slab):
    with pytest.raises(ValueError):
        fix_central_layers(mgo_slab, fixed_fraction=1.0)
    free = fix_central_layers(mgo_slab, fixed_fraction=0.0)
    assert sum(not all(sd) for sd in free.site_properties["selective_dynamics"]) <= 2


def test_torch_gets_the_engine_thread_setting(settings_env, torch_threads):
    torch_threads.set_num_threads(2)
    settings_env(BANDFLOW_OMP_NUM_THREADS="1")
    assert limit_torch_threads() == 1
    assert torch_threads.get_num_threads() == 1


def test_torch_keeps_its_default_without_a_thread_setting(settings_env, torch_threads):
    torch_threads.set_num_threads(2)
    settings_env(BANDFLOW_OMP_NUM_THREADS=None)
    assert limit_torch_threads() is None
    assert torch_threads.get_num_threads() == 2


@pytest.mark.slow
def test_chgnet_relaxes_surface_keeps_centre(mgo_slab):
    from jobflow import run_locally

    slab = fix_central_layers(mgo_slab)
    job = chgnet_relax_maker(fmax=0.05, steps=100).make(slab)
    out = run_locally(job, ensure_success=True, log=False)[job.uuid][1].output
    relaxed = out.output.structure
    dz = relaxed.cart_coords[:, 2] - slab.cart_coords[:, 2]
    frozen = [not all(sd) for sd in slab.site_properties["selective_dynamics"]]
    assert np.allclose(dz[frozen], 0.0, atol=1e-8)
    assert 0.0 < np.abs(dz).max() < 0.3  # MgO(100) rumples by a few hundredths of an Å
