"""The bulk oxide library (every entry checked against its recorded source) and loading user files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.io.cif import CifFile, CifParser, CifWriter
from pymatgen.io.vasp import Poscar
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from typer.testing import CliRunner

import bandflow.bulk as bulk_module
from bandflow.bulk import (
    LIBRARY_DIR,
    describe_bulk,
    library_names,
    library_source,
    library_summaries,
    load_bulk,
    oxidation_states,
)
from bandflow.cli import app
from bandflow.errors import BandflowError
from bandflow.settings import get_settings

NAMES = library_names()

# Electron counts of closed-shell ions: noble gas, d10, d10s2 and 4f14 cores.
CLOSED_SHELL_ELECTRONS = {2, 10, 18, 36, 54, 86, 28, 46, 78, 30, 48, 80, 68}

# pymatgen warns about every coordinate near 1/3 or 2/3 (unavoidable on hexagonal special positions).
HARMLESS_CIF_WARNING = "fractional coordinates rounded to ideal values"


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory, settings_env):
    """Keep the summary cache of these tests out of the user's ~/.bandflow."""
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path_factory.mktemp("bandflow-data")))


def _cif_block(name: str) -> dict:
    return next(iter(CifFile.from_file(LIBRARY_DIR / f"{name}.cif").data.values())).data


def _n_cation_species(name: str) -> int:
    return load_bulk(name).n_cation_species


# ----------------------------------------------------------------------------------------- library contents
def test_library_has_enough_binary_and_ternary_oxides():
    counts = [_n_cation_species(name) for name in NAMES]
    assert counts.count(1) >= 30
    assert counts.count(2) >= 15
    assert set(counts) <= {1, 2}


def test_surface_work_entries_exist():
    assert {"MgO", "ZnO", "TiO2-rutile"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_composition_matches_name_and_recorded_z(name):
    structure = load_bulk(name).structure
    formula = Composition(name.split("-")[0])
    assert structure.composition.reduced_composition == formula.reduced_composition
    block = _cif_block(name)
    assert structure.composition == Composition(block["_chemical_formula_sum"]) * int(block["_cell_formula_units_Z"])
    assert structure.is_ordered


@pytest.mark.parametrize("name", NAMES)
def test_formal_oxidation_states_balance_with_closed_shell_cations(name):
    structure = load_bulk(name).structure
    states = oxidation_states(structure)
    assert states["O"] == -2
    charge = sum(states[el.symbol] * amount for el, amount in structure.composition.items())
    assert charge == pytest.approx(0.0)
    for symbol, state in states.items():
        if symbol != "O":
            assert state > 0
            assert Element(symbol).Z - state in CLOSED_SHELL_ELECTRONS, f"{symbol}{state:+g} is open-shell"


@pytest.mark.parametrize("name", NAMES)
def test_density_matches_recorded_published_density(name):
    published = library_source(name).density
    assert load_bulk(name).structure.density == pytest.approx(published, rel=0.03)


@pytest.mark.parametrize("name", NAMES)
def test_interatomic_distances_are_physical(name):
    structure = load_bulk(name).structure
    is_oxygen = np.array([site.specie.symbol == "O" for site in structure])
    distances = structure.distance_matrix + np.eye(len(structure)) * 1e3
    cation_oxygen = distances[~is_oxygen][:, is_oxygen]
    assert cation_oxygen.min() > 1.5
    assert distances[~is_oxygen][:, ~is_oxygen].min() > 2.2
    assert distances[is_oxygen][:, is_oxygen].min() > 2.2
    # every cation has an oxygen neighbour and every oxygen a cation neighbour
    assert cation_oxygen.min(axis=1).max() < 3.0
    assert cation_oxygen.min(axis=0).max() < 3.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("symprec", [1e-3, 1e-2])
def test_spglib_finds_the_recorded_space_group(name, symprec):
    recorded = library_source(name).spacegroup_number
    assert SpacegroupAnalyzer(load_bulk(name).structure, symprec=symprec).get_space_group_number() == recorded


@pytest.mark.parametrize("name", NAMES)
def test_cif_records_source_and_reads_back_without_warnings(name):
    path = LIBRARY_DIR / f"{name}.cif"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structure = CifParser(path).parse_structures(primitive=False)[0]
    assert [str(w.message) for w in caught if HARMLESS_CIF_WARNING not in str(w.message)] == []
    assert len(structure) == len(load_bulk(name).structure)
    block = _cif_block(name)
    for item in ("_journal_name_full", "_journal_year", "_publ_author_name", "_symmetry_space_group_name_H-M"):
        assert block[item]
    assert int(block["_journal_year"]) > 1900
    assert path.read_text().startswith(f"# bandflow bulk library: {name}")


# ----------------------------------------------------------------------------------------- load_bulk
@pytest.mark.parametrize("spelling", ["mgo", "MGO", "MgO", "tio2-RUTILE"])
def test_library_names_are_case_insensitive(spelling):
    bulk = load_bulk(spelling)
    assert bulk.name.lower() == spelling.lower()
    assert bulk.name in NAMES
    assert Path(bulk.source).parent == LIBRARY_DIR


def test_load_bulk_returns_an_independent_copy():
    first = load_bulk("MgO")
    first.structure.remove_species(["Mg"])
    assert load_bulk("MgO").structure.composition.reduced_formula == "MgO"


def _rocksalt(cation: str = "Mg", a: float = 4.21) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_user_cif_path(tmp_path):
    path = tmp_path / "my_oxide.cif"
    CifWriter(_rocksalt("Ca", 4.81)).write_file(path)
    for argument in (path, str(path)):
        bulk = load_bulk(argument)
        assert bulk.name == "my_oxide"
        assert bulk.formula == "CaO"
        assert bulk.source == str(path.resolve())


@pytest.mark.parametrize("filename", ["POSCAR", "zno.vasp"])
def test_user_poscar_path(tmp_path, filename):
    path = tmp_path / filename
    Poscar(load_bulk("ZnO").structure).write_file(path)
    bulk = load_bulk(path)
    assert bulk.formula == "ZnO"
    assert bulk.spacegroup()[1] == 186


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make_argument", "message"),
    [
        (lambda tmp: str(tmp / "missing.cif"), "file not found"),
        (lambda tmp: str(_write(tmp / "bad.cif", "data_x\n_cell_length_a oops\nthis is not a CIF\n")),
         "cannot read a crystal structure"),
        (lambda tmp: str(_write(tmp / "notes.txt", "hello")), "cannot read a crystal structure"),
        (lambda tmp: str(tmp), "is not a file"),
        (lambda tmp: "Unobtainium", "unknown bulk 'Unobtainium'"),
    ],
    ids=["missing-file", "unreadable-cif", "unknown-format", "directory", "unknown-name"],
)
def test_bad_input_raises_one_line_error(tmp_path, make_argument, message):
    with pytest.raises(BandflowError) as info:
        load_bulk(make_argument(tmp_path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_partial_occupancies_are_rejected(tmp_path):
    disordered = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.5), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    path = tmp_path / "disordered.cif"
    CifWriter(disordered).write_file(path)
    with pytest.raises(BandflowError, match="partial occupancies") as info:
        load_bulk(path)
    assert "\n" not in str(info.value)


def test_structure_without_oxygen_is_rejected(tmp_path):
    rocksalt_nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = tmp_path / "POSCAR"
    Poscar(rocksalt_nacl).write_file(path)
    with pytest.raises(BandflowError, match="no oxygen") as info:
        load_bulk(path)
    assert "\n" not in str(info.value)


def test_oxidation_states_reject_an_unbalanced_oxide():
    superoxide = Structure(Lattice.cubic(5.0), ["Na", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.4], [0.5, 0.5, 0.6]])
    with pytest.raises(BandflowError, match="no charge-balanced"):
        oxidation_states(superoxide)


def test_library_source_of_unknown_name():
    with pytest.raises(BandflowError, match="unknown bulk"):
        library_source("Unobtainium")


def test_describe_user_file(tmp_path):
    path = tmp_path / "periclase.cif"
    CifWriter(_rocksalt()).write_file(path)
    info = describe_bulk(path)
    assert info["formula"] == "MgO"
    assert info["spacegroup"] == "Fm-3m (225)"
    assert info["atoms_primitive"] == 2
    assert info["oxidation_states"] == "Mg+2 O-2"
    assert "reference" not in info


# ----------------------------------------------------------------------------------------- summary cache
@pytest.fixture
def small_library(tmp_path, monkeypatch):
    """A library of two entries, so that cache misses stay cheap."""
    library = tmp_path / "library"
    library.mkdir()
    for name in ("MgO", "ZnO"):
        (library / f"{name}.cif").write_bytes((LIBRARY_DIR / f"{name}.cif").read_bytes())
    monkeypatch.setattr(bulk_module, "LIBRARY_DIR", library)
    bulk_module._load_library_entry.cache_clear()
    yield library
    bulk_module._load_library_entry.cache_clear()


def test_summaries_are_cached_and_stale_entries_recomputed(small_library):
    first = library_summaries()
    assert [(s.name, s.spacegroup_number, s.n_atoms_primitive) for s in first] == [("MgO", 225, 2), ("ZnO", 186, 4)]
    cache_path = get_settings().data_dir / "cache" / "bulk_summaries.json"
    cached = json.loads(cache_path.read_text())
    assert set(cached["entries"]) == {"MgO", "ZnO"}

    # a cached summary whose file digest no longer matches is recomputed, not trusted
    cached["entries"]["MgO"]["sha256"] = "0" * 64
    cached["entries"]["MgO"]["summary"]["n_atoms_primitive"] = 999
    cache_path.write_text(json.dumps(cached))
    assert library_summaries() == first
    assert json.loads(cache_path.read_text())["entries"]["MgO"]["summary"]["n_atoms_primitive"] == 2


def test_corrupt_or_unwritable_cache_is_harmless(small_library, tmp_path, settings_env):
    cache_path = get_settings().data_dir / "cache" / "bulk_summaries.json"
    cache_path.parent.mkdir(parents=True)
    cache_path.write_text("{not json")
    expected = library_summaries()
    assert json.loads(cache_path.read_text())["entries"]["ZnO"]["summary"]["spacegroup_number"] == 186

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data folder should be")
    settings_env(BANDFLOW_DATA_DIR=str(blocked))
    assert library_summaries() == expected


# ----------------------------------------------------------------------------------------- CLI
def _run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BANDFLOW_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "bandflow.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_cli_bulk_list_shows_every_entry(tmp_path):
    result = _run_cli("bulk", "list", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "formula", "space", "group", "atoms/prim."]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == NAMES
    for name, (_, formula, symbol, number, n_atoms) in rows.items():
        bulk = load_bulk(name)
        assert formula == bulk.formula
        assert int(number.strip("()")) == library_source(name).spacegroup_number
        assert int(n_atoms) == len(bulk.primitive())
        assert symbol == bulk.spacegroup()[0]


def test_cli_bulk_list_json():
    result = CliRunner().invoke(app, ["bulk", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == NAMES
    assert {"name", "formula", "spacegroup", "spacegroup_number", "n_atoms_primitive"} == set(rows[0])


def test_cli_bulk_show_library_entry():
    result = CliRunner().invoke(app, ["bulk", "show", "tio2-rutile", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["spacegroup"] == "P4_2/mnm (136)"
    assert "Burdett" in info["reference"]


def test_cli_error_exits_2_with_one_line(tmp_path):
    result = _run_cli("bulk", "show", "Unobtainium", data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown bulk 'Unobtainium'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_bulk_list_columns_fit_long_names(monkeypatch):
    long_name = "MgSiO3-ilmenite-with-a-long-name"
    rows = [bulk_module.BulkSummary(long_name, "MgSiO3", "R-3", 148, 10),
            bulk_module.BulkSummary("MgO", "MgO", "Fm-3m", 225, 2)]
    monkeypatch.setattr(bulk_module, "library_summaries", lambda: rows)
    result = CliRunner().invoke(app, ["bulk", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split() for line in lines[1:]] == [[long_name, "MgSiO3", "R-3", "(148)", "10"],
                                                    ["MgO", "MgO", "Fm-3m", "(225)", "2"]]
    assert len({len(line) for line in lines}) == 1  # the right-aligned last column lines up under its header
    assert lines[1].index("MgSiO3", 1) == lines[2].index("MgO", 3) == lines[0].index("formula")


def test_library_builder_leaves_a_cif_that_fails_its_check_as_it_was(tmp_path, monkeypatch, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "build_bulk_library.py"
    spec = importlib.util.spec_from_file_location("build_bulk_library", path)
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, tool)  # its dataclasses look their module up there
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "LIBRARY_DIR", tmp_path)  # first: a regression must not rewrite the shipped file
    (tmp_path / "MgO.cif").write_text("the library's file")
    assert tool.main(["--only", "MgO", "NoSuchOxide"]) == 2
    assert capsys.readouterr().err.strip() == "error: no library entry named NoSuchOxide"
    assert (tmp_path / "MgO.cif").read_text() == "the library's file"
    monkeypatch.setattr(tool, "check_written", lambda entry, written: ["structure read back differs"])
    assert tool.main(["--only", "MgO"]) == 1 and (tmp_path / "MgO.cif").read_text() == "the library's file"
    assert [p.name for p in tmp_path.iterdir()] == ["MgO.cif"]
