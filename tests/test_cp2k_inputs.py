"""CP2K input sets: what bandflow writes for each step (no CP2K needed).

The inputs are written to disk and read back with pymatgen's parser (custodian does the same to apply
corrections), so every check here is on the file CP2K would read.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cp2k.inputs import Cp2kInput

from bandflow.cp2k import Cp2kBulkHybridMaker, Cp2kSlabStaticMaker, gamma_supercell
from bandflow.cp2k.jobs import (
    cell_width,
    gamma_cell_ladder,
    hermite_normal_forms,
    wider_supercells,
    widest_basis,
    widest_supercells,
)
from bandflow.cp2k.sets import (
    AUX_BASIS_FAMILY,
    COMPOSED_AUX_FILE,
    COORD_FILE,
    Cp2kHybridSetGenerator,
    Cp2kSlabRelaxSetGenerator,
    Cp2kSlabStaticSetGenerator,
    Cp2kStaticSetGenerator,
    ShellSet,
    _basis_sets,
    _data_file_entries,
    compact_aux_entry,
    deep_update,
    element_revisions,
    fixed_atom_indices,
    gamma_centred_kpoints,
    kind_settings,
    kpoint_mesh,
    time_reversal_kpoints,
)
from bandflow.errors import BandflowError

# A CP2K data directory with the entry lines of the real files (names only: all bandflow reads).
DATA_FILES = {
    "BASIS_MOLOPT": """# excerpt
 O  DZVP-MOLOPT-GTH DZVP-MOLOPT-GTH-q6
 O  DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q6
  2
 Mg DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10
 Zn DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q12
""",
    "GTH_POTENTIALS": """#
O GTH-PBE-q6 GTH-PBE
Mg GTH-PBE-q10 GTH-PBE
Mg GTH-PBE-q2
Zn GTH-PBE-q12 GTH-PBE
La GTH-PBE-q11 GTH-PBE
""",
    "BASIS_ADMM_UZH": """O admm-dz-q6
O admm-dzp-q6
Mg admm-dz-q10
Mg admm-dzp-q10
Ca admm-dz-q10
""",
    # whole entries: the d-shell choice reads the angular momenta of each set
    "BASIS_ADMM_MOLOPT": """# Ling & Slater (excerpt, exponents shortened)
Ca cFIT6
 2
 1 0 0 1 1
        0.25   1.0
 1 1 1 1 1
        0.33   1.0

Ca cFIT7
 3
 1 0 0 1 1
        0.25   1.0
 1 1 1 2 1
        1.03   1.0
        9.15  -0.05
 1 2 2 1 1
        0.67   1.0

Ca FIT7
 1
 1 2 2 1 1
        0.67   1.0
""",
}
# The fallback files (entry lines as in Debian's cp2k-data): La from the UCL MOLOPT-SR sets, Th from AcPP1.
FALLBACK_FILES = {
    "BASIS_MOLOPT_UCL": """Li TZVP-MOLOPT-SR-GTH TZVP-MOLOPT-SR-GTH-q3
La DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q11
Ce DZVP-MOLOPT-SR-GTH-q30
Ce DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q12
""",
    "BASIS_MOLOPT_AcPP1": """Th DZVP-MOLOPT-GTH-q22
Th DZVP-MOLOPT-GTH-q12
""",
    "AcPP1_POTENTIALS": """Th GTH-PBE-q12
Th GTH-PBE-q22
""",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "cp2k_data"
    directory.mkdir()
    for name, text in DATA_FILES.items():
        (directory / name).write_text(text)
    return directory


def rocksalt(a: float = 4.2112) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def mgo100_slab() -> Structure:
    """MgO(100), 5 layers of a 2.98 Å square cell, 12 Å of vacuum along c (as bandflow.surfaces cuts it)."""
    a = 4.2112 / np.sqrt(2)
    species, coords = [], []
    for layer in range(5):
        z = layer * 4.2112 / 2
        for (x, y), el in zip(((0, 0), (0.5, 0.5)), ("Mg", "O") if layer % 2 == 0 else ("O", "Mg"), strict=True):
            species.append(el)
            coords.append([x * a, y * a, z])
    return Structure(Lattice.from_parameters(a, a, 4 * 4.2112 / 2 + 12.0, 90, 90, 90), species, coords,
                     coords_are_cartesian=True)


def written(generator: Cp2kStaticSetGenerator, structure: Structure, directory: Path) -> Cp2kInput:
    generator.get_input_set(structure).write_input(directory)
    return Cp2kInput.from_file(directory / "cp2k.inp")


def value(ci: Cp2kInput, path: str, keyword: str):
    return ci.by_path(path).get(keyword).values


def subsections(ci: Cp2kInput, path: str, name: str) -> list:
    """Subsections called ``name`` (pymatgen keys sections with parameters as 'NAME PARAM')."""
    return [s for s in ci.by_path(path).subsections.values() if s.name.upper() == name]


# ---------------------------------------------------------------------------------------- basis sets
def test_kind_settings_pick_basis_potential_and_admm_basis_of_the_same_valence(data_dir):
    mg = kind_settings("Mg", hybrid=True, data_dir=data_dir, aux_family="admm-dz")
    assert (mg.basis, mg.potential, mg.aux_basis, mg.valence) == ("DZVP-MOLOPT-SR-GTH", "GTH-PBE-q10", "admm-dz-q10", 10)
    assert kind_settings("Mg", hybrid=True, data_dir=data_dir).aux_basis == f"{AUX_BASIS_FAMILY}-q10"
    assert kind_settings("O", data_dir=data_dir).aux_basis is None


def test_heavy_s_block_cations_take_an_auxiliary_basis_with_d_functions(tmp_path, data_dir):
    (data_dir / "BASIS_MOLOPT").write_text(DATA_FILES["BASIS_MOLOPT"] + " Ca DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10\n")
    (data_dir / "GTH_POTENTIALS").write_text(DATA_FILES["GTH_POTENTIALS"] + "Ca GTH-PBE-q10 GTH-PBE\n")
    ca = kind_settings("Ca", hybrid=True, data_dir=data_dir)
    assert (ca.aux_basis, ca.aux_basis_file) == ("cFIT7", "BASIS_ADMM_MOLOPT")  # cFIT6 has no d, FIT7 is not contracted
    assert kind_settings("Ca", hybrid=True, data_dir=data_dir, d_shell_aux=False).aux_basis == "admm-dz-q10"
    assert kind_settings("Mg", hybrid=True, data_dir=data_dir).aux_basis_file == "BASIS_ADMM_UZH"
    cao = rocksalt(4.81).copy()
    cao.replace_species({"Mg": "Ca"})
    generator = Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir)
    generator.get_input_set(cao).write_input(tmp_path / "cao")
    text = (tmp_path / "cao" / "cp2k.inp").read_text()
    assert re.findall(r"BASIS_SET AUX_FIT (\S+)", text) == ["cFIT7", f"{AUX_BASIS_FAMILY}-q6"]
    assert re.findall(r"BASIS_SET_FILE_NAME (\S+)", text) == ["BASIS_MOLOPT", "BASIS_ADMM_UZH", "BASIS_ADMM_MOLOPT"]
    # without the file (another CP2K data set), the family set as before
    (data_dir / "BASIS_ADMM_MOLOPT").unlink()
    assert kind_settings("Ca", hybrid=True, data_dir=data_dir).aux_basis == "admm-dz-q10"


SR_ADMM_DZ = """Sr admm-dz-q10
    2
1 0 0 1 1
        0.05025422    1.00000000
2 1 1 2 1
        6.36929338    0.32637088
        0.49222592    1.01294169
"""
SR_CFIT8 = """Sr cFIT8
 2
 1 1 1 1 1
        0.05084489     1.00000000
 1 2 2 1 1
        0.34402975     1.00000000
"""


def test_cfit_sets_with_diffuse_functions_give_way_to_admm_dz_with_their_d_shell(tmp_path, data_dir):
    (data_dir / "BASIS_MOLOPT").write_text(DATA_FILES["BASIS_MOLOPT"] + " Sr DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10\n")
    (data_dir / "GTH_POTENTIALS").write_text(DATA_FILES["GTH_POTENTIALS"] + "Sr GTH-PBE-q10 GTH-PBE\n")
    (data_dir / "BASIS_ADMM_UZH").write_text(DATA_FILES["BASIS_ADMM_UZH"] + SR_ADMM_DZ)
    (data_dir / "BASIS_ADMM_MOLOPT").write_text(DATA_FILES["BASIS_ADMM_MOLOPT"] + "\n" + SR_CFIT8)
    sr = kind_settings("Sr", hybrid=True, data_dir=data_dir)
    assert (sr.aux_basis, sr.aux_basis_file) == ("admm-dz-q10-d-cFIT8", COMPOSED_AUX_FILE)
    sro = rocksalt(5.16).copy()
    sro.replace_species({"Mg": "Sr"})
    Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir).get_input_set(sro).write_input(tmp_path / "sro")
    text = (tmp_path / "sro" / "cp2k.inp").read_text()
    assert re.findall(r"BASIS_SET AUX_FIT (\S+)", text) == ["admm-dz-q10-d-cFIT8", f"{AUX_BASIS_FAMILY}-q6"]
    assert re.findall(r"BASIS_SET_FILE_NAME (\S+)", text) == ["BASIS_MOLOPT", "BASIS_ADMM_UZH", COMPOSED_AUX_FILE]
    # the written entry is admm-dz's sets (exponents and coefficients kept) plus cFIT8's d set, nothing else
    composed = _basis_sets.__wrapped__(tmp_path / "sro" / COMPOSED_AUX_FILE)["Sr"]["admm-dz-q10-d-cFIT8"]
    admm, cfit = (_basis_sets.__wrapped__(data_dir / name)["Sr"] for name in ("BASIS_ADMM_UZH", "BASIS_ADMM_MOLOPT"))
    assert composed == (*admm["admm-dz-q10"], cfit["cFIT8"][1])
    assert kind_settings("Sr", hybrid=True, data_dir=data_dir, d_shell_aux=False).aux_basis == "admm-dz-q10"
    # a family that has d functions already is not composed with another d shell
    (data_dir / "BASIS_ADMM_UZH").write_text(SR_ADMM_DZ.replace("admm-dz-q10", "admm-dzp-q10").replace(
        "    2\n", "    3\n", 1) + " 1 2 2 1 1\n        0.1   1.0\n")
    _basis_sets.cache_clear()
    _data_file_entries.cache_clear()
    dzp = kind_settings("Sr", hybrid=True, data_dir=data_dir, aux_family="admm-dzp")
    assert (dzp.aux_basis, dzp.aux_basis_file, dzp.aux_basis_text) == ("admm-dzp-q10", "BASIS_ADMM_UZH", None)
    # PBE runs write no auxiliary file
    Cp2kStaticSetGenerator(data_dir=data_dir).get_input_set(sro).write_input(tmp_path / "pbe")
    assert not (tmp_path / "pbe" / COMPOSED_AUX_FILE).exists()


def test_a_composed_auxiliary_basis_needs_readable_sets(data_dir):
    (data_dir / "BASIS_MOLOPT").write_text(DATA_FILES["BASIS_MOLOPT"] + " Sr DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10\n")
    (data_dir / "GTH_POTENTIALS").write_text(DATA_FILES["GTH_POTENTIALS"] + "Sr GTH-PBE-q10 GTH-PBE\n")
    (data_dir / "BASIS_ADMM_UZH").write_text(DATA_FILES["BASIS_ADMM_UZH"] + "Sr admm-dz-q10\n 2\n garbled\n")
    (data_dir / "BASIS_ADMM_MOLOPT").write_text(DATA_FILES["BASIS_ADMM_MOLOPT"] + "\n" + SR_CFIT8)
    with pytest.raises(BandflowError, match="Sr: cannot read the sets of admm-dz-q10"):
        kind_settings("Sr", hybrid=True, data_dir=data_dir)


def test_hybrid_input_uses_the_auxiliary_basis_family_asked(tmp_path, data_dir):
    for family in ("admm-dz", "admm-dzp"):
        generator = Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir, aux_basis_family=family)
        generator.get_input_set(rocksalt()).write_input(tmp_path / family)
        text = (tmp_path / family / "cp2k.inp").read_text()
        assert re.findall(r"BASIS_SET AUX_FIT (\S+)", text) == [f"{family}-q10", f"{family}-q6"]
    maker = Cp2kBulkHybridMaker()
    assert maker.aux_basis_family == AUX_BASIS_FAMILY


def test_kind_settings_name_what_is_missing(data_dir):
    with pytest.raises(BandflowError, match=r"La: no basis set in .*DZVP-MOLOPT-SR-GTH in BASIS_MOLOPT_UCL"):
        kind_settings("La", data_dir=data_dir)  # the stand-in directory has no fallback files
    with pytest.raises(BandflowError, match="Ce: no GTH-PBE-q12 pseudopotential"):
        for name, text in FALLBACK_FILES.items():
            (data_dir / name).write_text(text)
        kind_settings("Ce", data_dir=data_dir)
    with pytest.raises(BandflowError, match="CP2K data file not found"):
        kind_settings("O", data_dir=data_dir / "nowhere")


def test_kind_settings_fall_back_to_the_ucl_and_actinide_files(data_dir):
    for name, text in FALLBACK_FILES.items():
        (data_dir / name).write_text(text)
    la = kind_settings("La", hybrid=True, data_dir=data_dir)
    assert (la.basis, la.basis_file, la.potential, la.potential_file) == (
        "DZVP-MOLOPT-SR-GTH", "BASIS_MOLOPT_UCL", "GTH-PBE-q11", "GTH_POTENTIALS")
    # no admm-dz-q11 for La: its orbital basis is its own auxiliary basis
    assert (la.aux_basis, la.aux_basis_file) == ("DZVP-MOLOPT-SR-GTH", "BASIS_MOLOPT_UCL")
    th = kind_settings("Th", data_dir=data_dir)  # the smallest valence of the two AcPP1 sets
    assert (th.basis, th.valence, th.potential, th.potential_file) == (
        "DZVP-MOLOPT-GTH-q12", 12, "GTH-PBE-q12", "AcPP1_POTENTIALS")
    zn = kind_settings("Zn", hybrid=True, data_dir=data_dir)  # BASIS_MOLOPT first, no admm-dz-q12 here
    assert (zn.basis_file, zn.aux_basis, zn.aux_basis_file) == ("BASIS_MOLOPT", "DZVP-MOLOPT-SR-GTH", "BASIS_MOLOPT")


def test_input_names_the_fallback_files_and_the_kind_potential_file(tmp_path, data_dir):
    for name, text in FALLBACK_FILES.items():
        (data_dir / name).write_text(text)
    tho2 = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Th", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    ci = written(Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir), tho2, tmp_path)
    assert value(ci, "FORCE_EVAL/DFT", "POTENTIAL_FILE_NAME") == ("GTH_POTENTIALS",)
    text = (tmp_path / "cp2k.inp").read_text()
    assert re.findall(r"BASIS_SET_FILE_NAME (\S+)", text) == ["BASIS_MOLOPT", "BASIS_MOLOPT_AcPP1", "BASIS_ADMM_UZH"]
    assert "POTENTIAL_FILE_NAME AcPP1_POTENTIALS" in text and "BASIS_SET AUX_FIT DZVP-MOLOPT-GTH-q12" in text
    assert text.count("POTENTIAL_FILE_NAME") == 2  # the default, and Th's own


# ------------------------------------------------------------------------------------------- k-points
# The Li entries of Debian's BASIS_MOLOPT_UZH (q1 in full, q3 by name) and POTENTIAL_UZH (names only).
LI_UZH_BASIS = """Li DZVP-MOLOPT-PBE-GTH-q1 DZVP-MOLOPT-GGA-GTH-q1
 1
 2 0 1 4 2 1
         1.06083469848181    -4.46893670333118E-02     1.51792868264889E-01     1.30322609738977E-02
         0.22013652131490    -5.96032365738433E-01     2.60028931323526E-01     9.22552680884175E-03
         0.18273292485940     6.51546096014531E-01    -3.79091684129623E-01     8.80070309524562E-01
         0.04240106693548     4.67157322788194E-01     8.75004785725444E-01     4.74574862505748E-01
Li DZVP-MOLOPT-PBE-GTH-q3 DZVP-MOLOPT-GGA-GTH-q3
"""
LI_UZH_POTENTIALS = "Li GTH-PBE-q1 GTH-GGA-q1\nLi GTH-PBE-q3 GTH-GGA-q3\n"


def test_lithium_takes_its_1s_in_the_core_and_a_compact_auxiliary_basis_in_pbe_and_hybrid_runs(tmp_path, data_dir):
    """Li: GTH-PBE-q1 with its UZH basis in every run (bulk and slab share one potential reference), and in
    hybrids the basis's primitives of at least 0.1 bohr⁻² (the Li2O setup that converged) as its
    auxiliary basis; other elements keep the family rule."""
    with pytest.raises(BandflowError, match="CP2K data file not found: .*BASIS_MOLOPT_UZH"):
        kind_settings("Li", data_dir=data_dir)  # no fallback to the q3 setup that diverged
    (data_dir / "BASIS_MOLOPT_UZH").write_text(LI_UZH_BASIS)
    (data_dir / "POTENTIAL_UZH").write_text(LI_UZH_POTENTIALS)
    _basis_sets.cache_clear()
    _data_file_entries.cache_clear()
    pbe, hybrid = kind_settings("Li", data_dir=data_dir), kind_settings("Li", hybrid=True, data_dir=data_dir)
    for li in (pbe, hybrid):
        assert (li.basis, li.basis_file, li.potential, li.potential_file, li.valence) == (
            "DZVP-MOLOPT-PBE-GTH-q1", "BASIS_MOLOPT_UZH", "GTH-PBE-q1", "POTENTIAL_UZH", 1)
    assert (pbe.aux_basis, hybrid.aux_basis_file) == (None, COMPOSED_AUX_FILE)
    assert kind_settings("Mg", hybrid=True, data_dir=data_dir).aux_basis == "admm-dz-q10"
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    ci = written(Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir), li2o, tmp_path / "hse")
    text = (tmp_path / "hse" / "cp2k.inp").read_text()
    assert sorted(re.findall(r"BASIS_SET AUX_FIT (\S+)", text)) == ["DZVP-MOLOPT-PBE-GTH-q1-compact", "admm-dz-q6"]
    assert re.findall(r"BASIS_SET_FILE_NAME (\S+)", text) == [
        "BASIS_MOLOPT", "BASIS_MOLOPT_UZH", "BASIS_ADMM_UZH", COMPOSED_AUX_FILE]
    li_kind = next(s for s in subsections(ci, "FORCE_EVAL/SUBSYS", "KIND") if s.section_parameters[0] == "Li")
    assert li_kind.get("POTENTIAL_FILE_NAME").values == ("POTENTIAL_UZH",)
    composed = _basis_sets.__wrapped__(tmp_path / "hse" / COMPOSED_AUX_FILE)["Li"]["DZVP-MOLOPT-PBE-GTH-q1-compact"]
    assert [(s.lmin, s.lmax, s.rows) for s in composed] == [
        (0, 1, ((1.06083469848181, 1.0, 1.0),)), (0, 1, ((0.2201365213149, 1.0, 1.0),)),
        (0, 1, ((0.1827329248594, 1.0, 1.0),))]  # 0.042 (diffuse) left out, each uncontracted s and p
    ci = written(Cp2kStaticSetGenerator(data_dir=data_dir), li2o, tmp_path / "pbe")
    li_kind = next(s for s in subsections(ci, "FORCE_EVAL/SUBSYS", "KIND") if s.section_parameters[0] == "Li")
    assert li_kind.get("POTENTIAL").values == ("GTH-PBE-q1",)
    assert not (tmp_path / "pbe" / COMPOSED_AUX_FILE).exists()


def test_a_compact_auxiliary_basis_needs_compact_primitives():
    diffuse = (ShellSet((2, 0, 1, 1, 1, 1), ((0.05, 1.0, 1.0),)),)
    with pytest.raises(BandflowError, match="Li X: no primitive of exponent >= 0.1"):
        compact_aux_entry("X", diffuse, "Li")


def test_element_revisions_name_only_the_set_apart_elements():
    assert element_revisions(["Mg", "O", "Ca"]) == {}
    assert list(element_revisions(["O", "Li", "Ga"])) == ["Li"]
    assert element_revisions(["Al", "O"]) == {"Al": "compact-aux>=0.1"}  # its basis and potential stay


def test_kpoint_mesh_follows_the_kspacing_rule_and_keeps_one_kpoint_along_c():
    slab = mgo100_slab()
    assert kpoint_mesh(slab, 0.6, slab=True) == (4, 4, 1)
    assert kpoint_mesh(rocksalt(), 0.6) == (3, 3, 3)  # |b| = 2π/4.21 Å = 1.49 Å⁻¹
    with pytest.raises(BandflowError, match="kspacing"):
        kpoint_mesh(slab, 0.0)


def test_gamma_centred_kpoints_contain_gamma_and_the_zone_boundary():
    points = gamma_centred_kpoints((2, 3, 1))
    assert len(points) == 6 and points[0] == (0.0, 0.0, 0.0)
    assert {p[0] for p in points} == {0.0, 0.5}
    assert {round(p[1], 6) for p in points} == {0.0, round(1 / 3, 6), round(-1 / 3, 6)}


# ---------------------------------------------------------------------------------------------- inputs
def test_pbe_static_input_diagonalises_prints_eigenvalues_and_reads_coordinates_from_xyz(tmp_path, data_dir):
    structure = rocksalt()
    ci = written(Cp2kStaticSetGenerator(data_dir=data_dir), structure, tmp_path)
    assert value(ci, "GLOBAL", "RUN_TYPE") == ("ENERGY",)
    assert ci.check("FORCE_EVAL/DFT/SCF/DIAGONALIZATION") and not ci.check("FORCE_EVAL/DFT/SCF/OT")
    assert value(ci, "FORCE_EVAL/DFT/SCF/MIXING", "METHOD") == ("BROYDEN_MIXING",)
    assert value(ci, "FORCE_EVAL/DFT/SCF", "ADDED_MOS")[0] >= 8
    assert value(ci, "FORCE_EVAL/DFT/MGRID", "CUTOFF") == (400.0,)
    assert [s.section_parameters for s in subsections(ci, "FORCE_EVAL/DFT/XC", "XC_FUNCTIONAL")] == [["PBE"]]
    assert value(ci, "FORCE_EVAL/DFT/PRINT/MO", "EIGENVALUES") == (True,)
    assert not ci.check("FORCE_EVAL/DFT/KPOINTS") and not ci.check("FORCE_EVAL/DFT/XC/HF")
    assert value(ci, "FORCE_EVAL/SUBSYS/TOPOLOGY", "COORD_FILE_NAME") == (COORD_FILE,)
    xyz = (tmp_path / COORD_FILE).read_text().splitlines()
    assert int(xyz[0]) == len(structure) and xyz[2].split()[0] == structure[0].specie.symbol
    assert np.allclose([float(x) for x in xyz[-1].split()[1:]], structure[-1].coords)
    cell = ci.by_path("FORCE_EVAL/SUBSYS/CELL")
    assert np.allclose([cell.get(k).values for k in "ABC"], structure.lattice.matrix)
    kinds = subsections(ci, "FORCE_EVAL/SUBSYS", "KIND")
    assert sorted(k.section_parameters[0] for k in kinds) == ["Mg", "O"]


@pytest.mark.parametrize(("mesh", "n_points"), [((2, 2, 2), 8), ((3, 1, 1), 2), ((4, 4, 4), 36), ((3, 3, 1), 5),
                                                ((2, 3, 1), 4), ((4, 4, 1), 10), ((5, 5, 5), 63)])
def test_time_reversal_keeps_each_pair_once_with_the_full_weight(mesh, n_points):
    reduced = time_reversal_kpoints(mesh)
    assert len(reduced) == n_points and sum(w for _, w in reduced) == math.prod(mesh)
    assert reduced[0] == ((0.0, 0.0, 0.0), 1)
    full = {tuple(round((x + 0.5) % 1.0 - 0.5, 6) for x in k) for k in gamma_centred_kpoints(mesh)}
    covered = set()
    for k, weight in reduced:
        images = {tuple(round((s * x + 0.5) % 1.0 - 0.5, 6) for x in k) for s in (1, -1)}
        assert weight == len(images)  # 1 only where k ≡ −k (Γ and the zone-boundary points)
        covered |= images
    assert covered == full


def test_kpoint_input_lists_a_gamma_centred_grid_without_symmetry(tmp_path, data_dir):
    ci = written(Cp2kStaticSetGenerator(kpoints=(3, 3, 1), data_dir=data_dir), rocksalt(), tmp_path)
    kp = ci.by_path("FORCE_EVAL/DFT/KPOINTS")
    assert value(ci, "FORCE_EVAL/DFT/KPOINTS", "SCHEME") == ("GENERAL",)
    assert kp.get("FULL_GRID").values == (True,) and kp.get("SYMMETRY").values == (False,)
    listed = [k.values for k in kp.get("KPOINT")]  # pymatgen's reader may swap lines
    assert len(set(listed)) == 5 and (0.0, 0.0, 0.0, 1.0) in listed and sum(k[3] for k in listed) == 9


def test_hybrid_input_is_hse06_with_admm_at_gamma_restarted_from_pbe(tmp_path, data_dir):
    generator = Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", v_hartree_cube=(1, 1, 1), data_dir=data_dir)
    ci = written(generator, rocksalt(), tmp_path)
    xc = "FORCE_EVAL/DFT/XC"
    assert [list(s.section_parameters) for s in subsections(ci, xc, "XC_FUNCTIONAL")] == [[]]
    assert value(ci, f"{xc}/XC_FUNCTIONAL/PBE", "SCALE_X") == (0.0,)
    assert value(ci, f"{xc}/XC_FUNCTIONAL/XWPBE", "SCALE_X") == (-0.25,)
    assert value(ci, f"{xc}/XC_FUNCTIONAL/XWPBE", "OMEGA") == (0.11,)
    assert value(ci, f"{xc}/HF", "FRACTION") == (0.25,)
    assert value(ci, f"{xc}/HF/INTERACTION_POTENTIAL", "POTENTIAL_TYPE") == ("SHORTRANGE",)
    assert value(ci, f"{xc}/HF/INTERACTION_POTENTIAL", "OMEGA") == (0.11,)
    assert value(ci, f"{xc}/HF/SCREENING", "SCREEN_ON_INITIAL_P") == (True,)
    admm = "FORCE_EVAL/DFT/AUXILIARY_DENSITY_MATRIX_METHOD"
    assert value(ci, admm, "METHOD") == ("BASIS_PROJECTION",)
    assert str(value(ci, admm, "ADMM_PURIFICATION_METHOD")[0]).upper() == "NONE"  # MO_DIAG needs OT
    assert value(ci, "FORCE_EVAL/DFT", "WFN_RESTART_FILE_NAME") == ("pbe.wfn",)
    assert value(ci, "FORCE_EVAL/DFT/SCF", "SCF_GUESS") == ("RESTART",)
    assert value(ci, "FORCE_EVAL/DFT/SCF", "EPS_SCF") == (1e-5,)  # band edges move < 1 meV beyond it
    # the exchange is built from the density matrix: mix that (CP2K then switches to DIIS), not the grid density
    assert value(ci, "FORCE_EVAL/DFT/SCF/MIXING", "METHOD") == ("DIRECT_P_MIXING",)
    assert value(ci, "FORCE_EVAL/DFT/SCF/MIXING", "ALPHA") == (0.4,)
    assert not ci.by_path("FORCE_EVAL/DFT/SCF/MIXING").get("NBROYDEN")
    assert not ci.check("FORCE_EVAL/DFT/KPOINTS")
    assert ci.check("FORCE_EVAL/DFT/PRINT/V_HARTREE_CUBE")
    text = (tmp_path / "cp2k.inp").read_text()
    assert "BASIS_SET AUX_FIT admm-dz-q10" in text and "BASIS_SET_FILE_NAME BASIS_ADMM_UZH" in text


def test_hybrid_refuses_kpoints(tmp_path, data_dir):
    with pytest.raises(BandflowError, match="no Hartree-Fock exchange with k-points"):
        Cp2kHybridSetGenerator(kpoints=(2, 2, 2), data_dir=data_dir).get_input_set(rocksalt())


def test_slab_input_has_in_plane_kpoints_and_writes_the_hartree_cube(tmp_path, data_dir):
    ci = written(Cp2kSlabStaticSetGenerator(data_dir=data_dir), mgo100_slab(), tmp_path)
    listed = [k.values for k in ci.by_path("FORCE_EVAL/DFT/KPOINTS").get("KPOINT")]
    assert len(listed) == 10 and sum(k[3] for k in listed) == 16 and all(k[2] == 0.0 for k in listed)
    assert value(ci, "FORCE_EVAL/DFT/PRINT/V_HARTREE_CUBE", "STRIDE") == (1, 1, 1)


def test_slab_without_vacuum_is_refused(data_dir):
    with pytest.raises(BandflowError, match="vacuum along c"):
        Cp2kSlabStaticSetGenerator(data_dir=data_dir).get_input_set(rocksalt())


def test_relax_input_fixes_the_frozen_sites_in_their_order(tmp_path, data_dir):
    slab = mgo100_slab()
    frozen = [4, 5]
    slab.add_site_property("selective_dynamics", [[i not in frozen] * 3 for i in range(len(slab))])
    assert fixed_atom_indices(slab) == [5, 6]
    ci = written(Cp2kSlabRelaxSetGenerator(data_dir=data_dir), slab, tmp_path)
    assert value(ci, "GLOBAL", "RUN_TYPE") == ("GEO_OPT",)
    assert value(ci, "MOTION/GEO_OPT", "OPTIMIZER") == ("LBFGS",)
    assert value(ci, "MOTION/CONSTRAINT/FIXED_ATOMS", "LIST") == (5, 6)
    xyz = (tmp_path / COORD_FILE).read_text().splitlines()[2:]
    assert [line.split()[0] for line in xyz] == [site.specie.symbol for site in slab]


def test_user_settings_override_and_none_deletes(tmp_path, data_dir):
    updates = {"FORCE_EVAL": {"DFT": {"MGRID": {"CUTOFF": 500}, "SCF": {"ADDED_MOS": None}}}}
    ci = written(Cp2kStaticSetGenerator(user_input_settings=updates, data_dir=data_dir), rocksalt(), tmp_path)
    assert value(ci, "FORCE_EVAL/DFT/MGRID", "CUTOFF") == (500,)
    assert ci.by_path("FORCE_EVAL/DFT/SCF").get("ADDED_MOS") is None
    assert deep_update({"A": {"b": 1}}, {"a": {"C": 2}}) == {"A": {"b": 1, "C": 2}}


# ------------------------------------------------------------------------------------------ supercells
def test_gamma_supercell_of_mgo_is_the_16_atom_cell_wider_than_the_conventional_one():
    cell = gamma_supercell(rocksalt())
    assert len(cell) == 16 and cell.composition.reduced_formula == "MgO"
    assert cell_width(cell.lattice.matrix) == pytest.approx(2 * 4.2112 / np.sqrt(3), abs=1e-3)
    conventional = gamma_supercell(rocksalt(), min_width=4.0)
    assert len(conventional) == 8 and cell_width(conventional.lattice.matrix) == pytest.approx(4.2112, abs=1e-3)


def test_gamma_supercell_of_wurtzite_stays_within_16_atoms():
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]])
    cell = gamma_supercell(zno)
    assert len(cell) <= 16 and cell_width(cell.lattice.matrix) > cell_width(zno.lattice.matrix)


def test_hermite_normal_forms_count_every_sublattice_once():
    # the number of sublattices of index n of a 3D lattice (OEIS A001001)
    assert [sum(1 for _ in hermite_normal_forms(n)) for n in range(1, 9)] == [1, 7, 13, 35, 31, 91, 57, 155]


def test_widest_supercells_of_rocksalt_include_the_conventional_cubes():
    cells = widest_supercells(rocksalt(), 1, 16)
    assert [len(c) for c in cells] == list(range(2, 17, 2))
    assert all(c.composition.reduced_formula == "MgO" and c.is_valid() for c in cells)
    widths = {len(c): cell_width(c.lattice.matrix) for c in cells}
    assert widths[8] == pytest.approx(4.2112, abs=1e-3)  # the conventional cube, widest of 4 primitive cells
    assert widths[16] == pytest.approx(2 * 4.2112 / np.sqrt(3), abs=1e-3)
    # every size is at least as wide as the diagonal multiple of the same size
    assert widest_supercells(rocksalt(), 64, 64)[0].lattice.abc == pytest.approx((8.4224,) * 3, abs=1e-3)


def test_widest_basis_beats_lll_on_a_hexagonal_supercell():
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]])
    (cell,) = widest_supercells(zno, 16, 16)
    assert cell_width(cell.lattice.matrix) == pytest.approx(5.515, abs=1e-3)  # LLL bases reach 5.21 Å at most
    assert np.linalg.det(cell.lattice.matrix) > 0 and cell.composition.as_dict() == {"Zn": 8, "O": 8}
    lattice = Lattice(np.array([[1, 0, 0], [5, 1, 0], [3, 7, 1]]) @ cell.lattice.matrix)  # a skewed basis
    assert cell_width(widest_basis(lattice).matrix) >= cell_width(lattice.get_lll_reduced_lattice().matrix) - 1e-9


def test_gamma_cell_ladder_starts_at_the_smallest_cell_wide_enough():
    first = gamma_supercell(rocksalt())
    ladder = gamma_cell_ladder(rocksalt(), first, 64)
    assert [(len(c), round(cell_width(c.lattice.matrix), 2)) for c in ladder] == [(48, 7.29), (64, 8.42)]
    assert [len(c) for c in gamma_cell_ladder(rocksalt(), first, 64, min_width=0)] == [16, 24, 42, 64]
    assert [len(c) for c in gamma_cell_ladder(rocksalt(), first, 40)] == [40]  # none 7 Å wide: the widest


def test_wider_supercells_of_wurtzite_grow_by_the_factor_asked():
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]])
    first = gamma_supercell(zno)
    diagonal = wider_supercells(zno, first, 40, "diagonal")
    ladder = wider_supercells(zno, first, 40, "all", 1.15)
    widths = [cell_width(c.lattice.matrix) for c in [first, *ladder]]
    assert all(b >= 1.15 * a for a, b in itertools.pairwise(widths)) and len(ladder) >= 1
    assert max(widths) > max(cell_width(c.lattice.matrix) for c in diagonal) + 0.5
    with pytest.raises(BandflowError, match="supercell shapes must be one of all, diagonal"):
        wider_supercells(zno, first, 40, "cubic")


def test_makers_validate_their_settings():
    with pytest.raises(BandflowError, match="kspacing"):
        Cp2kSlabStaticMaker(kspacing=-1)
    with pytest.raises(BandflowError, match="kpoints"):
        Cp2kSlabStaticMaker(kpoints=(4, 0, 1))
    with pytest.raises(BandflowError, match="max_atoms"):
        Cp2kBulkHybridMaker(max_atoms=0)


def test_the_exchange_memory_setting_is_written_without_changing_the_bulk_settings_key(tmp_path, data_dir, settings_env):
    """BANDFLOW_HFX_MEMORY_MB sets MAX_MEMORY of the hybrid input; the bulk maker, and so every stored
    bulk's settings key, stays the same (which integrals are kept in memory changes the time, not the method)."""
    from bandflow.flows import SettingsKeys
    from bandflow.protocols import get_protocol

    def max_memory(directory: Path) -> int:
        ci = written(Cp2kHybridSetGenerator(wfn_restart="pbe.wfn", data_dir=data_dir), rocksalt(), directory)
        return value(ci, "FORCE_EVAL/DFT/XC/HF/MEMORY", "MAX_MEMORY")[0]

    fast = get_protocol("fast")
    settings_env(BANDFLOW_HFX_MEMORY_MB=None)
    default_key = SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker())
    assert max_memory(tmp_path / "default") == 2000
    settings_env(BANDFLOW_HFX_MEMORY_MB="6000")
    assert max_memory(tmp_path / "raised") == 6000
    assert SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker()) == default_key


def test_one_bulk_can_give_an_element_the_compact_auxiliary_set_and_other_keys_stay():
    """Ga2O3-beta's hybrid diverged with Ga's admm-dz-q13 where LiGaO2's converged: the compact set for one
    bulk (a spec's bulk_settings), without a new settings key for any bulk that does not ask for it."""
    from bandflow.flows import SettingsKeys, maker_settings
    from bandflow.protocols import get_protocol

    fast = get_protocol("fast")
    default = SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker())
    assert "compact_aux_elements" not in maker_settings(Cp2kBulkHybridMaker())
    assert SettingsKeys.of(fast, {}, Cp2kBulkHybridMaker(compact_aux_elements=[])) == default
    own = Cp2kBulkHybridMaker(compact_aux_elements=["Ga", "Ga"])
    assert own.compact_aux_elements == ("Ga",) and SettingsKeys.of(fast, {}, own).bulk != default.bulk
    for bad in (["Gx"], "Ga", [1]):
        with pytest.raises(BandflowError, match="^compact_aux_elements must be a list of element symbols"):
            Cp2kBulkHybridMaker(compact_aux_elements=bad)
    if not Path("/usr/share/cp2k/BASIS_ADMM_UZH").is_file():
        pytest.skip("CP2K data files not installed")
    ga2o3 = Structure(Lattice.cubic(5.0), ["Ga", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    family, compact = (m.hybrid_generator().kinds(ga2o3) for m in (Cp2kBulkHybridMaker(), own))
    assert family["Ga"].aux_basis == "admm-dz-q13" and compact["Ga"].aux_basis == "DZVP-MOLOPT-SR-GTH-compact"
    assert compact["Ga"].aux_basis_text and compact["O"] == family["O"]


def test_the_screening_benchmark_reads_compact_auxiliary_variants():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hfx_screening.py"
    spec = importlib.util.spec_from_file_location("hfx_screening", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.parse_variant("reference") == {}
    assert module.parse_variant("eps_schwarz=1e-4,compact_aux_elements=Ga+In") == {
        "eps_schwarz": 1e-4, "compact_aux_elements": ("Ga", "In")}
    with pytest.raises(BandflowError, match="expected .reference. or comma-separated key=value of compact_aux_elements, eps_schwarz"):
        module.parse_variant("compact_aux=Ga")
