"""Broken cation–O bonds and outermost-cation heights of slab cuts, against counts done by hand."""

import pytest
from pymatgen.core import Lattice, Structure

from bandflow.bulk import load_bulk
from bandflow.coordination import bond_cutoffs, broken_bond_density, count_bonds, outermost_cation_height
from bandflow.errors import BandflowError
from bandflow.surfaces import enumerate_surfaces


def nonpolar(name, max_index=1):
    return {(e.miller_index, e.termination): e for e in enumerate_surfaces(load_bulk(name), max_index) if e.nonpolar}


def test_rock_salt_bonds_and_its_100_face():
    bulk = load_bulk("MgO").structure
    cutoffs = bond_cutoffs(bulk)
    assert set(cutoffs) == {"Mg"} and cutoffs["Mg"] == pytest.approx(1.2 * bulk.lattice.a / 2)  # conventional cell
    assert count_bonds(bulk, cutoffs) == 6 * len(bulk) // 2  # six O around each Mg
    entry = nonpolar("MgO")[((1, 0, 0), 0)]
    # one Mg and one O per layer and surface cell: the cut crosses two bonds, one per face
    assert broken_bond_density(entry.slab, bulk) == pytest.approx(100.0 / entry.area, rel=1e-6)


def test_a_cut_between_molecules_breaks_no_bond_and_one_through_them_does():
    surfaces = nonpolar("Sb2O3")  # senarmontite: Sb4O6 cages
    bulk = load_bulk("Sb2O3").structure
    assert broken_bond_density(surfaces[((1, 1, 1), 0)].slab, bulk) == pytest.approx(0.0, abs=1e-9)
    assert broken_bond_density(surfaces[((1, 1, 1), 1)].slab, bulk) > 3.0


def test_a_slab_that_is_not_a_cut_of_the_bulk_is_refused():
    bulk = load_bulk("MgO").structure
    slab = Structure(Lattice.tetragonal(3.0, 20.0), ["Mg", "O", "O"], [[0, 0, 0.5], [0.5, 0.5, 0.5], [0, 0, 0.6]])
    with pytest.raises(BandflowError, match="not stoichiometric with its bulk MgO"):
        broken_bond_density(slab, bulk)
    with pytest.raises(BandflowError, match="no oxygen within 5 Å of Mg"):
        bond_cutoffs(Structure(Lattice.cubic(12.0), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]))


def test_outermost_cation_height_is_the_mean_of_both_faces_wherever_the_slab_sits_in_the_cell():
    # top face: Mg 0.6 Å over the O plane; bottom face: O 0.2 Å under the lowest Mg (cation inside by 0.2)
    slab = Structure(Lattice.tetragonal(3.0, 30.0), ["O", "Mg", "O", "Mg", "O", "Mg"],
                     [[0, 0, 10.0], [0.5, 0.5, 10.2], [0, 0, 12.0], [0.5, 0.5, 12.0], [0.5, 0, 14.0],
                      [0, 0.5, 14.6]], coords_are_cartesian=True)
    assert outermost_cation_height(slab) == pytest.approx((0.6 - 0.2) / 2)
    wrapped = slab.copy()
    wrapped.translate_sites(range(len(slab)), [0, 0, 18.0], frac_coords=False)  # across the c boundary
    assert outermost_cation_height(wrapped) == pytest.approx(0.2)
    assert outermost_cation_height(nonpolar("MgO")[((1, 0, 0), 0)].slab) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(BandflowError, match="no cation or no oxygen"):
        outermost_cation_height(Structure(Lattice.cubic(5.0), ["O", "O"], [[0, 0, 0], [0, 0, 0.3]]))
