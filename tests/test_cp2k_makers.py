"""The CP2K makers run as jobflow jobs.

Fast tests drive the makers with a stand-in executable that prints excerpts of real CP2K outputs and writes
the coarse MgO(100) cube, so the plumbing (run folders, wavefunction hand-over, output documents, the data
store) is checked in seconds. The ``slow`` tests run real CP2K: the MgO(100) slab end to end, and a short
slab relaxation.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure
from pymatgen.io.xyz import XYZ

from bandflow.alignment import run_seconds
from bandflow.cp2k import Cp2kBulkHybridMaker, Cp2kSlabRelaxMaker, Cp2kSlabStaticMaker
from bandflow.cp2k.parsing import parse_output
from bandflow.cp2k.reuse import kept_run_keys, load_kept_runs, save_kept_runs
from bandflow.cp2k.schemas import Cp2kBulkHybridOutput, Cp2kSlabStaticOutput
from bandflow.errors import BandflowError
from bandflow.potential import align
from bandflow.protocols import MAX_GAMMA_SAMPLING_ERROR
from bandflow.settings import get_settings

DATA = Path(__file__).parent / "data" / "cp2k"

# Answers like CP2K: Γ runs print the MgO 16-atom excerpt, k-point runs the CaO one; writes a restart
# file and, when asked for, the coarse MgO(100) V_HARTREE cube.
FAKE_CP2K = """#!{python}
import shutil, sys
from pathlib import Path
text = Path(sys.argv[sys.argv.index("-i") + 1]).read_text()
if "&HF" in text and Path("../../stop_hybrid").exists():  # a bulk job stopped in its hybrid run
    sys.exit("killed")
name = "cao_pbe_kpoints.out" if "&KPOINTS" in text else "mgo16_pbe_gamma.out"
sys.stdout.write(Path("{data}", name).read_text())
Path("bandflow-RESTART.wfn").write_text("wavefunction")
if "&KPOINTS" in text:  # k-point restarts with CP2K's backup copies, as a long SCF leaves them
    for restart in ("bandflow-RESTART.kp", "bandflow-RESTART.kp.bak-1", "bandflow-RESTART.wfn.bak-1"):
        Path(restart).write_text("k-point wavefunction")
if "V_HARTREE_CUBE" in text:
    shutil.copyfile(Path("{data}", "mgo100_v_hartree_coarse.cube"), "bandflow-v_hartree-1_0.cube")
with open("../calls.txt", "a") as log:
    log.write(Path.cwd().name + " " + str(Path("pbe.wfn").is_file()) + "\\n")
"""


@pytest.fixture
def fake_cp2k(tmp_path, settings_env):
    script = tmp_path / "cp2k.fake"
    script.write_text(FAKE_CP2K.format(python=sys.executable, data=DATA))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    # the bulk maker keeps finished runs under the data directory: a folder of the test's, not ~/.bandflow
    settings_env(BANDFLOW_CP2K_COMMAND=str(script), BANDFLOW_DATA_DIR=str(tmp_path / "data"))
    if not Path("/usr/share/cp2k/BASIS_MOLOPT").is_file():
        pytest.skip("CP2K data files not installed")
    return script


def store() -> JobStore:
    return JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})


def run(job, root: Path, job_store: JobStore | None = None):
    responses = run_locally(job, store=job_store or store(), create_folders=True, root_dir=root,
                            raise_immediately=True, log=False)
    return responses[job.uuid][1].output


def stop_in_hybrid(maker: Cp2kBulkHybridMaker, root: Path) -> None:
    """Run the bulk job on MgO in ``root`` with its hybrid run killed (its PBE runs are kept)."""
    root.mkdir()
    (root / "stop_hybrid").touch()
    with pytest.raises(Exception, match="hse06 failed"):
        run(maker.make(rocksalt()), root)


def rocksalt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2112), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def mgo100_slab(layers: int = 5, vacuum: float = 12.0) -> Structure:
    a = 4.2112 / np.sqrt(2)
    species, coords = [], []
    for layer in range(layers):
        pair = ("Mg", "O") if layer % 2 == 0 else ("O", "Mg")
        for (x, y), el in zip(((0, 0), (0.5, 0.5)), pair, strict=True):
            species.append(el)
            coords.append([x * a, y * a, layer * 4.2112 / 2])
    c = (layers - 1) * 4.2112 / 2 + vacuum
    return Structure(Lattice.from_parameters(a, a, c, 90, 90, 90), species, coords, coords_are_cartesian=True)


# ----------------------------------------------------------------------------------------------- fast
def test_bulk_maker_runs_pbe_gamma_pbe_kpoints_then_hybrid_from_the_pbe_wavefunction(tmp_path, fake_cp2k):
    out = run(Cp2kBulkHybridMaker(max_sampling_error=None).make(rocksalt()), tmp_path)
    assert isinstance(out, Cp2kBulkHybridOutput)
    calls = (next(tmp_path.glob("job_*")) / "calls.txt").read_text().split()
    assert calls == ["pbe_gamma", "False", "pbe_kpoints", "False", "hse06", "True"]
    # stand-in outputs: Γ runs print MgO (VBM 7.601058, CBM 11.900288), the k-point run CaO
    assert out.k_correction.vbm == pytest.approx(6.598332 - 7.601058)
    assert out.vbm == pytest.approx(out.vbm_gamma + out.k_correction.vbm)
    assert out.gap == pytest.approx(out.cbm - out.vbm) and out.n_atoms == 16
    folder = next(tmp_path.glob("job_*"))
    energy = {step: parse_output(folder / step / "cp2k.out").total_energy for step in ("pbe_gamma", "pbe_kpoints")}
    assert out.gamma_sampling_error == pytest.approx((energy["pbe_gamma"] - energy["pbe_kpoints"]) / 16)
    assert [c["n_atoms"] for c in out.cells_tried] == [16]  # no growth with max_sampling_error=None
    assert out.gamma_cell_width == pytest.approx(out.cells_tried[0]["width"]) and out.gamma_cell_width > 4
    assert out.code_version == "2023.1" and out.functional == "HSE06"
    assert set(out.wall_time) == {"pbe_gamma", "pbe_kpoints", "hybrid", "total", "reused"}
    assert out.wall_time["reused"] == 0.0 and out.wall_time["pbe_gamma"] > 0


def test_a_stopped_bulk_job_reuses_its_finished_pbe_runs(tmp_path, fake_cp2k, settings_env):
    maker = Cp2kBulkHybridMaker(max_sampling_error=None)
    stop_in_hybrid(maker, tmp_path / "first")
    kept = tmp_path / "data" / "finished_runs"
    assert len(list(kept.iterdir())) == 2  # the two PBE runs, not the failed hybrid
    keys = kept_run_keys()
    out = run(maker.make(rocksalt()), tmp_path / "second")
    calls = (next((tmp_path / "second").glob("job_*")) / "calls.txt").read_text().split()
    assert calls == ["hse06", "True"]  # the PBE runs came back from the first job, with the wavefunction
    folder = next((tmp_path / "second").glob("job_*"))
    assert (folder / "pbe_gamma" / "cp2k.out").is_file() and (folder / "pbe_kpoints" / "cp2k.inp").is_file()
    # no time spent on them here, but what they cost when they ran is counted (CP2K's timing in their outputs)
    first = next((tmp_path / "first").glob("job_*"))
    cost = {step: parse_output(first / step / "cp2k.out").wall_time for step in ("pbe_gamma", "pbe_kpoints")}
    assert {step: out.wall_time[step] for step in cost} == cost and all(cost.values())
    assert out.wall_time["reused"] == pytest.approx(sum(cost.values()))
    assert run_seconds(out, None)["bulk_edges"] == pytest.approx(out.wall_time["total"] + sum(cost.values()))
    fresh = run(Cp2kBulkHybridMaker(max_sampling_error=None).make(rocksalt()), tmp_path / "fresh")
    assert (out.vbm, out.cbm, out.gamma_sampling_error) == (fresh.vbm, fresh.cbm, fresh.gamma_sampling_error)
    assert [p.name for p in kept.iterdir()] == ["forgotten.txt"]  # a finished job leaves nothing kept ...
    assert set((kept / "forgotten.txt").read_text().split()) == set(keys)  # ... but notes which it removed
    # other inputs (here the cutoff) are other runs; and with reuse off every run is computed again
    stop_in_hybrid(maker, tmp_path / "third")
    run(Cp2kBulkHybridMaker(max_sampling_error=None, cutoff=500).make(rocksalt()), tmp_path / "fourth")
    assert len((next((tmp_path / "fourth").glob("job_*")) / "calls.txt").read_text().split()) == 6
    settings_env(BANDFLOW_REUSE_FINISHED_RUNS="false")
    run(maker.make(rocksalt()), tmp_path / "fifth")
    assert len((next((tmp_path / "fifth").glob("job_*")) / "calls.txt").read_text().split()) == 6


def test_kept_runs_travel_to_another_machine_as_archives(tmp_path, fake_cp2k, settings_env):
    maker = Cp2kBulkHybridMaker(max_sampling_error=None)
    stop_in_hybrid(maker, tmp_path / "first")
    carried = tmp_path / "repo" / "finished_runs"
    carried.mkdir(parents=True)
    theirs = carried / "backup.tar.gz"  # not an archive of a kept run: never touched
    theirs.write_bytes(b"a user's file")
    assert save_kept_runs(carried) == 2
    archives = sorted(p for p in carried.iterdir() if p != theirs)
    assert [p.name.removesuffix(".tar.gz") for p in archives] == kept_run_keys()
    first_bytes = [p.read_bytes() for p in archives]
    assert all(data[4:8] == bytes(4) for data in first_bytes)  # no date in the gzip header
    # an archive is written once: a later save leaves it as it is
    os.utime(archives[0], (1, 1))
    assert save_kept_runs(carried) == 2 and archives[0].stat().st_mtime == 1
    # another machine: a fresh data directory reuses both PBE runs once they are loaded
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "other"))
    assert kept_run_keys() == []
    theirs.rename(tmp_path / theirs.name)  # load-runs takes a folder of kept-run archives only
    assert load_kept_runs(carried) == 2 and load_kept_runs(carried) == 0
    # the same bytes when that machine archives them again (file dates do not enter the archive)
    again = tmp_path / "again"
    assert save_kept_runs(again) == 2 and [p.read_bytes() for p in sorted(again.iterdir())] == first_bytes
    # a third data directory that keeps one other run and never saw these: saving there removes none of them
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "third"))
    stop_in_hybrid(Cp2kBulkHybridMaker(max_sampling_error=None, cutoff=500), tmp_path / "elsewhere")
    assert save_kept_runs(carried) == 2 and all(p.is_file() for p in archives)
    for path in set(carried.iterdir()) - {*archives, theirs}:
        path.unlink()
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "other"))
    out = run(maker.make(rocksalt()), tmp_path / "second")
    calls = (next((tmp_path / "second").glob("job_*")) / "calls.txt").read_text().split()
    assert calls == ["hse06", "True"] and out.wall_time["reused"] > 0
    # the job succeeded, so nothing is kept there any more and saving removes its archives, and only those
    (tmp_path / theirs.name).rename(theirs)
    assert save_kept_runs(carried) == 0 and list(carried.iterdir()) == [theirs]


def test_a_bad_run_archive_is_one_error_and_adds_nothing(tmp_path, settings_env):
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"))
    folder = tmp_path / "runs"
    with pytest.raises(BandflowError, match="no kept CP2K runs"):
        load_kept_runs(folder)
    folder.mkdir()
    good, bad = "a" * 64, "b" * 64
    for key, name in ((good, "cp2k.out"), (bad, "sub/cp2k.out")):
        with tarfile.open(folder / f"{key}.tar.gz", "w:gz") as archive:
            info = tarfile.TarInfo(name)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"out"))
    with pytest.raises(BandflowError, match=f"{bad}.tar.gz: not a kept CP2K run"):
        load_kept_runs(folder)
    assert kept_run_keys() == []  # the good archive beside it was not added either
    (folder / f"{bad}.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(BandflowError, match="not a readable archive"):
        load_kept_runs(folder)
    damaged = bytearray((folder / f"{good}.tar.gz").read_bytes())
    damaged[-8] ^= 0xFF  # the gzip checksum: tarfile alone would read the files and not notice
    (folder / f"{bad}.tar.gz").write_bytes(bytes(damaged))
    with pytest.raises(BandflowError, match=f"{bad}.tar.gz: not a readable archive"):
        load_kept_runs(folder)
    (folder / f"{bad}.tar.gz").unlink()
    (folder / "notakey.tar.gz").write_bytes((folder / f"{good}.tar.gz").read_bytes())
    with pytest.raises(BandflowError, match="its name is not a run key"):
        load_kept_runs(folder)
    (folder / "notakey.tar.gz").unlink()
    assert load_kept_runs(folder) == 1 and kept_run_keys() == [good]
    assert (tmp_path / "data" / "finished_runs" / good / "cp2k.out").read_bytes() == b"out"


def test_cli_run_archives_say_what_is_missing_in_one_line(tmp_path):
    env = {**os.environ, "BANDFLOW_DATA_DIR": str(tmp_path / "data")}

    def checkpoint(command: str, folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bandflow.cli", "checkpoint", command, str(folder)],
                              capture_output=True, text=True, env=env, timeout=300, check=False)

    for command in ("save-runs", "load-runs"):
        result = checkpoint(command, tmp_path / "runs")
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "no " in result.stderr and "CP2K runs" in result.stderr
    assert not (tmp_path / "runs").exists()
    # a committed folder of archives, saved from a data directory that never kept its runs: left alone
    committed = tmp_path / "committed" / f"{'c' * 64}.tar.gz"
    committed.parent.mkdir()
    committed.write_bytes(b"an archive of another machine's run")
    result = checkpoint("save-runs", committed.parent)
    assert committed.is_file() and committed.read_bytes() == b"an archive of another machine's run"
    assert result.returncode != 0 and "nothing written or removed" in result.stderr
    # the data directory that kept that run, once its job has succeeded: the archive goes
    kept = tmp_path / "data" / "finished_runs"
    kept.mkdir(parents=True)
    (kept / "forgotten.txt").write_text(f"{'c' * 64}\n")
    result = checkpoint("save-runs", committed.parent)
    assert result.returncode == 0 and "removed 1 archives of runs whose job has succeeded" in result.stdout
    assert not committed.exists()


def test_a_kept_run_that_ages_out_goes_but_its_committed_archive_stays(tmp_path, settings_env):
    """An old kept run leaves the data directory, but its job has not succeeded (the run may have been loaded
    from another machine's archives for a bulk still to run), so saving does not remove its archive."""
    from bandflow.cp2k.reuse import forgotten_run_keys, keep_run, save_kept_runs

    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "cp2k.out").write_text("finished")
    old, new = "a" * 64, "b" * 64
    keep_run(old, tmp_path / "run")
    committed = tmp_path / "committed"
    assert save_kept_runs(committed) == 1
    os.utime(tmp_path / "data" / "finished_runs" / old, (0, 0))  # last changed in 1970
    keep_run(new, tmp_path / "run")  # keeping a run clears out the old ones
    assert kept_run_keys() == [new] and forgotten_run_keys() == set()
    assert save_kept_runs(committed) == 1
    assert sorted(p.name for p in committed.iterdir()) == [f"{old}.tar.gz", f"{new}.tar.gz"]


def test_a_kept_run_that_cannot_be_reused_or_kept_costs_only_the_reuse(tmp_path, fake_cp2k, settings_env, caplog):
    maker = Cp2kBulkHybridMaker(max_sampling_error=None)
    stop_in_hybrid(maker, tmp_path / "first")
    kept = sorted((tmp_path / "data" / "finished_runs").iterdir())
    (kept[0] / "cp2k.out").write_text("damaged\n")  # not a finished run any more
    (kept[0] / "cp2k.inp").write_text("edited\n")  # as custodian may leave it: the rerun must not start from it
    run(maker.make(rocksalt()), tmp_path / "second")
    calls = (next((tmp_path / "second").glob("job_*")) / "calls.txt").read_text().split()[::2]
    assert len(calls) == 2 and calls[-1] == "hse06"  # the damaged run again, the other one reused
    assert "is not a finished run" in caplog.text
    rerun = next(p for p in next((tmp_path / "second").glob("job_*")).iterdir() if p.name == calls[0])
    assert not (rerun / "cp2k.inp").read_text().startswith("edited")
    # an old entry (an interrupted job never run again) goes when the next run is kept
    stale = tmp_path / "data" / "finished_runs" / ("0" * 64)
    stale.mkdir()
    os.utime(stale, (0, 0))
    run(Cp2kBulkHybridMaker(max_sampling_error=None, cutoff=450).make(rocksalt()), tmp_path / "third")
    assert not stale.exists()
    # a data directory that cannot be written: the runs are computed and the job succeeds, with a warning
    (tmp_path / "blocked").write_text("a file where the data directory should be")
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "blocked"))
    out = run(maker.make(rocksalt()), tmp_path / "fourth")
    assert out.gap > 0 and "could not keep the finished CP2K run" in caplog.text


def test_bulk_maker_grows_the_gamma_cell_until_the_pbe_sampling_error_is_small(tmp_path, fake_cp2k):
    # the stand-in prints different systems at Γ and with k-points: the error never gets small
    assert Cp2kBulkHybridMaker().max_sampling_error == MAX_GAMMA_SAMPLING_ERROR == 0.03  # growth is the default
    maker = Cp2kBulkHybridMaker(max_grown_atoms=54, supercell_shapes="diagonal", min_hybrid_width=0)
    out = run(maker.make(rocksalt()), tmp_path / "a")
    folder = next((tmp_path / "a").glob("job_*"))
    calls = (folder / "calls.txt").read_text().split()[::2]
    assert calls == ["pbe_gamma", "pbe_kpoints", "pbe_gamma", "pbe_kpoints", "hse06"]
    assert [c["n_atoms"] for c in out.cells_tried] == [16, 54] and out.n_atoms == 54
    assert out.cells_tried[1]["width"] > out.cells_tried[0]["width"]
    assert (folder / "pbe_gamma-16-atoms" / "cp2k.out").is_file() and (folder / "pbe_kpoints-16-atoms").is_dir()
    # the default ladder: cells of any shape, each at least 15 % wider than the one before
    out = run(Cp2kBulkHybridMaker(max_grown_atoms=54, min_hybrid_width=0).make(rocksalt()), tmp_path / "c")
    assert [c["n_atoms"] for c in out.cells_tried] == [16, 24, 42] and out.n_atoms == 42
    widths = [c["width"] for c in out.cells_tried]
    assert all(wider >= 1.15 * narrower for narrower, wider in itertools.pairwise(widths))
    hybrid_cell = XYZ.from_file(next((tmp_path / "c").glob("job_*")) / "hse06" / "structure.xyz").molecule
    assert hybrid_cell.composition.as_dict() == {"Mg": 21, "O": 21}
    assert (out.settings["supercell_shapes"], out.settings["min_growth"]) == ("all", 1.15)
    # by default the ladder starts at the smallest cell at least min_hybrid_width (7 Å) wide
    out = run(Cp2kBulkHybridMaker(max_grown_atoms=64).make(rocksalt()), tmp_path / "d")
    assert [(c["n_atoms"], round(c["width"], 2)) for c in out.cells_tried] == [(48, 7.29), (64, 8.42)]
    out = run(Cp2kBulkHybridMaker(max_grown_atoms=40).make(rocksalt()), tmp_path / "e")  # none that wide: the widest
    assert [(c["n_atoms"], round(c["width"], 2)) for c in out.cells_tried] == [(40, 6.66)]
    assert out.settings["min_hybrid_width"] == 7.0
    # a threshold the first cell meets: one cell, as without the option
    out = run(Cp2kBulkHybridMaker(max_sampling_error=1e6, min_hybrid_width=0).make(rocksalt()), tmp_path / "b")
    assert [c["n_atoms"] for c in out.cells_tried] == [16]
    with pytest.raises(BandflowError, match="max_sampling_error must be a positive"):
        Cp2kBulkHybridMaker(max_sampling_error=0.0)
    with pytest.raises(BandflowError, match="supercell_shapes must be one of all, diagonal, got 'cubic'"):
        Cp2kBulkHybridMaker(supercell_shapes="cubic")
    with pytest.raises(BandflowError, match="min_hybrid_width must be a width"):
        Cp2kBulkHybridMaker(min_hybrid_width=-1)
    with pytest.raises(BandflowError, match="min_growth must be a width ratio of at least 1"):
        Cp2kBulkHybridMaker(min_growth=0.9)


def test_slab_maker_returns_the_potential_analysis_and_stores_the_cube_only_on_request(tmp_path, fake_cp2k):
    job_store = store()
    out = run(Cp2kSlabStaticMaker().make(mgo100_slab()), tmp_path / "a", job_store)
    assert isinstance(out, Cp2kSlabStaticOutput) and out.v_hartree_cube is None
    assert out.potential["potential_step"] == pytest.approx(11.858, abs=0.005)
    assert len(out.potential["z"]) == len(out.potential["planar"]) == 128
    assert out.kpoints == (4, 4, 1) and out.code_version == "2023.1"
    assert job_store.additional_stores["data"].count() == 0
    left = sorted(p.name for p in Path(out.dir_name).iterdir())
    assert "bandflow-RESTART.wfn" in left and not [n for n in left if ".kp" in n or ".bak-" in n]

    job = Cp2kSlabStaticMaker(store_cube=True).make(mgo100_slab())
    run(job, tmp_path / "b", job_store)
    assert job_store.additional_stores["data"].count() == 1
    stored = job_store.get_output(job.uuid, load=True)
    assert np.asarray(stored["v_hartree_cube"]["data"]).shape == (1, 1, 128)


def test_slab_maker_refuses_a_bulk_cell(tmp_path, fake_cp2k):
    with pytest.raises(BandflowError, match="vacuum"):
        run(Cp2kSlabStaticMaker().make(rocksalt()), tmp_path)


# ----------------------------------------------------------------------------------------------- slow
needs_cp2k = pytest.mark.skipif(os.system("command -v cp2k.psmp >/dev/null 2>&1") != 0,
                                reason="cp2k.psmp not installed")


@pytest.mark.slow
@needs_cp2k
def test_real_mgo100_slab_potential(tmp_path):
    """5-layer MgO(100), PBE, 4×4×1 k-points: flat vacuum plateaus and a 11.9 eV potential step."""
    get_settings.cache_clear()
    out = run(Cp2kSlabStaticMaker().make(mgo100_slab()), tmp_path)
    p = out.potential
    assert p["vacuum_level_top"] == pytest.approx(p["vacuum_level_bottom"], abs=0.01)
    assert 11.5 < p["potential_step"] < 12.2
    assert p["center_variation"] < 0.05
    assert out.vbm < p["vacuum_level_top"] and out.cbm - out.vbm > 2.5  # surface states narrow the PBE gap
    # the slab's own VBM sits where the bulk alignment puts it (PBE bulk VBM 7.09 eV from a k-converged run)
    ip, _ = align(p["vacuum_level_top"], p["slab_center_average"], 7.09, 11.68)
    assert ip == pytest.approx(p["vacuum_level_top"] - out.vbm, abs=0.15)
    assert not list(Path(out.dir_name).glob("*.kp"))


@pytest.mark.slow
@needs_cp2k
def test_real_slab_relaxation_keeps_fixed_atoms_and_site_order(tmp_path):
    """3-layer MgO(100), 2×2×1 k-points, relaxation cutoff 600 Ry, central layer fixed.

    Measured: the unrelaxed surface-Mg force is 0.85 Ha/bohr at 300 Ry, 0.06 at 400 Ry, 0.002 at 600 Ry;
    but even at 600 Ry moving a surface Mg by 0.01 Å changes its force by 0.026 Ha/bohr (the grid ripple of
    Mg's 2s2p semicore), and BFGS wandered on it until MAX_ITER. L-BFGS (the default since 2026-12-05)
    converges in 5 steps (152 s on a third of two cores), the surface O 0.012 Å inwards.
    """
    get_settings.cache_clear()
    slab = mgo100_slab(layers=3, vacuum=10.0)
    slab.add_site_property("selective_dynamics", [[i not in (2, 3)] * 3 for i in range(len(slab))])
    out = run(Cp2kSlabRelaxMaker(kpoints=(2, 2, 1), max_geo_steps=30).make(slab), tmp_path)
    relaxed = Structure.from_dict(out.structure)
    assert out.fixed_atoms == [3, 4] and out.n_steps >= 1
    assert [s.specie.symbol for s in relaxed] == [s.specie.symbol for s in slab]
    assert np.allclose(relaxed.cart_coords[2:4], slab.cart_coords[2:4], atol=1e-6)
    assert np.abs(relaxed.cart_coords - slab.cart_coords).max() < 0.1  # MgO(100) hardly relaxes
    assert out.n_steps < 30  # converged (MAX_FORCE 4.5e-4 Ha/bohr), not stopped at MAX_ITER
