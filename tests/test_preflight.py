"""Checks before any expensive work: engine present, insulating bulk, nothing written when refused."""

from pathlib import Path

import pytest
import yaml
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from bandflow.bulk import load_bulk
from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.preflight import check_campaign, check_insulating
from bandflow.spec import load_spec


@pytest.fixture
def data_dir(tmp_path, settings_env):
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"))
    return tmp_path / "data"


def spec_file(tmp_path: Path, bulk: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "bulks": [bulk], "max_index": 1, "protocol": "fast"}))
    return path


def test_odd_electron_bulk_is_refused(tmp_path):
    """Rock-salt 'LiO' (11 electrons per cell) has no gap without spin polarisation."""
    cif = tmp_path / "LiO.cif"
    Structure(Lattice.cubic(4.2), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cif))
    with pytest.raises(BandflowError, match="odd number of electrons"):
        check_insulating(load_bulk(str(cif)))
    check_insulating(load_bulk("MgO"))


def test_missing_cp2k_stops_the_run_before_anything_is_written(tmp_path, data_dir, settings_env):
    settings_env(BANDFLOW_CP2K_COMMAND="no-such-cp2k-binary")
    with pytest.raises(BandflowError, match="no-such-cp2k-binary"):
        check_campaign(load_spec(spec_file(tmp_path, "MgO")))
    result = CliRunner().invoke(app, ["run", str(spec_file(tmp_path, "MgO"))])
    assert result.exit_code != 0
    assert not data_dir.exists()


def test_polar_only_bulk_is_refused_before_the_engine_runs(tmp_path, data_dir):
    with pytest.raises(BandflowError, match="no nonpolar surface"):
        check_campaign(load_spec(spec_file(tmp_path, "SrTiO3")), need_engine=False)
    assert not data_dir.exists()


def test_bulks_with_elements_outside_the_cp2k_basis_files_are_named(tmp_path, settings_env):
    from bandflow.preflight import unsupported_bulks

    data = tmp_path / "cp2k_data"
    data.mkdir()
    (data / "BASIS_MOLOPT").write_text(" O  DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q6\n"
                                       " Mg DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10\n")
    (data / "GTH_POTENTIALS").write_text("O GTH-PBE-q6 GTH-PBE\nMg GTH-PBE-q10 GTH-PBE\nLa GTH-PBE-q11 GTH-PBE\n")
    (data / "BASIS_ADMM_UZH").write_text("O admm-dz-q6\nMg admm-dz-q10\n")
    settings_env(BANDFLOW_CP2K_DATA_DIR=str(data))
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "t", "bulks": ["MgO", "La2O3"], "max_index": 1, "protocol": "fast"}))
    spec = load_spec(spec_path)
    plans = check_campaign(spec, need_engine=False)
    reasons = unsupported_bulks(spec, plans)
    assert list(reasons) == ["La2O3"]
    assert reasons["La2O3"].startswith("La: no basis set in")
    assert unsupported_bulks(spec.model_copy(update={"engine": "vasp"}), plans) == {}
