"""Nonpolar slab enumeration: known answers, the slab geometry contract, ids, cross-checks with pymatgen."""

from __future__ import annotations

import json
import re
import sys
from functools import cache

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import Slab, SlabGenerator, get_symmetrically_distinct_miller_indices
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.bulk import load_bulk, oxidation_states
from bandflow.cli import main
from bandflow.errors import BandflowError
from bandflow.surfaces import (
    distinct_miller_indices,
    enumerate_surfaces,
    nonpolar_surfaces,
    write_surfaces,
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9]+-\d+-(?:m?\d)+-t\d+-[0-9a-f]{8}$")


@cache
def surfaces(name: str, max_index: int = 1) -> tuple:
    return tuple(enumerate_surfaces(load_bulk(name), max_index))


def by_hkl(entries, hkl):
    return [e for e in entries if e.miller_index == hkl]


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["bandflow", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def flips_normal(structure: Structure, symprec: float = 0.01) -> bool:
    """Whether the slab has a symmetry operation mapping z to -z (its two faces are equivalent)."""
    cell = (structure.lattice.matrix, structure.frac_coords, [s.Z for s in structure.species])
    rotations = spglib.get_symmetry(cell, symprec=symprec)["rotations"]
    return any(np.array_equal(r[2], [0, 0, -1]) for r in rotations)


def slab_dipole(structure: Structure, charges: dict[str, float]) -> float:
    """Dipole normal to the surface per area (e/Å) from formal charges (independent of the origin)."""
    q = np.array([charges[s.specie.symbol] for s in structure])
    return float(np.dot(q, structure.cart_coords[:, 2]) / structure.lattice.volume * structure.lattice.c)


# ----------------------------------------------------------------------------------------- known answers


def test_rocksalt_mgo():
    entries = surfaces("MgO")
    assert [e.miller_index for e in entries] == [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
    (e100,), (e110,), (e111,) = (by_hkl(entries, h) for h in [(1, 0, 0), (1, 1, 0), (1, 1, 1)])
    assert e100.nonpolar and e110.nonpolar and e100.tasker_type == e110.tasker_type == "I"
    assert e100.surface_layer == e110.surface_layer == "MgO"
    assert not e111.nonpolar and e111.slab is None and e111.tasker_type == "III"
    assert "Tasker III" in e111.reason and "Mg" in e111.reason and "O" in e111.reason
    a = 4.2112  # library lattice parameter
    # smallest surface cells: (100) a²/2, (110) a·a/√2
    assert e100.area == pytest.approx(a * a / 2, abs=1e-3)
    assert e110.area == pytest.approx(a * a / np.sqrt(2), abs=1e-3)


def test_mgo_111_dipole_is_the_point_charge_value():
    """(111): alternating Mg²⁺ and O²⁻ planes d111/2 apart; per repeat unit μ/A = 2e·(d111/2)/A."""
    (e111,) = by_hkl(surfaces("MgO"), (1, 1, 1))
    a = 4.2112
    area = np.sqrt(3) / 4 * (a / np.sqrt(2)) ** 2 * 2
    assert e111.area == pytest.approx(area, abs=1e-3)
    assert abs(e111.dipole) == pytest.approx(2 * (a / np.sqrt(3) / 2) / area, rel=1e-4)


def test_wurtzite_zno():
    entries = surfaces("ZnO")
    m_plane, a_plane, c_plane = by_hkl(entries, (1, 0, 0)), by_hkl(entries, (1, 1, 0)), by_hkl(entries, (0, 0, 1))
    assert m_plane and all(e.nonpolar for e in m_plane)  # (10-10)
    assert a_plane and all(e.nonpolar for e in a_plane)  # (11-20)
    assert c_plane and not any(e.nonpolar for e in c_plane)  # (0001)
    assert all("Tasker III" in e.reason for e in c_plane)
    # (10-10) has two cuts; t0 is the wide gap between dimer rows: outermost Zn keeps 3 O neighbours,
    # the narrow-gap cut t1 leaves only 2.
    assert [e.termination for e in m_plane] == [0, 1]

    def top_zn_coordination(slab):
        top = max((s for s in slab if s.specie.symbol == "Zn"), key=lambda s: s.coords[2])
        return sum(n.specie.symbol == "O" for n in slab.get_neighbors(top, 2.2))

    assert top_zn_coordination(m_plane[0].slab) == 3
    assert top_zn_coordination(m_plane[1].slab) == 2


def test_rutile_110_is_bridging_oxygen_terminated():
    (e110,) = by_hkl(surfaces("TiO2-rutile"), (1, 1, 0))
    assert e110.nonpolar and e110.tasker_type == "II" and e110.surface_layer == "O"
    slab = e110.slab
    z = slab.cart_coords[:, 2]
    ti_z = np.array([s.coords[2] for s in slab if s.specie.symbol == "Ti"])
    for face, sign in (("top", 1), ("bottom", -1)):
        outer = [s for s in slab if sign * s.coords[2] >= sign * (z.max() if sign > 0 else z.min()) - 1e-6]
        assert [s.specie.symbol for s in outer] == ["O"], face  # one bridging O per surface cell
        ti_plane = ti_z.max() if sign > 0 else ti_z.min()
        assert sign * (outer[0].coords[2] - ti_plane) == pytest.approx(1.27, abs=0.05), face
        neighbours = slab.get_neighbors(outer[0], 2.3)
        assert sorted(n.specie.symbol for n in neighbours) == ["Ti", "Ti"], face  # bridges two Ti
        assert all(abs(n.coords[2] - ti_plane) < 1e-3 for n in neighbours), face


def test_rutile_110_agrees_with_pymatgen_tasker2_check():
    """pymatgen's own tools (SlabGenerator terminations, Slab.is_symmetric, Slab.is_polar with oxidation
    states) find exactly one symmetric nonpolar (110) termination, bridging O, like ours."""
    bulk = load_bulk("TiO2-rutile").structure
    conv = SpacegroupAnalyzer(bulk).get_conventional_standard_structure()
    oxi = oxidation_states(bulk)
    good = []
    for slab in SlabGenerator(conv, (1, 1, 0), 10, 15, center_slab=True).get_slabs():
        decorated = slab.copy()
        decorated.add_oxidation_state_by_element(oxi)
        if slab.is_symmetric() and not decorated.is_polar():
            good.append(slab)
    assert len(good) == 1
    z = good[0].cart_coords @ good[0].normal
    assert good[0][int(np.argmax(z))].specie.symbol == "O"
    (ours,) = by_hkl(surfaces("TiO2-rutile"), (1, 1, 0))
    mine = Slab(ours.slab.lattice, ours.slab.species, ours.slab.frac_coords, (1, 1, 0), ours.slab, 0, np.eye(3))
    assert mine.is_symmetric()
    mine.add_oxidation_state_by_element(oxi)
    assert not mine.is_polar()
    assert mine.surface_area == pytest.approx(good[0].surface_area, abs=1e-3)


@pytest.mark.parametrize("name", ["MgO", "ZnO", "TiO2-rutile", "SrTiO3"])
def test_nonpolar_terminations_match_pymatgen(name):
    """Per orientation, the number of nonpolar terminations equals what pymatgen's tools find."""
    bulk = load_bulk(name).structure
    conv = SpacegroupAnalyzer(bulk, symprec=0.01).get_conventional_standard_structure()
    oxi = oxidation_states(bulk)
    entries = surfaces(name)
    for hkl in dict.fromkeys(e.miller_index for e in entries):
        count = 0
        for slab in SlabGenerator(conv, hkl, 10, 15, center_slab=True).get_slabs():
            decorated = slab.copy()
            decorated.add_oxidation_state_by_element(oxi)
            count += slab.is_symmetric() and not decorated.is_polar()
        assert sum(e.nonpolar for e in by_hkl(entries, hkl)) == count, hkl


def test_srtio3_has_no_nonpolar_low_index_surface():
    """Formal charges make SrO and TiO2 layers neutral, so (100) has no dipole, but every stoichiometric
    slab has one SrO and one TiO2 face: rejected as asymmetric. (110) and (111) are Tasker III."""
    entries = surfaces("SrTiO3")
    (e100,), (e110,), (e111,) = (by_hkl(entries, h) for h in [(1, 0, 0), (1, 1, 0), (1, 1, 1)])
    assert not any(e.nonpolar for e in entries)
    assert e100.tasker_type is None and e100.dipole == 0.0
    assert "not equivalent" in e100.reason and "SrO" in e100.reason and "TiO2" in e100.reason
    assert e110.tasker_type == e111.tasker_type == "III"
    assert nonpolar_surfaces(load_bulk("SrTiO3")) == []


def test_ruddlesden_popper_sr2tio4_001_is_sro_terminated():
    (e001,) = by_hkl(surfaces("Sr2TiO4"), (0, 0, 1))
    assert e001.nonpolar and e001.surface_layer == "SrO" and e001.tasker_type == "I"
    assert e001.slab.composition.reduced_formula == "Sr2TiO4"


# ------------------------------------------------------------------------------- geometry contract


@pytest.mark.parametrize("name", ["MgO", "ZnO", "TiO2-rutile", "Sr2TiO4", "Al2O3"])
def test_slab_geometry_contract(name):
    bulk = load_bulk(name)
    charges = oxidation_states(bulk.structure)
    bulk_formula_units = bulk.structure.composition.get_reduced_composition_and_factor()[0]
    entries = [e for e in surfaces(name) if e.nonpolar]
    assert entries
    for e in entries:
        slab, lat = e.slab, e.slab.lattice
        assert lat.alpha == lat.beta == 90.0 and lat.gamma >= 90.0 - 1e-9
        assert lat.matrix[0, 1] == lat.matrix[0, 2] == lat.matrix[1, 2] == 0.0
        assert lat.matrix[2, 0] == lat.matrix[2, 1] == 0.0  # c exactly along z, perpendicular to a and b
        z = slab.cart_coords[:, 2]
        assert z.min() == pytest.approx(7.5, abs=1e-4) and lat.c - z.max() == pytest.approx(7.5, abs=1e-4)
        assert e.thickness == pytest.approx(z.max() - z.min(), abs=1e-3) and e.thickness >= 10.0
        assert e.area == pytest.approx(lat.a * lat.b * np.sin(np.radians(lat.gamma)), abs=1e-3)
        assert e.n_atoms == len(slab)
        comp = slab.composition
        assert comp.reduced_composition == bulk_formula_units.reduced_composition
        assert comp.get_reduced_composition_and_factor()[1] == pytest.approx(
            len(slab) / bulk_formula_units.num_atoms)  # whole formula units
        assert flips_normal(slab), e.id
        assert abs(slab_dipole(slab, charges)) < 1e-4, e.id
        keys = [(s.specie.X, s.frac_coords[2]) for s in slab]  # element blocks, each bottom to top
        assert keys == sorted(keys)
        assert all(0.0 <= x < 1.0 for x in slab.frac_coords[:, :2].ravel())
        assert len(slab.get_primitive_structure(tolerance=0.01)) == len(slab)  # smallest in-plane cell


@pytest.mark.parametrize("name", ["MgO", "Al2O3", "Ga2O3-beta", "SiO2-quartz"])  # F, R, C centring; chiral
def test_index_2_slabs_are_symmetric_stoichiometric_and_dipole_free(name):
    bulk = load_bulk(name)
    charges = oxidation_states(bulk.structure)
    reduced = bulk.structure.composition.reduced_composition
    entries = surfaces(name, 2)
    assert any(max(map(abs, e.miller_index)) == 2 and e.nonpolar for e in entries)
    for e in entries:
        if e.nonpolar:
            assert e.slab.composition.reduced_composition == reduced, e.id
            assert flips_normal(e.slab), e.id
            assert abs(slab_dipole(e.slab, charges)) < 1e-4, e.id
            assert e.slab.lattice.c - e.thickness == pytest.approx(15.0, abs=1e-3)


def test_thickness_and_vacuum_are_honoured():
    (e,) = nonpolar_surfaces(load_bulk("TiO2-rutile"), min_thickness=20.0, vacuum=30.0)[2:3]
    assert e.miller_index == (1, 1, 0) and e.thickness >= 20.0
    z = e.slab.cart_coords[:, 2]
    assert z.min() == pytest.approx(15.0, abs=1e-4)
    assert e.slab.lattice.c - e.thickness == pytest.approx(30.0, abs=1e-3)
    thin = nonpolar_surfaces(load_bulk("TiO2-rutile"), min_thickness=3.0)[2]
    assert thin.id == e.id and thin.n_atoms < e.n_atoms  # ids name the surface, not the slab model


# ----------------------------------------------------------------------------------- determinism, ids


def test_two_runs_give_identical_structures_and_ids():
    first = enumerate_surfaces(load_bulk("ZnO"), 1)
    second = enumerate_surfaces(load_bulk("ZnO"), 1)
    assert [e.id for e in first] == [e.id for e in second]
    for a, b in zip(first, second, strict=True):
        assert a.to_dict(with_structure=True) == b.to_dict(with_structure=True)
        if a.slab is not None:
            assert a.slab.to(fmt="cif") == b.slab.to(fmt="cif")
    ids = [e.id for name in ("MgO", "ZnO", "TiO2-rutile", "SrTiO3") for e in surfaces(name)]
    assert len(set(ids)) == len(ids)
    assert all(ID_PATTERN.match(i) for i in ids), ids
    assert surfaces("MgO")[0].id.startswith("MgO-225-100-t0-")
    assert by_hkl(surfaces("ZnO"), (1, 0, 0))[0].id != by_hkl(surfaces("ZnO"), (1, 0, 0))[1].id


def test_ids_and_slabs_do_not_depend_on_site_order_or_origin():
    structure = load_bulk("TiO2-rutile").structure.copy()
    moved = Structure.from_sites(list(reversed(structure.sites)))
    moved.translate_sites(list(range(len(moved))), [0.13, 0.27, 0.41])
    original, shuffled = enumerate_surfaces(structure), enumerate_surfaces(moved)
    assert [e.id for e in original] == [e.id for e in shuffled]
    for a, b in zip(original, shuffled, strict=True):
        if a.slab is not None:
            assert a.slab.to(fmt="poscar") == b.slab.to(fmt="poscar")


def test_ids_change_with_the_bulk_structure():
    strained = load_bulk("MgO").structure.copy()
    strained.scale_lattice(strained.volume * 1.03)
    assert {e.id for e in enumerate_surfaces(strained)}.isdisjoint(e.id for e in surfaces("MgO"))


# ------------------------------------------------------------------------------ orientations


def test_distinct_orientations_use_the_crystal_point_group():
    """pymatgen's get_symmetrically_distinct_miller_indices uses the lattice symmetry and merges
    orientations the crystal keeps distinct: corundum (101)/(10-1), bixbyite (210)/(201)."""
    corundum = load_bulk("Al2O3").structure
    ours = [e.miller_index for e in surfaces("Al2O3")]
    assert (1, 0, 1) in ours and (1, 0, -1) in ours
    assert (1, 0, -1) not in get_symmetrically_distinct_miller_indices(corundum, 1)
    bixbyite = load_bulk("In2O3").structure
    rotations = [op.rotation_matrix.round().astype(int) for op in SpacegroupAnalyzer(
        SpacegroupAnalyzer(bixbyite).get_conventional_standard_structure()).get_symmetry_operations()]
    ours = distinct_miller_indices(rotations, 2)
    assert (2, 1, 0) in ours and (2, 0, 1) in ours
    assert (2, 0, 1) not in get_symmetrically_distinct_miller_indices(bixbyite, 2, cell="conventional")
    # cubic m-3m: the usual 3 at index 1, 6 at index 2
    cubic = [op.rotation_matrix.round().astype(int)
             for op in SpacegroupAnalyzer(load_bulk("MgO").structure).get_symmetry_operations()]
    assert distinct_miller_indices(cubic, 2) == [(1, 0, 0), (1, 1, 0), (1, 1, 1), (2, 1, 0), (2, 1, 1), (2, 2, 1)]


def test_max_index_2_includes_index_1():
    low = {e.miller_index for e in surfaces("TiO2-rutile", 1)}
    high = {e.miller_index for e in surfaces("TiO2-rutile", 2)}
    assert low < high and all(max(map(abs, h)) <= 2 for h in high)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_index": 0}, "max index"), ({"max_index": -1}, "max index"), ({"min_thickness": -2.0}, "thickness"),
     ({"vacuum": 0.0}, "vacuum"), ({"max_index": 99}, "too large")],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(BandflowError, match=message):
        enumerate_surfaces(load_bulk("MgO"), **kwargs)


def test_not_an_oxide():
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(BandflowError, match="not an oxide"):
        enumerate_surfaces(nacl)


# ------------------------------------------------------------------------------------ writing, CLI


def test_write_surfaces_round_trip(tmp_path):
    entries = surfaces("ZnO")
    written = write_surfaces(entries, tmp_path / "out")
    nonpolar = [e for e in entries if e.nonpolar]
    assert len(written) == 2 * len(nonpolar) + 1
    for e in nonpolar:
        for suffix in (".cif", ".POSCAR"):
            back = Structure.from_file(tmp_path / "out" / f"{e.id}{suffix}")
            assert np.allclose(back.lattice.matrix, e.slab.lattice.matrix, atol=1e-5)
            assert [s.species_string for s in back] == [s.species_string for s in e.slab]
            assert np.allclose(back.frac_coords, e.slab.frac_coords, atol=1e-5)
    index = json.loads((tmp_path / "out" / "surfaces.json").read_text())
    assert [d["id"] for d in index] == [e.id for e in entries]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)


def test_write_surfaces_leaves_nothing_on_failure(tmp_path, monkeypatch):
    from pymatgen.io.vasp import Poscar

    calls = []

    def failing_write(self, filename, **kwargs):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(self, filename, **kwargs)

    original = Poscar.write_file
    monkeypatch.setattr(Poscar, "write_file", failing_write)
    with pytest.raises(BandflowError, match="No space left"):
        write_surfaces(surfaces("ZnO"), tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    calls.clear()
    with pytest.raises(BandflowError):
        write_surfaces(surfaces("ZnO"), existing)
    assert list(existing.iterdir()) == []


def test_cli_json(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "surfaces", "MgO", "--json")
    assert code in (0, None)
    rows = json.loads(out)
    assert [r["miller_index"] for r in rows] == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    for r in rows:
        assert {"id", "miller_index", "termination", "n_atoms", "thickness", "area", "nonpolar", "reason"} <= set(r)
        assert isinstance(r["termination"], int) and all(isinstance(i, int) for i in r["miller_index"])
    assert [r["nonpolar"] for r in rows] == [True, True, False]
    assert rows[0]["reason"] is None and "Tasker III" in rows[2]["reason"]


def test_cli_table_and_write(tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "surfaces", "TiO2-rutile", "--write", str(tmp_path / "slabs"))
    assert code in (0, None)
    assert "TiO2-136-110-t0-" in out and "Tasker II" in out
    assert len(list((tmp_path / "slabs").glob("*.POSCAR"))) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [(["MgO", "--max-index", "0"], "max index"), (["MgO", "--max-index", "-1"], "max index"),
     (["NoSuchOxide"], "unknown bulk"), (["SrTiO3"], "no nonpolar surface")],
)
def test_cli_bad_input(tmp_path, monkeypatch, capsys, args, message):
    target = tmp_path / "out"
    code, out, err = run_cli(monkeypatch, capsys, "surfaces", *args, "--write", str(target))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not target.exists()


def test_a_long_period_stacking_gets_at_least_two_periods(monkeypatch):
    """Sr2TiO4 (001) repeats every c/2 = 6.30 Å: 8 Å of slab would hold 1.6 periods and no bulk-like centre."""
    from bandflow import surfaces
    from bandflow.potential import IDEAL_PERIOD_TOLERANCE, detect_period

    def slab_001(**kwargs):
        entries = surfaces.enumerate_surfaces(load_bulk("Sr2TiO4"), max_index=1, min_thickness=8.0, **kwargs)
        return next(e for e in entries if e.miller_index == (0, 0, 1) and e.nonpolar)

    entry = slab_001()
    period = detect_period(entry.slab, tolerance=IDEAL_PERIOD_TOLERANCE)
    heights = entry.slab.cart_coords[:, 2]
    assert period == pytest.approx(6.30, abs=0.02)
    assert np.ptp(heights) >= surfaces.MIN_PERIODS * period and entry.thickness == pytest.approx(np.ptp(heights), abs=1e-3)
    assert entry.n_atoms == len(entry.slab) == 21
    assert entry.period_thickened and entry.model_key == f"{entry.id}|2-periods"
    others = [e for e in surfaces.enumerate_surfaces(load_bulk("Sr2TiO4"), max_index=1, min_thickness=8.0)
              if e.nonpolar and e.miller_index != (0, 0, 1)]
    assert others and all(not e.period_thickened and e.model_key == e.id for e in others)
    monkeypatch.setattr(surfaces, "MIN_PERIODS", 0.0)
    thin = slab_001()
    assert thin.n_atoms == 14 and not thin.period_thickened  # min_thickness alone


def test_a_thickened_slab_model_gets_its_own_job_uuids(tmp_path):
    """A store holding the thinner model of a surface computes the new one; the other surfaces keep their uuids."""
    from bandflow.flows import campaign_flow, plan_campaign
    from bandflow.spec import load_spec

    path = tmp_path / "s.yaml"
    path.write_text("name: t\nprotocol: fast\nengine: cp2k\nmax_index: 1\nbulks: [Sr2TiO4]\n")
    spec = load_spec(path)
    plans = plan_campaign(spec)
    thickened = {e.id for p in plans for e in p.surfaces if e.period_thickened}
    assert len(thickened) == 1
    for job in campaign_flow(spec, plans).jobs:
        surface = job.metadata.get("surface_id")
        if surface is not None:
            assert job.metadata["bandflow_key"] == (f"{surface}|2-periods" if surface in thickened else surface)
