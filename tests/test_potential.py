"""Electrostatic-potential analysis: analytic profiles with known answers, both file formats, pymatgen."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.core.units import Ha_to_eV, bohr_to_ang
from pymatgen.io.vasp import Locpot

from bandflow.errors import BandflowError
from bandflow.potential import (
    PotentialGrid,
    align,
    analyze_potential,
    detect_period,
    macroscopic_average,
    planar_average,
    plane_spacing,
    read_cube,
    read_potential,
)

V_IN, V_VAC, RIPPLE = -7.5, 4.25, 3.0
PERIOD, SPACING, N_LAYERS = 2.1, 0.105, 5  # the ripple period is 20 grid steps


def step_profile(height, length, center, v_top=V_VAC, v_bottom=V_VAC, ramp_start=3.0, ramp_end=7.2, ripple=RIPPLE):
    """Slab potential with exactly flat plateaus: a ripple of period PERIOD around V_IN inside
    (|dz| <= ramp_start), a cosine ramp, then V_VAC (or v_top above / v_bottom below the slab) outside."""
    dz = np.mod(height - center + length / 2, length) - length / 2
    t = np.clip((np.abs(dz) - ramp_start) / (ramp_end - ramp_start), 0, 1)
    s = 0.5 - 0.5 * np.cos(np.pi * t)
    outside = np.where(dz >= 0, v_top, v_bottom)
    return V_IN + (outside - V_IN) * s + ripple * (1 - s) * np.cos(2 * np.pi * (height - center) / PERIOD)


def slab_grid(lattice, axis=2, center_frac=0.5, shape_other=(4, 5), profile=step_profile, **kwargs):
    """A PotentialGrid whose planar average along ``axis`` is ``profile`` exactly, with an in-plane ripple
    that averages out, and an MgO-like slab of N_LAYERS layers PERIOD apart centred at ``center_frac``."""
    lattice = Lattice(lattice)
    length = plane_spacing(lattice.matrix, axis)
    n = round(length / SPACING)
    assert abs(n * SPACING - length) < 1e-9, "test lattice must hold a whole number of grid steps"
    height = np.arange(n) * SPACING
    center = center_frac * length
    v = profile(height, length, center, **kwargs)
    shape = [0, 0, 0]
    shape[axis] = n
    others = [i for i in range(3) if i != axis]
    shape[others[0]], shape[others[1]] = shape_other
    idx = np.indices(shape)
    data = np.moveaxis(np.broadcast_to(v, shape[:axis] + shape[axis + 1:] + [n]), -1, axis).copy()
    data += 0.7 * np.cos(2 * np.pi * idx[others[0]] / shape[others[0]]) * np.sin(2 * np.pi * idx[others[1]] / shape[others[1]])
    species, frac = [], []
    for k in range(N_LAYERS):
        h = (center + (k - (N_LAYERS - 1) / 2) * PERIOD) / length
        for element, inplane in (("Mg", (0.0, 0.0)), ("O", (0.5, 0.5))):
            f = [0.0, 0.0, 0.0]
            f[axis] = h
            f[others[0]], f[others[1]] = (inplane if k % 2 == 0 else (0.5 - inplane[0], 0.5 - inplane[1]))
            species.append(element)
            frac.append(f)
    return PotentialGrid(data=data, lattice=lattice.matrix, structure=Structure(lattice, species, frac), source="analytic")


ORTHO = [[3.0, 0, 0], [0, 3.2, 0], [0, 0, 14 * PERIOD]]
# c tilted and a, b at 60 degrees; the c-plane spacing (c_z) is still 14 periods
OBLIQUE = [[3.0, 0, 0], [1.6, 2.771281292, 0], [1.1, -0.7, 14 * PERIOD]]


# ------------------------------------------------------------------------------------------ profiles


@pytest.mark.parametrize("lattice", [ORTHO, OBLIQUE])
def test_planar_average_coordinates_follow_plane_spacing(lattice):
    grid = slab_grid(lattice)
    z, v = planar_average(grid, "c")
    lat = np.array(lattice)
    expected_length = abs(np.linalg.det(lat)) / np.linalg.norm(np.cross(lat[0], lat[1]))
    assert z[1] * z.size == pytest.approx(expected_length, abs=1e-9)
    assert np.allclose(v, step_profile(z, expected_length, 0.5 * expected_length), atol=1e-12)


def test_macroscopic_average_removes_commensurate_ripple_exactly():
    z = np.arange(300) * 0.1
    v = 2.0 + 1.5 * np.sin(2 * np.pi * z / 3.0) + 0.4 * np.cos(2 * np.pi * z / 1.5)
    assert np.allclose(macroscopic_average(z, v, 3.0), 2.0, atol=1e-12)


def test_macroscopic_average_incommensurate_period_is_second_order_accurate():
    for n in (205, 405):  # a cell of ten ripple periods; 20.5 and 40.5 grid steps per period
        z = np.arange(n) * (23.7 / n)
        v = np.sin(2 * np.pi * z / 2.37)
        error = np.abs(macroscopic_average(z, v, 2.37)).max()
        if n == 205:
            coarse = error
    assert error < 1e-4 and coarse / error > 3.5  # halving the step cuts the error at least fourfold


def test_double_macroscopic_average_removes_two_ripples():
    z = np.arange(600) * 0.05
    v = 1.0 + np.sin(2 * np.pi * z / 2.0) + np.sin(2 * np.pi * z / 3.0)
    assert np.allclose(macroscopic_average(z, v, [2.0, 3.0]), 1.0, atol=1e-12)
    assert np.abs(macroscopic_average(z, v, 2.0) - 1.0).max() > 0.1


@pytest.mark.parametrize("bad", [0.0, -1.0, 100.0, math.nan, []])
def test_macroscopic_average_rejects_bad_period(bad):
    z = np.arange(100) * 0.1
    with pytest.raises(BandflowError, match="period"):
        macroscopic_average(z, np.zeros(100), bad)


# ------------------------------------------------------------------------------------------ analysis


@pytest.mark.parametrize(("lattice", "axis"), [(ORTHO, 2), (OBLIQUE, "c"), (OBLIQUE, "C")])
def test_analytic_slab_plateaus_and_centre_exact(lattice, axis):
    result = analyze_potential(slab_grid(lattice), axis=axis, plateau_tolerance=1e-8)
    assert result.vacuum_level_top == pytest.approx(V_VAC, abs=1e-6)
    assert result.vacuum_level_bottom == pytest.approx(V_VAC, abs=1e-6)
    assert result.slab_center_average == pytest.approx(V_IN, abs=1e-6)
    assert result.potential_step == pytest.approx(V_VAC - V_IN, abs=1e-6)
    assert result.period == pytest.approx(PERIOD, abs=1e-6)  # detected from the atoms
    assert result.period_source == "atoms"
    assert result.slab_center == pytest.approx(0.5 * 14 * PERIOD, abs=1e-6)
    assert result.center_variation < 1e-9
    # the macroscopic average has lost the ripple in the bulk-like interior
    inner = np.abs(result.z - result.slab_center) <= 3.0 - PERIOD / 2
    assert np.allclose(result.macroscopic[inner], V_IN, atol=1e-9)
    assert np.ptp(result.planar[inner]) > 5.0


@pytest.mark.parametrize("axis", [0, "a", 1, "b"])
def test_analytic_slab_along_a_and_b_in_oblique_cell(axis):
    index = {"a": 0, "b": 1}.get(axis, axis)
    lattice = np.array([[14 * PERIOD, 0.0, 0.0], [0.0, 14 * PERIOD, 0.0], [2.0, 1.0, 6.0]])
    lattice[1 - index] = [1.5, 2.5, 0.0] if index == 0 else [3.0, 0.2, 0.0]
    # keep the plane spacing along the slab axis at 14 periods (a whole number of grid steps)
    length = plane_spacing(lattice, index)
    lattice[index] *= 14 * PERIOD / length
    result = analyze_potential(slab_grid(lattice, axis=index, center_frac=0.3), axis=axis, plateau_tolerance=1e-8)
    assert result.axis == index
    assert result.vacuum_level_top == pytest.approx(V_VAC, abs=1e-6)
    assert result.vacuum_level_bottom == pytest.approx(V_VAC, abs=1e-6)
    assert result.slab_center_average == pytest.approx(V_IN, abs=1e-6)


def test_slab_wrapping_around_the_cell_boundary():
    result = analyze_potential(slab_grid(ORTHO, center_frac=0.02), plateau_tolerance=1e-8)
    assert result.slab_center == pytest.approx(0.02 * 14 * PERIOD, abs=1e-6)
    assert result.vacuum_level_top == pytest.approx(V_VAC, abs=1e-6)
    assert result.slab_center_average == pytest.approx(V_IN, abs=1e-6)


def test_dipole_corrected_slab_has_two_vacuum_levels():
    grid = slab_grid(ORTHO, v_top=5.0, v_bottom=3.2)
    result = analyze_potential(grid, plateau_tolerance=1e-8)
    assert result.vacuum_level_top == pytest.approx(5.0, abs=1e-6)
    assert result.vacuum_level_bottom == pytest.approx(3.2, abs=1e-6)
    assert result.potential_step == pytest.approx(4.1 - V_IN, abs=1e-6)
    top0, top1 = result.vacuum_top_range
    assert result.slab_bounds[1] < top0 < top1  # the top plateau lies above the top surface


def test_default_tolerance_stays_within_tolerance_of_the_plateau():
    result = analyze_potential(slab_grid(ORTHO))
    assert abs(result.vacuum_level_top - V_VAC) <= 0.02
    assert result.slab_center_average == pytest.approx(V_IN, abs=1e-6)


def test_explicit_period_and_no_atoms():
    grid = slab_grid(ORTHO)
    bare = PotentialGrid(data=grid.data, lattice=grid.lattice, structure=None, source="bare")
    result = analyze_potential(bare, period=PERIOD, plateau_tolerance=1e-8)
    assert result.period_source == "given" and result.to_dict()["period_source"] == "given"
    assert result.vacuum_level_top == pytest.approx(V_VAC, abs=1e-6)
    assert result.slab_center_average == pytest.approx(V_IN, abs=1e-6)
    with pytest.raises(BandflowError, match="period"):
        analyze_potential(bare)


def test_thin_vacuum_has_no_plateau():
    lattice = [[3.0, 0, 0], [0, 3.2, 0], [0, 0, 6 * PERIOD]]  # 12.6 Å cell, 8.4 Å slab
    with pytest.raises(BandflowError, match="plateau"):
        analyze_potential(slab_grid(lattice, ramp_end=9.0))


def test_sloped_vacuum_has_no_plateau():
    def sloped(height, length, center):
        dz = np.mod(height - center + length / 2, length) - length / 2
        return step_profile(height, length, center) + np.where(np.abs(dz) > 7.2, 0.1 * dz, 0.0)

    with pytest.raises(BandflowError, match="no flat vacuum plateau"):
        analyze_potential(slab_grid(ORTHO, profile=sloped))


def test_bad_axis_and_tolerance():
    grid = slab_grid(ORTHO)
    with pytest.raises(BandflowError, match="axis"):
        analyze_potential(grid, axis="d")
    with pytest.raises(BandflowError, match="tolerance"):
        analyze_potential(grid, plateau_tolerance=0)


def test_detect_period_of_relaxed_rutile_110_slab():
    from pymatgen.core.surface import SlabGenerator

    rutile = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]
    )
    slab = SlabGenerator(rutile, (1, 1, 0), 12, 15, center_slab=True).get_slabs()[0]
    assert detect_period(slab) == pytest.approx(rutile.lattice.d_hkl((1, 1, 0)), abs=1e-6)
    rng = np.random.default_rng(0)
    c = slab.lattice.c
    for i in range(len(slab)):
        slab.translate_sites([i], [0, 0, rng.normal(0, 0.08) / c])
    assert detect_period(slab) == pytest.approx(3.248, abs=0.05)


def test_align_formula():
    ip, ea = align(vacuum_level=4.0, slab_center_average=-8.0, vbm=3.5, cbm=6.5, bulk_average=0.5)
    assert ip == pytest.approx(12.0 - 3.0)
    assert ea == pytest.approx(9.0 - 3.0)
    with pytest.raises(BandflowError, match="CBM"):
        align(4.0, -8.0, vbm=3.0, cbm=2.0)
    with pytest.raises(BandflowError, match="finite"):
        align(math.nan, -8.0, 3.0, 4.0)


def test_to_dict_is_json_ready():
    result = analyze_potential(slab_grid(ORTHO), plateau_tolerance=1e-8)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["vacuum_level_top"] == pytest.approx(V_VAC, abs=1e-6)
    assert summary["axis"] == "c" and "z" not in summary
    full = json.loads(json.dumps(result.to_dict(profile=True)))
    assert len(full["z"]) == len(full["planar"]) == len(full["macroscopic"]) == result.z.size


# ---------------------------------------------------------------------------------------------- files


def gaussian_well_grid(shape=(12, 12, 240), seed=0):
    """A 3-D slab potential: a smooth step plus Gaussian wells at 20 atoms (the planar average is not
    flat to machine precision anywhere, as in a real LOCPOT)."""
    lattice = Lattice.orthorhombic(4.2, 4.2, 30.0)
    frac = np.indices(shape).reshape(3, -1).T / np.array(shape)
    species, coords = [], []
    for layer in range(5):
        for x, y, element in ((0, 0, "Mg"), (0.5, 0.5, "Mg"), (0.5, 0, "O"), (0, 0.5, "O")):
            shift = 0.5 * (layer % 2)
            species.append(element)
            coords.append([(x + shift) % 1, y, 0.5 + (layer - 2) * 2.1 / 30.0])
    structure = Structure(lattice, species, coords)
    z = frac[:, 2] * 30.0
    step = V_VAC + (V_IN - V_VAC) * 0.5 * (np.tanh((z - 9.0) / 0.7) - np.tanh((z - 21.0) / 0.7))
    data = step.copy()
    for site in structure:
        d = frac - site.frac_coords
        d -= np.round(d)
        r2 = np.sum((d @ lattice.matrix) ** 2, axis=1)
        data -= 6.0 * np.exp(-r2 / (2 * 0.35**2))
    data += np.random.default_rng(seed).normal(0, 1e-4, data.size)
    return data.reshape(shape), structure


def test_locpot_roundtrip_and_agreement_with_workfunction_analyzer(tmp_path):
    from pymatgen.analysis.surface_analysis import WorkFunctionAnalyzer

    data, structure = gaussian_well_grid()
    path = tmp_path / "LOCPOT"
    Locpot(structure, {"total": data}).write_file(path)
    grid = read_potential(path)
    assert grid.data.shape == data.shape and np.allclose(grid.data, data, rtol=1e-9, atol=1e-9)
    assert grid.structure is not None and len(grid.structure) == len(structure)

    result = analyze_potential(path)
    locpot = Locpot.from_file(path)
    planar = locpot.get_average_along_axis(2)
    assert np.allclose(result.planar, planar, atol=1e-12)  # the same planar average as pymatgen's
    wfa = WorkFunctionAnalyzer(locpot.structure, planar, efermi=0.0)
    # pymatgen takes the maximum of the planar average; bandflow the mean over the flat plateau
    assert abs(result.vacuum_level_top - wfa.vacuum_locpot) < 1e-4
    assert abs(result.vacuum_level_bottom - wfa.vacuum_locpot) < 1e-4
    assert result.vacuum_level_top <= wfa.vacuum_locpot + 1e-12
    assert result.period == pytest.approx(2.1, abs=1e-6)
    assert result.slab_center_average < wfa.ave_bulk_p + 1.0  # both deep inside the slab


def write_cp2k_cube(path, data_hartree, cell_bohr, atoms, comment="HARTREE POTENTIAL"):
    """Cube as CP2K writes it: bohr, atoms 'Z 0.0 x y z', each z-column in lines of six E13.5 values."""
    shape = data_hartree.shape
    lines = ["-Quickstep-", f" {comment}", f"{len(atoms):5d}{0.0:12.6f}{0.0:12.6f}{0.0:12.6f}"]
    for i in range(3):
        voxel = np.asarray(cell_bohr[i]) / shape[i]
        lines.append(f"{shape[i]:5d}{voxel[0]:12.6f}{voxel[1]:12.6f}{voxel[2]:12.6f}")
    for z_number, xyz in atoms:
        lines.append(f"{z_number:5d}{0.0:12.6f}{xyz[0]:12.6f}{xyz[1]:12.6f}{xyz[2]:12.6f}")
    for column in data_hartree.reshape(-1, shape[2]):
        for start in range(0, shape[2], 6):
            lines.append("".join(f"{x:13.5E}" for x in column[start : start + 6]))
    path.write_text("\n".join(lines) + "\n")


def cube_from_grid(tmp_path, name="slab-v_hartree-1_0.cube"):
    data, structure = gaussian_well_grid(shape=(10, 10, 240))
    cell_bohr = structure.lattice.matrix / bohr_to_ang
    atoms = [(site.specie.Z, site.coords / bohr_to_ang) for site in structure]
    path = tmp_path / name
    write_cp2k_cube(path, data / Ha_to_eV, cell_bohr, atoms)
    return path, data, structure


def test_cube_reader_matches_pymatgen_and_converts_units(tmp_path):
    from pymatgen.io.common import VolumetricData

    path, data, structure = cube_from_grid(tmp_path)
    grid = read_cube(path)
    reference = VolumetricData.from_cube(path)
    assert np.allclose(grid.data, reference.data["total"] * Ha_to_eV, rtol=0, atol=1e-12)
    assert np.allclose(grid.lattice, reference.structure.lattice.matrix, atol=1e-9)
    assert np.allclose(grid.structure.cart_coords, reference.structure.cart_coords, atol=1e-9)
    # Hartree → eV and bohr → Å, to the precision of the E13.5 format
    assert np.allclose(grid.data, data, rtol=1e-4, atol=1e-4)
    assert np.allclose(grid.lattice, structure.lattice.matrix, atol=1e-5)
    assert [s.species_string for s in grid.structure] == [s.species_string for s in structure]


def test_cube_analysis_matches_locpot_analysis(tmp_path):
    path, data, structure = cube_from_grid(tmp_path)
    from_cube = analyze_potential(path)
    locpot_path = tmp_path / "LOCPOT"
    Locpot(structure, {"total": data}).write_file(locpot_path)
    from_locpot = analyze_potential(locpot_path)
    for key in ("vacuum_level_top", "vacuum_level_bottom", "slab_center_average"):
        assert getattr(from_cube, key) == pytest.approx(getattr(from_locpot, key), abs=2e-4)
    assert from_cube.vacuum_level_top == pytest.approx(V_VAC, abs=0.01)


def test_cube_detected_by_content_and_angstrom_units(tmp_path):
    data = np.zeros((2, 2, 3))
    data[:, :, 1] = 0.5
    text = ["title", "comment", "    1    0.000000    0.000000    0.000000"]
    text += ["   -2    1.500000    0.000000    0.000000", "   -2    0.000000    1.500000    0.000000",
             "   -3    0.000000    0.000000    2.000000", "    8    0.000000    0.500000    0.500000    1.000000"]
    text += [" ".join(f"{x:.5E}" for x in column) for column in data.reshape(-1, 3)]
    path = tmp_path / "potential.dat"
    path.write_text("\n".join(text) + "\n")
    grid = read_potential(path)
    assert np.allclose(grid.lattice, np.diag([3.0, 3.0, 6.0]))
    assert np.allclose(grid.data[:, :, 1], 0.5 * Ha_to_eV)
    assert np.allclose(grid.structure.cart_coords, [[0.5, 0.5, 1.0]])


def test_missing_and_garbled_files(tmp_path):
    with pytest.raises(BandflowError, match="not found"):
        read_potential(tmp_path / "LOCPOT")
    garbled = tmp_path / "LOCPOT"
    garbled.write_text("this is not\na LOCPOT file\n")
    with pytest.raises(BandflowError, match="cannot read .* LOCPOT"):
        read_potential(garbled)
    path, _, _ = cube_from_grid(tmp_path)
    lines = path.read_text().splitlines()
    truncated = tmp_path / "truncated.cube"
    truncated.write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(BandflowError, match="expected"):
        read_potential(truncated)
    corrupt = tmp_path / "corrupt.cube"
    corrupt.write_text("\n".join(lines[:300] + ["  0.1E+00  nan?  garbage"] + lines[301:]) + "\n")
    with pytest.raises(BandflowError, match="cube"):
        read_potential(corrupt)
    header = tmp_path / "header.cube"
    header.write_text("a\nb\nnot a number\n")
    with pytest.raises(BandflowError, match="cube"):
        read_potential(header)


# ------------------------------------------------------------------------------------------------ CLI


def run_cli(monkeypatch, capsys, *args):
    from bandflow.cli import main

    monkeypatch.setattr(sys, "argv", ["bandflow", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_potential(tmp_path, monkeypatch, capsys):
    path, _, _ = cube_from_grid(tmp_path)
    code, out, _ = run_cli(monkeypatch, capsys, "potential", str(path), "--json")
    assert code in (0, None)
    summary = json.loads(out)
    assert summary["vacuum_level_top"] == pytest.approx(V_VAC, abs=0.01)
    assert {"vacuum_level_bottom", "slab_center_average"} <= summary.keys() and "z" not in summary

    code, out, _ = run_cli(monkeypatch, capsys, "potential", str(path), "--axis", "c", "--period", "2.1", "--profile")
    assert code in (0, None)
    assert out.splitlines()[0].startswith("vacuum_level_top")
    assert len(out.splitlines()) == 7 + 240  # six values, a header and one row per grid plane

    code, _, err = run_cli(monkeypatch, capsys, "potential", str(tmp_path / "nothing.cube"))
    assert code == 2 and err.strip().startswith("error:") and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------- real CP2K run

MGO_SLAB_INPUT = """
&GLOBAL
  PROJECT mgo
  RUN_TYPE ENERGY
  PRINT_LEVEL LOW
&END GLOBAL
&FORCE_EVAL
  METHOD QS
  &DFT
    BASIS_SET_FILE_NAME BASIS_MOLOPT
    POTENTIAL_FILE_NAME GTH_POTENTIALS
    &MGRID
      CUTOFF 250
      REL_CUTOFF 40
    &END MGRID
    &SCF
      EPS_SCF 1.0E-6
      MAX_SCF 60
      ADDED_MOS 4
      &MIXING
        METHOD BROYDEN_MIXING
        ALPHA 0.3
      &END MIXING
      &SMEAR ON
        METHOD FERMI_DIRAC
        ELECTRONIC_TEMPERATURE 300
      &END SMEAR
    &END SCF
    &KPOINTS
      SCHEME MONKHORST-PACK 3 3 1
    &END KPOINTS
    &XC
      &XC_FUNCTIONAL PBE
      &END XC_FUNCTIONAL
    &END XC
    &PRINT
      &V_HARTREE_CUBE
        STRIDE 1 1 1
      &END V_HARTREE_CUBE
    &END PRINT
  &END DFT
  &SUBSYS
    &CELL
      A 2.978 0.0 0.0
      B 0.0 2.978 0.0
      C 0.0 0.0 20.0
    &END CELL
    &COORD
      Mg 0.000 0.000 7.895
      O  1.489 1.489 7.895
      Mg 1.489 1.489 10.000
      O  0.000 0.000 10.000
      Mg 0.000 0.000 12.105
      O  1.489 1.489 12.105
    &END COORD
    &KIND Mg
      BASIS_SET SZV-MOLOPT-SR-GTH
      POTENTIAL GTH-PBE-q10
    &END KIND
    &KIND O
      BASIS_SET SZV-MOLOPT-SR-GTH
      POTENTIAL GTH-PBE-q6
    &END KIND
  &END SUBSYS
&END FORCE_EVAL
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="CP2K not installed")
def test_real_cp2k_hartree_cube_of_symmetric_mgo_slab(tmp_path):
    """A three-layer MgO(100) slab run by CP2K (about a minute): symmetric, so both vacuum levels agree;
    the cube has zero cell average; the vacuum is the maximum of the planar average."""
    (tmp_path / "mgo.inp").write_text(MGO_SLAB_INPUT)
    subprocess.run(["cp2k.psmp", "-i", "mgo.inp", "-o", "mgo.out"], cwd=tmp_path, check=True,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=900)
    cube = next(tmp_path.glob("*v_hartree*.cube"))
    result = analyze_potential(cube)
    grid = read_potential(cube)
    assert abs(grid.data.mean()) < 1e-3
    assert result.period == pytest.approx(2.105, abs=1e-3)
    assert result.vacuum_level_top == pytest.approx(result.vacuum_level_bottom, abs=1e-6)
    assert result.planar.max() - 0.02 <= result.vacuum_level_top <= result.planar.max()
    assert result.slab_center_average < result.vacuum_level_top - 5.0
