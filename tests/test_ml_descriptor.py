"""SOAP / L-SOAP descriptor: equality with DScribe, invariances, smooth cutoff, slab geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from bandflow.bulk import load_bulk
from bandflow.errors import BandflowError
from bandflow.ml.descriptor import (
    GTORadialBasis,
    SoapSettings,
    density_coefficients,
    lsoap_feature_count,
    pseudo_species_power_spectrum,
    soap_features,
    soap_from_pair_spectra,
)
from bandflow.ml.neighbours import Geometry, bulk_geometry, slab_geometry
from bandflow.surfaces import nonpolar_surfaces

dscribe = pytest.importorskip("dscribe.descriptors")


@pytest.fixture(scope="module")
def slabs() -> dict[str, Structure]:
    rutile = nonpolar_surfaces(load_bulk("TiO2-rutile"), max_index=1, min_thickness=6, vacuum=8)
    zno = nonpolar_surfaces(load_bulk("ZnO"), max_index=1, min_thickness=6, vacuum=8)
    return {"TiO2(110)": next(e.slab for e in rutile if e.miller_index == (1, 1, 0)), "ZnO(100)": zno[0].slab}


def _ase_atoms(geometry: Geometry):
    from ase import Atoms

    return Atoms(numbers=geometry.numbers, positions=geometry.positions, cell=geometry.cell, pbc=geometry.pbc)


@pytest.mark.parametrize("r_cut, n_max, l_max, sigma", [(5.0, 6, 4, 0.5), (4.0, 3, 8, 1.0)])
def test_standard_soap_equals_dscribe(slabs, r_cut, n_max, l_max, sigma):
    geometries = [slab_geometry(slab)[0] for slab in slabs.values()]
    geometries.append(bulk_geometry(load_bulk("MgO").structure))
    for geometry in geometries:
        species = sorted(set(geometry.numbers.tolist()))
        reference = dscribe.SOAP(species=species, r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma,
                                 periodic=True, rbf="gto").create(_ase_atoms(geometry))
        ours = soap_features([geometry], species, SoapSettings.dscribe(r_cut, n_max, l_max, sigma))
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() <= 1e-6 * np.abs(reference).max()


def test_gto_basis_equals_dscribe():
    settings = SoapSettings.dscribe(r_cut=6.0, n_max=8, l_max=6, sigma=0.5)
    alphas, betas = dscribe.SOAP(species=["O"], r_cut=6.0, n_max=8, l_max=6, sigma=0.5).get_basis_gto(6.0, 8, 6)
    basis = GTORadialBasis.from_settings(settings)
    np.testing.assert_allclose(basis.alphas, alphas, rtol=1e-12)
    np.testing.assert_allclose(basis.betas, betas, rtol=1e-9, atol=1e-12)


def _lsoap(structures, settings, weights_by_element):
    """L-SOAP features of slabs with fixed element embeddings (float64)."""
    geometries = [slab_geometry(s)[0] for s in structures]
    coefficients = density_coefficients(geometries, settings, dtype=torch.float64)
    weights = torch.stack([weights_by_element[int(z)] for z in coefficients.row_element])
    features = pseudo_species_power_spectrum(coefficients.values, coefficients.row_atom, weights,
                                             coefficients.n_atoms, settings.l_max)
    return features.numpy()


@pytest.fixture(scope="module")
def lsoap_setup(slabs):
    settings = SoapSettings(r_cut=5.0, n_max=4, l_max=4, sigma=0.5)
    generator = torch.Generator().manual_seed(0)
    weights = {z: torch.randn(3, generator=generator, dtype=torch.float64) for z in (8, 22, 30)}
    return settings, weights, slabs["TiO2(110)"]


def _random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def test_lsoap_rotation_invariance(lsoap_setup):
    settings, weights, slab = lsoap_setup
    rotation = _random_rotation(1)
    rotated = Structure(Lattice(slab.lattice.matrix @ rotation.T), slab.species, slab.cart_coords @ rotation.T,
                        coords_are_cartesian=True)
    reference = _lsoap([slab], settings, weights)
    np.testing.assert_allclose(_lsoap([rotated], settings, weights), reference, rtol=1e-9, atol=1e-10 * np.abs(reference).max())
    np.testing.assert_allclose(slab_geometry(rotated)[1], slab_geometry(slab)[1], atol=1e-9)


def test_lsoap_translation_invariance(lsoap_setup):
    settings, weights, slab = lsoap_setup
    moved = slab.copy()
    moved.translate_sites(range(len(moved)), [1.3, -0.7, 2.1], frac_coords=False, to_unit_cell=True)
    reference = _lsoap([slab], settings, weights)
    np.testing.assert_allclose(_lsoap([moved], settings, weights), reference, rtol=1e-9, atol=1e-10 * np.abs(reference).max())
    np.testing.assert_allclose(slab_geometry(moved)[1], slab_geometry(slab)[1], atol=1e-9)


def test_lsoap_permutation_equivariance(lsoap_setup):
    settings, weights, slab = lsoap_setup
    order = np.random.default_rng(2).permutation(len(slab))
    permuted = Structure(slab.lattice, [slab.species[i] for i in order], slab.frac_coords[order])
    reference = _lsoap([slab], settings, weights)
    np.testing.assert_allclose(_lsoap([permuted], settings, weights), reference[order], rtol=1e-9,
                               atol=1e-10 * np.abs(reference).max())


def test_lsoap_supercell_consistency(lsoap_setup):
    settings, weights, slab = lsoap_setup
    supercell = slab.copy()
    supercell.make_supercell([2, 2, 1])
    reference = _lsoap([slab], settings, weights)
    features = _lsoap([supercell], settings, weights)
    # every supercell atom has the features of the primitive-cell atom it is an image of
    primitive_frac = np.mod(supercell.frac_coords[:, :2] * 2, 1.0)
    for i, (frac, z) in enumerate(zip(primitive_frac, supercell.frac_coords[:, 2], strict=True)):
        delta = np.mod(slab.frac_coords[:, :2] - frac + 0.5, 1.0) - 0.5
        match = np.flatnonzero((np.abs(delta).sum(1) < 1e-6) & (np.abs(slab.frac_coords[:, 2] - z) < 1e-6))
        assert len(match) == 1
        np.testing.assert_allclose(features[i], reference[match[0]], rtol=1e-9, atol=1e-10 * np.abs(reference).max())


def test_batched_equals_single(lsoap_setup, slabs):
    settings, weights, _ = lsoap_setup
    structures = list(slabs.values())
    together = _lsoap(structures, settings, weights)
    apart = np.concatenate([_lsoap([s], settings, weights) for s in structures])
    np.testing.assert_allclose(together, apart, rtol=1e-12, atol=1e-12 * np.abs(apart).max())


def test_smooth_cutoff_is_continuous():
    """A neighbour crossing r_cut changes the L-SOAP coefficients continuously (DScribe's cut is hard)."""
    def coefficients(distance: float, settings: SoapSettings) -> np.ndarray:
        geometry = Geometry(np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0]]), np.eye(3) * 50.0,
                            (False, False, False), np.array([8, 8]))
        return density_coefficients([geometry], settings).values[0].numpy()

    smooth = SoapSettings(r_cut=4.0, n_max=4, l_max=2)
    inside, outside = coefficients(4.0 - 1e-4, smooth), coefficients(4.0 + 1e-4, smooth)
    assert np.abs(inside - outside).max() < 1e-6 * np.abs(outside).max()
    hard = SoapSettings.dscribe(r_cut=4.0, n_max=4, l_max=2, sigma=0.5)
    edge = hard.neighbour_cutoff
    jump = np.abs(coefficients(edge - 1e-4, hard) - coefficients(edge + 1e-4, hard)).max()
    assert jump > 1e-5 * np.abs(coefficients(edge + 1e-4, hard)).max()


def test_lsoap_size_independent_of_element_count(lsoap_setup):
    settings, weights, slab = lsoap_setup
    ternary = slab.copy()
    ternary.replace(0, "Zn")
    assert _lsoap([ternary], settings, weights).shape[1] == _lsoap([slab], settings, weights).shape[1]
    assert _lsoap([slab], settings, weights).shape[1] == lsoap_feature_count(settings, 3)


def test_wrapped_slab_same_depth_and_features(lsoap_setup):
    settings, weights, slab = lsoap_setup
    wrapped = slab.copy()
    wrapped.translate_sites(range(len(wrapped)), [0, 0, 0.45], frac_coords=True, to_unit_cell=True)
    assert wrapped.frac_coords[:, 2].max() - wrapped.frac_coords[:, 2].min() > 0.8  # crosses the boundary
    depth, wrapped_depth = slab_geometry(slab)[1], slab_geometry(wrapped)[1]
    np.testing.assert_allclose(np.sort(wrapped_depth), np.sort(depth), atol=1e-9)
    assert depth.min() == 0.0 and depth.max() > 2.0
    reference = _lsoap([slab], settings, weights)
    np.testing.assert_allclose(_lsoap([wrapped], settings, weights), reference, rtol=1e-9,
                               atol=1e-10 * np.abs(reference).max())


def test_bad_settings_and_species():
    with pytest.raises(BandflowError, match="r_cut"):
        SoapSettings(r_cut=0.5)
    with pytest.raises(BandflowError, match="n_max"):
        SoapSettings(n_max=0)
    geometry = bulk_geometry(load_bulk("MgO").structure)
    with pytest.raises(BandflowError, match="no SOAP channel"):
        soap_features([geometry], [8], SoapSettings.dscribe(4.0, 2, 2, 0.5))


def test_soap_scatter_takes_either_channel_order():
    """A row of two elements fills the same features whichever channel comes first (its spectrum
    transposed); a row of one element fills only its upper triangle, and nothing lands twice."""
    n_max, l_max, n_channels = 2, 1, 3
    torch.manual_seed(0)
    values = torch.rand(2, l_max + 1, n_max, n_max, dtype=torch.float64)
    row_atom = torch.tensor([0, 0])
    ordered = soap_from_pair_spectra(values.reshape(2, -1), row_atom, torch.tensor([0, 2]), torch.tensor([2, 2]),
                                     1, n_channels, n_max, l_max)
    swapped = torch.stack([values[0].transpose(1, 2), values[1]])
    reversed_ = soap_from_pair_spectra(swapped.reshape(2, -1), row_atom, torch.tensor([2, 2]), torch.tensor([0, 2]),
                                       1, n_channels, n_max, l_max)
    torch.testing.assert_close(ordered, reversed_)
    width = n_channels * n_max
    assert ordered.shape == (1, (l_max + 1) * width * (width + 1) // 2)
    # every entry of the two-element row once, the upper triangle (n <= m) of the one-element row
    expected = values[0].sum() + values[1].triu().sum()
    torch.testing.assert_close(ordered.sum(), expected)
