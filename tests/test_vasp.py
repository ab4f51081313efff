"""VASP engine without VASP: the inputs each maker writes, the parsing of VASP outputs, and the flows run
end to end with atomate2's fake-VASP test utility (reference outputs copied in place of a VASP run).

Fixtures: ``tests/data/vasp/NaCl_dfpt_vasprun.xml.gz`` is a real VASP 6.3.2 DFPT run (see the README
there); hybrid- and slab-run vasprun files are made from it here by replacing its ``<incar>`` block, and
LOCPOT files are written with pymatgen from analytic potentials.
"""

from __future__ import annotations

import gzip
import math
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from atomate2.vasp.files import write_vasp_input_set
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.io.vasp import Incar, Kpoints, Locpot, Poscar, Vasprun

from bandflow.errors import BandflowError
from bandflow.settings import get_settings
from bandflow.vasp import (
    VaspBulkEdgesMaker,
    VaspBulkRelaxMaker,
    VaspSlabRelaxMaker,
    VaspSlabStaticMaker,
    parsing,
    sets,
)
from bandflow.vasp.jobs import dielectric_dependent_edges

DATA = Path(__file__).parent / "data" / "vasp"
NACL_DFPT = DATA / "NaCl_dfpt_vasprun.xml.gz"
# What the NaCl DFPT run holds (read from the file by hand; cross-checked against pymatgen below).
NACL_EPSILON = 2.6958435
NACL_VBM, NACL_CBM = 0.1414, 5.6402

VACUUM, CENTRE = 4.0, -6.0  # analytic slab potential (eV)
BULK_MEAN = -1.25  # analytic bulk LOCPOT mean (eV)


# ------------------------------------------------------------------------------------------ structures
@cache
def _rocksalt_primitive(cation: str, a: float) -> Structure:
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return rocksalt.get_primitive_structure()


@cache
def _mgo_slab() -> Structure:
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    slab = SlabGenerator(rocksalt, (1, 0, 0), 8.0, 15.0, center_slab=True, primitive=True,
                         reorient_lattice=True).get_slabs()[0].get_orthogonal_c_slab()
    return Structure.from_sites(slab).get_reduced_structure()


def mgo_primitive() -> Structure:
    return _rocksalt_primitive("Mg", 4.21).copy()


def mgo_slab() -> Structure:
    """MgO(100), 4 layers, orthogonal c, 15 Å of vacuum along c, a 2.98 Å square in-plane cell."""
    return _mgo_slab().copy()


def nio_primitive() -> Structure:
    return _rocksalt_primitive("Ni", 4.17).copy()


# ------------------------------------------------------------------------------------- files for tests
def _xml_value(value) -> str:
    if isinstance(value, bool):
        return f" {'T' if value else 'F'}  "
    if isinstance(value, int):
        return f"{value:6d}"
    if isinstance(value, float):
        return f"{value:16.8f}"
    return str(value)


def vasprun_with_incar(dest: Path, tags: dict, effective: dict | None = None) -> Path:
    """The NaCl vasprun with its ``<incar>`` block replaced by ``tags``; ``tags`` and ``effective`` (values
    VASP derives, e.g. AEXX = 0.25 for LHFCALC) also replace the run's ``<parameters>`` entries. The
    eigenvalues and everything else stay those of the real PBE run."""
    text = gzip.open(NACL_DFPT, "rt", encoding="iso-8859-1").read()
    kinds = {bool: ' type="logical"', int: ' type="int"', str: ' type="string"', float: ""}
    lines = [f"  <i{kinds[type(v)]} name=\"{k}\">{_xml_value(v)}</i>" for k, v in tags.items()]
    head, _, rest = text.partition(" <incar>")
    _, _, tail = rest.partition("</incar>")
    for key, value in {**tags, **(effective or {})}.items():
        tail = re.sub(rf'(<i[^>]*name="{key}">)[^<]*(</i>)', lambda m, v=value: m[1] + _xml_value(v) + m[2], tail)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "vasprun.xml"
    path.write_text(head + " <incar>\n" + "\n".join(lines) + "\n </incar>" + tail, encoding="iso-8859-1")
    return path


def write_bulk_locpot(dest: Path, structure: Structure, n: int = 12) -> None:
    """A LOCPOT whose mean is exactly BULK_MEAN (the cosine sums to zero on the grid)."""
    x = np.arange(n) / n
    fx, _, fz = np.meshgrid(x, x, x, indexing="ij")
    data = BULK_MEAN + 2.0 * np.cos(2 * np.pi * fx) * np.cos(2 * np.pi * fz)
    Locpot(Poscar(structure), {"total": data}).write_file(str(dest / "LOCPOT"))


def write_slab_locpot(dest: Path, slab: Structure, nz: int = 300) -> None:
    """VACUUM outside the atoms, CENTRE plus an interlayer ripple inside them, smooth 0.3 Å edges."""
    c = slab.lattice.c
    z = np.arange(nz) * c / nz
    zs = slab.cart_coords[:, 2]
    layer = float(np.diff(np.unique(np.round(zs, 3))).min())
    lo, hi = zs.min() - 1.0, zs.max() + 1.0
    inside = 0.5 * (np.tanh((z - lo) / 0.3) - np.tanh((z - hi) / 0.3))
    profile = VACUUM + inside * (CENTRE - VACUUM + 0.8 * np.cos(2 * np.pi * (z - zs.min()) / layer))
    data = np.broadcast_to(profile, (4, 4, nz)).copy()
    Locpot(Poscar(slab), {"total": data}).write_file(str(dest / "LOCPOT"))


HSE06_TAGS = {"GGA": "PE", "LHFCALC": True, "HFSCREEN": 0.2, "LVHAR": True, "ISMEAR": -5, "NSW": 0}
HYBRID_DEFAULTS = {"AEXX": 0.25, "ALDAX": 0.75, "AGGAX": 0.75}  # what VASP derives for LHFCALC = T
SLAB_TAGS = {"GGA": "PS", "LVHAR": True, "LDIPOL": True, "IDIPOL": 3, "ISMEAR": 0, "NSW": 0}


def ddh_tags(eps: float) -> dict:
    a = 1.0 / eps
    return {"GGA": "PE", "LHFCALC": True, "AEXX": a, "AGGAX": 1 - a, "ALDAX": 1 - a, "LVHAR": True, "NSW": 0}


def written_inputs(structure: Structure, generator, directory: Path) -> tuple[Incar, Kpoints, Poscar, list[str]]:
    """Write an input set as the atomate2 job does (POTCAR.spec instead of POTCARs) and read it back."""
    write_vasp_input_set(structure, generator, directory=directory, potcar_spec=True)
    return (
        Incar.from_file(directory / "INCAR"),
        Kpoints.from_file(directory / "KPOINTS"),
        Poscar.from_file(directory / "POSCAR"),
        (directory / "POTCAR.spec").read_text().split(),
    )


def atomate2_job(maker, structure: Structure):
    """The atomate2 VASP job a bandflow maker runs first (wrappers replace themselves by it)."""
    made = maker.make(structure)
    if isinstance(made.maker, type(maker)):  # a wrapper job: run its body to get the replacement flow
        return maker.make.original(maker, structure).replace.jobs[0]
    return made


# ---------------------------------------------------------------------------------------------- k-points
def test_kpoint_mesh_follows_vasp_kspacing_rule_and_is_one_along_c_for_slabs():
    bulk = mgo_primitive()
    b = bulk.lattice.reciprocal_lattice.abc[0]  # 2π·√3/4.21 = 2.585 1/Å
    assert sets.kpoint_mesh(bulk, 0.3) == (math.ceil(b / 0.3),) * 3 == (9, 9, 9)
    slab = mgo_slab()
    mesh = sets.kpoint_mesh(slab, 0.3, slab=True)
    in_plane = math.ceil(2 * math.pi / slab.lattice.a / 0.3)
    assert mesh == (in_plane, in_plane, 1)
    # the slab's reciprocal c is short: without the slab rule the mesh would not be 1 along c
    assert sets.kpoint_mesh(slab, 0.05)[2] > 1 and sets.kpoint_mesh(slab, 0.05, slab=True)[2] == 1
    kpoints = sets.gamma_kpoints(slab, 0.3, slab=True)
    assert kpoints.style == Kpoints.supported_modes.Gamma
    with pytest.raises(BandflowError, match="kspacing"):
        sets.kpoint_mesh(bulk, 0.0)


def test_slab_centre_found_when_the_slab_wraps_across_the_cell_boundary():
    slab = mgo_slab()
    centred = sets.slab_center_fraction(slab)
    z_frac = slab.frac_coords[:, 2]
    assert centred == pytest.approx(0.5 * (z_frac.min() + z_frac.max()), abs=1e-6)
    shifted = slab.copy()
    shifted.translate_sites(list(range(len(slab))), [0, 0, 0.5 - centred + 0.5], to_unit_cell=True)
    assert min(abs(sets.slab_center_fraction(shifted) - x) for x in (0.0, 1.0)) < 1e-6
    with pytest.raises(BandflowError, match="vacuum"):
        sets.slab_center_fraction(mgo_primitive())


# ------------------------------------------------------------------------------------------- inputs
def test_bulk_relax_inputs_are_pbesol_full_cell(tmp_path):
    job = atomate2_job(VaspBulkRelaxMaker(vasp_cmd="srun vasp_std"), mgo_primitive())
    assert job.maker.run_vasp_kwargs["vasp_cmd"] == "srun vasp_std"
    incar, kpoints, poscar, potcars = written_inputs(mgo_primitive(), job.maker.input_set_generator, tmp_path)
    assert incar["GGA"].upper() == "PS" and not incar.get("LHFCALC", False)
    assert (incar["ISIF"], incar["IBRION"], incar["NSW"]) == (3, 2, 99)
    assert incar["EDIFF"] == 1e-6 and incar["EDIFFG"] == -0.01
    assert incar["ENCUT"] == sets.DEFAULT_ENCUT
    assert incar["ISPIN"] == 1 and "MAGMOM" not in incar  # MgO: closed shell
    assert "LVHAR" not in incar and "LVTOT" not in incar and "LDIPOL" not in incar
    assert kpoints.style == Kpoints.supported_modes.Gamma and tuple(kpoints.kpts[0]) == (9, 9, 9)
    assert poscar.structure.composition.reduced_formula == "MgO"
    assert potcars == ["Mg", "O"]  # atomate2's POTCAR choice (PBE_54)


def test_slab_relax_inputs_fix_the_cell_correct_the_dipole_and_keep_selective_dynamics(tmp_path):
    slab = mgo_slab()
    z = slab.cart_coords[:, 2]
    frozen = np.abs(z - 0.5 * (z.min() + z.max())) < 1.2
    slab.add_site_property("selective_dynamics", [[not f] * 3 for f in frozen])
    job = atomate2_job(VaspSlabRelaxMaker(), slab)
    incar, kpoints, poscar, potcars = written_inputs(slab, job.maker.input_set_generator, tmp_path)
    assert incar["GGA"].upper() == "PS"
    assert (incar["ISIF"], incar["NSW"]) == (2, 99)
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert incar["DIPOL"][2] == pytest.approx(sets.slab_center_fraction(slab), abs=1e-5)
    assert tuple(kpoints.kpts[0])[2] == 1 and kpoints.style == Kpoints.supported_modes.Gamma
    assert poscar.selective_dynamics is not None
    assert sum(not any(flags) for flags in poscar.selective_dynamics) == int(frozen.sum()) > 0
    assert potcars == ["Mg", "O"]


def test_dielectric_inputs_are_ion_clamped_pbe_dfpt(tmp_path):
    maker = VaspBulkEdgesMaker(functional="DDH")
    job = atomate2_job(maker, mgo_primitive())
    assert job.name.endswith("dielectric (DFPT)")
    incar, kpoints, _, _ = written_inputs(mgo_primitive(), job.maker.input_set_generator, tmp_path)
    assert incar["LEPSILON"] is True and incar["GGA"].upper() == "PE"
    assert incar.get("NSW", 0) == 0 and "IBRION" not in incar  # VASP default -1: electronic ε∞ only
    assert not incar.get("LHFCALC", False) and not incar.get("LDAU", False)
    assert incar["EDIFF"] == 1e-7 and incar["ENCUT"] == sets.DEFAULT_ENCUT
    assert tuple(kpoints.kpts[0]) == (9, 9, 9)


def test_hse06_inputs_write_the_electrostatic_potential(tmp_path):
    job = atomate2_job(VaspBulkEdgesMaker(incar={"NCORE": 4, "LORBIT": None}), mgo_primitive())
    assert job.maker.run_vasp_kwargs["vasp_cmd"] == get_settings().vasp_command
    incar, kpoints, _, potcars = written_inputs(mgo_primitive(), job.maker.input_set_generator, tmp_path)
    assert incar["NCORE"] == 4 and "LORBIT" not in incar  # user tags applied last
    assert incar["LHFCALC"] is True and incar["GGA"].upper() == "PE" and incar["HFSCREEN"] == 0.2
    assert "AEXX" not in incar  # VASP's default 0.25 = HSE06
    assert incar["LVHAR"] is True and "LVTOT" not in incar
    assert incar["NSW"] == 0 and incar["EDIFF"] == 1e-6 and incar["ENCUT"] == sets.DEFAULT_ENCUT
    assert incar["ALGO"] == "Normal" and incar["LDAU"] is False
    assert tuple(kpoints.kpts[0]) == (9, 9, 9) and potcars == ["Mg", "O"]


def test_dielectric_dependent_hybrid_takes_aexx_from_the_dfpt_run(tmp_path):
    maker = VaspBulkEdgesMaker(functional="ddh", encut=600, kspacing=0.4)
    response = dielectric_dependent_edges.original(mgo_primitive(), str(NACL_DFPT), maker)
    hybrid, edges = response.replace.jobs
    assert edges.function_kwargs["epsilon_infinity"] == pytest.approx(NACL_EPSILON)
    incar, kpoints, _, _ = written_inputs(mgo_primitive(), hybrid.maker.input_set_generator, tmp_path)
    a = 1.0 / NACL_EPSILON
    assert incar["AEXX"] == pytest.approx(a, abs=1e-9)
    assert incar["AGGAX"] == pytest.approx(1 - a) and incar["ALDAX"] == pytest.approx(1 - a)
    assert incar["AGGAC"] == 1.0 and "HFSCREEN" not in incar  # unscreened: PBE0-type
    assert incar["LHFCALC"] is True and incar["GGA"].upper() == "PE" and incar["LVHAR"] is True
    assert incar["ENCUT"] == 600 and tuple(kpoints.kpts[0]) == sets.kpoint_mesh(mgo_primitive(), 0.4)


def test_slab_static_inputs_match_the_bulk_cutoff_and_kspacing(tmp_path):
    slab = mgo_slab()
    job = atomate2_job(VaspSlabStaticMaker(encut=600, kspacing=0.25), slab)
    incar, kpoints, _, _ = written_inputs(slab, job.maker.input_set_generator, tmp_path / "slab")
    assert incar["LVHAR"] is True and "LVTOT" not in incar
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert incar["GGA"].upper() == "PS" and incar.get("NSW", 0) == 0 and incar["EDIFF"] == 1e-6
    bulk_job = atomate2_job(VaspBulkEdgesMaker(encut=600, kspacing=0.25), mgo_primitive())
    bulk_incar, bulk_kpoints, _, _ = written_inputs(mgo_primitive(), bulk_job.maker.input_set_generator,
                                                    tmp_path / "bulk")
    assert incar["ENCUT"] == bulk_incar["ENCUT"] == 600
    assert tuple(kpoints.kpts[0]) == sets.kpoint_mesh(slab, 0.25, slab=True)
    assert tuple(bulk_kpoints.kpts[0]) == sets.kpoint_mesh(mgo_primitive(), 0.25)


def test_open_shell_oxide_is_spin_polarised(tmp_path):
    job = atomate2_job(VaspBulkEdgesMaker(), nio_primitive())
    incar, _, _, _ = written_inputs(nio_primitive(), job.maker.input_set_generator, tmp_path)
    assert incar["ISPIN"] == 2 and max(incar["MAGMOM"]) > 0


def test_bad_maker_settings_are_one_line_errors():
    with pytest.raises(BandflowError, match="not supported"):
        VaspBulkEdgesMaker(functional="B3LYP")
    with pytest.raises(BandflowError, match="encut"):
        VaspSlabStaticMaker(encut=-1)
    with pytest.raises(BandflowError, match="exact_exchange"):
        sets.BulkHybridSetGenerator(exact_exchange=1.5)


# ------------------------------------------------------------------------------------------- parsing
def test_band_edges_and_epsilon_from_a_real_dfpt_vasprun():
    vasprun = parsing.load_vasprun(NACL_DFPT)
    edges = parsing.band_edges(vasprun)
    assert edges["vbm"] == pytest.approx(NACL_VBM) and edges["cbm"] == pytest.approx(NACL_CBM)
    gap = Vasprun(NACL_DFPT, parse_potcar_file=False).get_band_structure().get_band_gap()
    assert edges["gap"] == pytest.approx(gap["energy"]) and edges["is_gap_direct"] == gap["direct"]
    assert parsing.read_epsilon_infinity(NACL_DFPT) == pytest.approx(NACL_EPSILON)
    assert parsing.functional_name(vasprun) == "PBE" and parsing.code_version(vasprun) == "VASP 6.3.2"


def test_epsilon_infinity_is_the_mean_of_the_diagonal():
    assert parsing.epsilon_infinity([[4.0, 0.1, 0], [0.1, 5.0, 0], [0, 0, 6.0]]) == pytest.approx(5.0)
    with pytest.raises(BandflowError, match="not above 1"):
        parsing.epsilon_infinity(np.eye(3))
    with pytest.raises(BandflowError, match="3x3"):
        parsing.epsilon_infinity([1.0, 2.0])


@pytest.mark.parametrize(
    ("tags", "effective", "name"),
    [
        (HSE06_TAGS, HYBRID_DEFAULTS, "HSE06"),
        ({"GGA": "PE", "LHFCALC": True}, HYBRID_DEFAULTS, "PBE0"),
        (ddh_tags(NACL_EPSILON), {}, "PBE0-type (AEXX=0.3709)"),
        ({"GGA": "PS"}, {}, "PBEsol"),
        ({"GGA": "PE", "LHFCALC": True, "HFSCREEN": 0.3, "AEXX": 0.3}, {},
         "PBE hybrid (AEXX=0.3000, HFSCREEN=0.3)"),
    ],
)
def test_functional_name_from_the_run_tags(tmp_path, tags, effective, name):
    vasprun = parsing.load_vasprun(vasprun_with_incar(tmp_path, tags, effective))
    assert parsing.functional_name(vasprun) == name


def test_bulk_edges_come_with_the_mean_of_the_bulk_locpot(tmp_path):
    vasprun_with_incar(tmp_path, HSE06_TAGS, HYBRID_DEFAULTS)
    write_bulk_locpot(tmp_path, parsing.load_vasprun(tmp_path).final_structure)
    out = parsing.read_bulk_edges(tmp_path)
    assert out["bulk_average_potential"] == pytest.approx(BULK_MEAN, abs=1e-8)
    assert (out["vbm"], out["cbm"]) == (pytest.approx(NACL_VBM), pytest.approx(NACL_CBM))
    assert out["gap"] == pytest.approx(NACL_CBM - NACL_VBM)
    assert out["functional"] == "HSE06" and out["exact_exchange"] == 0.25
    assert out["code_version"] == "VASP 6.3.2" and out["epsilon_infinity"] is None


def test_ddh_edges_are_checked_against_epsilon(tmp_path):
    vasprun_with_incar(tmp_path, ddh_tags(NACL_EPSILON))
    write_bulk_locpot(tmp_path, parsing.load_vasprun(tmp_path).final_structure)
    out = parsing.read_bulk_edges(tmp_path, epsilon_infinity=NACL_EPSILON)
    assert out["functional"] == "DDH" and out["exact_exchange"] == pytest.approx(1 / NACL_EPSILON)
    with pytest.raises(BandflowError, match="not the dielectric-dependent hybrid"):
        parsing.read_bulk_edges(tmp_path, epsilon_infinity=5.0)


def test_bulk_edges_refuse_runs_without_lvhar_or_locpot(tmp_path):
    vasprun_with_incar(tmp_path / "no_lvhar", {**HSE06_TAGS, "LVHAR": False}, HYBRID_DEFAULTS)
    write_bulk_locpot(tmp_path / "no_lvhar", parsing.load_vasprun(tmp_path / "no_lvhar").final_structure)
    with pytest.raises(BandflowError, match="LVHAR"):
        parsing.read_bulk_edges(tmp_path / "no_lvhar")
    vasprun_with_incar(tmp_path / "no_locpot", HSE06_TAGS, HYBRID_DEFAULTS)
    with pytest.raises(BandflowError, match="no LOCPOT"):
        parsing.read_bulk_edges(tmp_path / "no_locpot")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BandflowError, match="no vasprun.xml"):
        parsing.read_bulk_edges(tmp_path / "empty")
    with pytest.raises(BandflowError, match="not found"):
        parsing.read_bulk_edges(tmp_path / "missing")


def test_truncated_vasprun_is_a_one_line_error(tmp_path):
    text = gzip.open(NACL_DFPT, "rt", encoding="iso-8859-1").read()
    (tmp_path / "vasprun.xml").write_text(text[: len(text) // 2], encoding="iso-8859-1")
    with pytest.raises(BandflowError, match="cannot parse"):
        parsing.read_epsilon_infinity(tmp_path)
    with pytest.raises(BandflowError, match="no DFPT dielectric tensor"):
        parsing.read_epsilon_infinity(_without_epsilon(tmp_path / "plain"))


def _without_epsilon(dest: Path) -> Path:
    """The NaCl vasprun without its dielectric blocks (a run without LEPSILON)."""
    text = gzip.open(NACL_DFPT, "rt", encoding="iso-8859-1").read()
    text = re.sub(r'  <varray name="(epsilon|dielectric_dft)" >.*?</varray>\n', "", text, flags=re.S)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vasprun.xml").write_text(text, encoding="iso-8859-1")
    return dest


def test_slab_potential_analysis_from_locpot(tmp_path):
    slab = mgo_slab()
    vasprun_with_incar(tmp_path, SLAB_TAGS)
    write_slab_locpot(tmp_path, slab)
    out = parsing.read_slab_potential(tmp_path)
    analysis = out["potential"]
    assert analysis["vacuum_level_top"] == pytest.approx(VACUUM, abs=1e-3)
    assert analysis["vacuum_level_bottom"] == pytest.approx(VACUUM, abs=1e-3)
    assert analysis["slab_center_average"] == pytest.approx(CENTRE, abs=0.02)
    assert len(analysis["z"]) == len(analysis["planar"]) == len(analysis["macroscopic"]) == 300
    assert out["energy"] == pytest.approx(Vasprun(NACL_DFPT, parse_potcar_file=False).final_energy)
    assert out["functional"] == "PBEsol" and out["dipole_correction"] is True


# ------------------------------------------------------------------------------ flows with fake VASP
@pytest.fixture
def fake_vasp(monkeypatch, tmp_path):
    """atomate2's fake VASP (copies reference outputs, checks written inputs against reference inputs).

    The fixtures have no OUTCAR/CONTCAR, which atomate2's task document needs, so the task document is
    reduced to its run directory: bandflow's analysis jobs read everything else from the files.
    """
    import atomate2.vasp.jobs.base as vasp_base
    from atomate2.utils.testing.vasp import monkeypatch_vasp
    from emmet.core.tasks import TaskDoc, get_uri

    monkeypatch.setattr(vasp_base, "get_vasp_task_document",
                        lambda path, **_: TaskDoc(dir_name=get_uri(path), state="successful", calcs_reversed=[]))
    yield from monkeypatch_vasp(monkeypatch, tmp_path / "reference")


def reference_run(root: Path, structure: Structure, generator, incar: dict, outputs: dict) -> str:
    """A fake-VASP reference directory: the inputs expected (INCAR with ``incar``, POSCAR, KPOINTS,
    POTCAR.spec as the generator writes them) and the outputs to copy."""
    name = f"run{len(list(root.glob('run*')))}" if root.exists() else "run0"
    inputs, outs = root / name / "inputs", root / name / "outputs"
    write_vasp_input_set(structure, generator, directory=inputs, potcar_spec=True)
    Incar(incar).write_file(inputs / "INCAR")
    outs.mkdir(parents=True)
    for filename, writer in outputs.items():
        writer(outs, filename)
    return name


def run_and_get_output(job, root_dir: Path):
    """Run ``job`` (and what replaces it) with jobflow; its final output as a downstream job sees it."""
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    store = JobStore(MemoryStore())
    run_locally(job, store=store, create_folders=True, root_dir=root_dir, ensure_success=True,
                raise_immediately=True, log=False)
    return store.get_output(job.uuid, which="last", load=True)


def test_ddh_bulk_edges_flow_runs_end_to_end(fake_vasp, tmp_path):
    nacl = parsing.load_vasprun(NACL_DFPT).final_structure
    maker = VaspBulkEdgesMaker(functional="DDH")
    ref = tmp_path / "reference"
    a = 1.0 / NACL_EPSILON
    hybrid_generator = maker.hybrid_maker(exact_exchange=a).input_set_generator
    dfpt = reference_run(ref, nacl, maker.dielectric_maker().input_set_generator,
                         {"LEPSILON": True, "GGA": "Pe", "ENCUT": sets.DEFAULT_ENCUT},
                         {"vasprun.xml.gz": lambda d, f: (d / f).write_bytes(NACL_DFPT.read_bytes())})
    hybrid = reference_run(ref, nacl, hybrid_generator,
                           {"LHFCALC": True, "AEXX": a, "AGGAX": 1 - a, "LVHAR": True},
                           {"vasprun.xml": lambda d, f: vasprun_with_incar(d, ddh_tags(NACL_EPSILON)),
                            "LOCPOT": lambda d, f: write_bulk_locpot(d, nacl)})
    fake_vasp(
        {maker.dielectric_maker().name: dfpt, maker.hybrid_maker(exact_exchange=a).name: hybrid},
        {maker.dielectric_maker().name: {"incar_settings": ["LEPSILON", "GGA", "ENCUT"]},
         maker.hybrid_maker(exact_exchange=a).name: {"incar_settings": ["LHFCALC", "AEXX", "AGGAX", "LVHAR"]}},
    )
    job = maker.make(nacl)
    out = run_and_get_output(job, tmp_path / "runs")
    assert out["functional"] == "DDH" and out["epsilon_infinity"] == pytest.approx(NACL_EPSILON)
    assert out["exact_exchange"] == pytest.approx(a, abs=1e-6)
    assert out["vbm"] == pytest.approx(NACL_VBM) and out["cbm"] == pytest.approx(NACL_CBM)
    assert out["bulk_average_potential"] == pytest.approx(BULK_MEAN, abs=1e-8)


def test_slab_static_flow_runs_end_to_end(fake_vasp, tmp_path):
    slab = mgo_slab()
    maker = VaspSlabStaticMaker()
    static_maker = maker.static_maker()
    run = reference_run(tmp_path / "reference", slab, static_maker.input_set_generator,
                        {"LVHAR": True, "LDIPOL": True, "IDIPOL": 3},
                        {"vasprun.xml": lambda d, f: vasprun_with_incar(d, SLAB_TAGS),
                         "LOCPOT": lambda d, f: write_slab_locpot(d, slab)})
    fake_vasp({static_maker.name: run}, {static_maker.name: {"incar_settings": ["LVHAR", "LDIPOL", "IDIPOL"]}})
    job = maker.make(slab)
    out = run_and_get_output(job, tmp_path / "runs")
    assert out["potential"]["vacuum_level_top"] == pytest.approx(VACUUM, abs=1e-3)
    assert out["potential"]["slab_center_average"] == pytest.approx(CENTRE, abs=0.02)
    assert out["functional"] == "PBEsol"
