"""Parsing of CP2K 2023.1 outputs, on excerpts of real runs kept in ``tests/data/cp2k`` (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core.units import Ha_to_eV

from bandflow.cp2k.parsing import parse_output
from bandflow.errors import BandflowError
from bandflow.potential import analyze_potential, read_potential

DATA = Path(__file__).parent / "data" / "cp2k"


def test_gamma_run_gives_homo_lumo_energy_version_and_time():
    out = parse_output(DATA / "mgo16_pbe_gamma.out")
    assert out.version == "2023.1" and out.completed and out.scf_converged and out.scf_steps == [9]
    assert out.total_energy == pytest.approx(-635.223618421693004 * Ha_to_eV)
    assert out.wall_time == pytest.approx(74.773)
    edges = out.band_edges()
    assert (edges.vbm, edges.cbm) == (7.601058, 11.900288)  # MOs 64 and 65
    assert edges.n_kpoints == 1 and edges.gap == pytest.approx(4.299229, abs=1e-5)
    assert out.failure_reason() is None


def test_kpoint_run_takes_the_vbm_and_cbm_over_all_kpoints():
    """CaO (PBE) is indirect: VBM at Γ (k-point 1), CBM at X (k-point 4)."""
    out = parse_output(DATA / "cao_pbe_kpoints.out")
    assert sorted(out.eigenvalues) == [1, 2, 4]
    edges = out.band_edges()
    assert (edges.vbm_kpoint, edges.cbm_kpoint) == (1, 4)
    assert edges.vbm == 6.598332
    assert edges.cbm == min(e[o < 1].min() for e, o in out.eigenvalues.values())
    assert edges.cbm < out.eigenvalues[1][0][out.eigenvalues[1][1] < 1].min()  # not the Γ value


def test_unconverged_scf_is_a_failure_even_though_cp2k_ended():
    out = parse_output(DATA / "mgo_scf_not_converged.out")
    assert out.completed and out.scf_converged is False
    assert out.failure_reason() == "SCF not converged"
    with pytest.raises(BandflowError, match="no MO eigenvalues"):
        out.band_edges()


def test_abort_message_is_read_from_the_box():
    out = parse_output(DATA / "mgo_hybrid_abort.out")
    assert out.abort_message == "ADMM: MO-based purification requires OT."
    assert out.failure_reason() == "CP2K aborted: ADMM: MO-based purification requires OT."


def test_exchange_integral_memory_is_read_from_the_hfx_block():
    short = parse_output(DATA / "li2o_hse06_on_the_fly.out").hfx_memory
    assert (short.calculated, short.in_core, short.on_the_fly, short.ram_mib) == (
        6284077697, 3100954384, 3090260097, 1999)
    assert short.on_the_fly_fraction == pytest.approx(0.4918, abs=1e-4)
    assert short.needed_mib == 4051  # 1999 MiB × 6.284e9 / 3.101e9
    in_core = parse_output(DATA / "na2o_hse06_converged.out").hfx_memory
    assert in_core.on_the_fly == 0 and in_core.in_core == 287788696 and in_core.ram_mib == 182
    assert parse_output(DATA / "mgo16_pbe_gamma.out").hfx_memory is None  # PBE: no exchange integrals


def test_missing_output_is_a_clear_error(tmp_path):
    with pytest.raises(BandflowError, match="CP2K output not found"):
        parse_output(tmp_path / "cp2k.out")


def test_missing_empty_orbitals_are_reported(tmp_path):
    text = (DATA / "mgo16_pbe_gamma.out").read_text().splitlines()
    occupied_only = [line for line in text if not line.rstrip().endswith("0.000000")]
    (tmp_path / "cp2k.out").write_text("\n".join(occupied_only))
    with pytest.raises(BandflowError, match="ADDED_MOS"):
        parse_output(tmp_path / "cp2k.out").band_edges()


def test_coarse_mgo100_hartree_cube_gives_the_potential_step():
    """Planar average of a real MgO(100) V_HARTREE cube (PBE, 5 layers); the full cube gave 11.858 eV."""
    analysis = analyze_potential(read_potential(DATA / "mgo100_v_hartree_coarse.cube"))
    assert analysis.potential_step == pytest.approx(11.858, abs=0.005)
    assert analysis.vacuum_level_top == pytest.approx(analysis.vacuum_level_bottom, abs=1e-3)
    assert analysis.period == pytest.approx(4.2112 / 2, abs=0.01)
