"""Running CP2K through custodian: binary check, retry ladder, failure messages.

Fast tests use a stand-in executable (a short Python script written here) that answers like CP2K 2023.1
by printing excerpts of real outputs: unconverged while MAX_SCF is below a threshold, converged after.
The ``slow`` tests run the real CP2K on tiny systems.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cp2k.inputs import Cp2kInput

from bandflow.cp2k import Cp2kRunError, check_cp2k, run_cp2k
from bandflow.cp2k.run import HfxMemoryMonitor, ScfDivergenceMonitor, ScfLadderHandler, ScfStagnationMonitor
from bandflow.cp2k.sets import Cp2kStaticSetGenerator
from bandflow.errors import BandflowError

DATA = Path(__file__).parent / "data" / "cp2k"

FAKE_CP2K = """import os, re, shutil, sys, time
from pathlib import Path
if "--version" in sys.argv:
    print(" CP2K version 2023.1")
    sys.exit(0)
text = Path(sys.argv[sys.argv.index("-i") + 1]).read_text()
max_scf = int(re.search(r"MAX_SCF\\s+(\\d+)", text).group(1))
with open("calls.txt", "a") as log:
    log.write(f"{{max_scf}} {{'SMEAR' in text}}\\n")
ok = max_scf >= {needed}
time.sleep(float(os.environ.get("FAKE_CP2K_SECONDS", "0")))
sys.stdout.write(Path("{data}", "mgo16_pbe_gamma.out" if ok else "mgo_scf_not_converged.out").read_text())
"""


@pytest.fixture
def cp2k_command(settings_env):
    """Point the cp2k_command setting somewhere for one test."""
    return lambda command: settings_env(BANDFLOW_CP2K_COMMAND=command)


def stand_in_cp2k(tmp_path: Path, name: str, body: str) -> Path:
    """An executable Python script ``tmp_path/bin/name`` that stands in for CP2K."""
    script = tmp_path / "bin" / name
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def fake_cp2k(tmp_path: Path, needed_max_scf: int) -> Path:
    return stand_in_cp2k(tmp_path, "cp2k.fake", FAKE_CP2K.format(needed=needed_max_scf, data=DATA))


def mgo_primitive() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2112), ["Mg", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def write_input(directory: Path, **kwargs) -> None:
    pytest.importorskip("bandflow.cp2k.sets")
    data_dir = Path("/usr/share/cp2k")
    if not (data_dir / "BASIS_MOLOPT").is_file():
        pytest.skip("CP2K data files not installed")
    Cp2kStaticSetGenerator(data_dir=data_dir, **kwargs).get_input_set(mgo_primitive()).write_input(directory)


# -------------------------------------------------------------------------------------- the executable
def test_missing_cp2k_is_one_clear_error(cp2k_command):
    cp2k_command("cp2k.nonexistent-binary")
    with pytest.raises(BandflowError, match="CP2K executable 'cp2k.nonexistent-binary' not found on PATH"):
        check_cp2k()


def test_check_cp2k_reads_the_version_through_a_launcher_prefix(tmp_path, cp2k_command):
    script = fake_cp2k(tmp_path, needed_max_scf=0)
    cp2k_command(f"env OMP_PROC_BIND=false {script}")
    assert check_cp2k() == "2023.1"


# ------------------------------------------------------------------------------------------ the ladder
def test_unconverged_scf_climbs_the_ladder_then_succeeds(tmp_path, cp2k_command, monkeypatch):
    cp2k_command(str(fake_cp2k(tmp_path, needed_max_scf=120)))
    monkeypatch.setenv("FAKE_CP2K_SECONDS", "1.5")
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    (run_dir / "cp2k.out").write_text("output of an earlier run\n")
    (run_dir / "cp2k.out.attempt2").write_text("a failed attempt of an earlier run\n")
    summary = run_cp2k(run_dir)
    assert summary.failure_reason() is None and summary.band_edges().vbm == 7.601058
    # the time of both attempts, not the 74.8 s that the (recorded) output of the last one states
    assert 3.0 <= summary.wall_time < 60
    assert (run_dir / "calls.txt").read_text().split() == ["60", "False", "120", "False"]
    corrections = json.loads((run_dir / "custodian.json").read_text())[0]["corrections"]
    assert corrections[0]["errors"] == ["SCF not converged; retrying with more SCF steps"]
    ci = Cp2kInput.from_file(run_dir / "cp2k.inp")
    assert ci.by_path("FORCE_EVAL/DFT/SCF").get("MAX_SCF").values == (120,)
    assert "earlier run" not in (run_dir / "cp2k.out").read_text()
    first = (run_dir / "cp2k.out.attempt1").read_text()  # the failed attempt's SCF history is kept
    assert "NOT converged" in first and first != (run_dir / "cp2k.out").read_text()
    assert not (run_dir / "cp2k.out.attempt2").exists()


def test_second_rung_adds_smearing_and_gentler_mixing(tmp_path, cp2k_command):
    cp2k_command(str(fake_cp2k(tmp_path, needed_max_scf=10_000)))
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    handler = ScfLadderHandler()
    (run_dir / "cp2k.out").write_text((DATA / "mgo_scf_not_converged.out").read_text())
    assert handler.check(run_dir)
    handler.correct(str(run_dir))
    handler.correct(str(run_dir))
    scf = Cp2kInput.from_file(run_dir / "cp2k.inp").by_path("FORCE_EVAL/DFT/SCF")
    assert scf.get("MAX_SCF").values == (120,)
    assert scf.by_path("MIXING").get("ALPHA").values == (0.1,)
    smear = [s for s in scf.subsections.values() if s.name.upper() == "SMEAR"]
    assert smear and smear[0].get("METHOD").values == ("FERMI_DIRAC",)


def scf_output(convergences: list[float]) -> str:
    """A CP2K output whose last SCF loop has these convergence values and did not converge."""
    lines = [" SCF WAVEFUNCTION OPTIMIZATION", "",
             "  Step     Update method      Time    Convergence         Total energy    Change"]
    lines += [f"    {i} Broy./Diag. 0.40E+00    5.5     {c:.8f}      -426.2{i:08d}  1.0E-02"
              for i, c in enumerate(convergences, 1)]
    return "\n".join([*lines, "", " *** WARNING in qs_scf.F:601 :: SCF run NOT converged ***", ""])


def test_a_stagnant_scf_goes_straight_to_smearing_with_more_steps(tmp_path):
    write_input(tmp_path, max_scf=60)
    handler = ScfLadderHandler()
    (tmp_path / "cp2k.out").write_text(scf_output([0.9] * 50 + [0.2, 0.06, 0.11] * 4))  # sloshing: SnO2 (112)
    assert handler.stagnant_convergence(tmp_path) == pytest.approx(0.11)  # the median
    report = handler.correct(str(tmp_path))
    assert report["errors"] == ["SCF not converged; retrying with more SCF steps, gentler mixing and smearing "
                                "(stagnant at 1.1e-01)"]
    scf = Cp2kInput.from_file(tmp_path / "cp2k.inp").by_path("FORCE_EVAL/DFT/SCF")
    assert scf.get("MAX_SCF").values == (120,) and scf.by_path("MIXING").get("ALPHA").values == (0.1,)
    assert [s for s in scf.subsections.values() if s.name.upper() == "SMEAR"]
    assert handler.rung == 2  # the next failure takes the last rung
    assert not ScfLadderHandler.LADDER[0][1].keys() & ScfLadderHandler.LADDER[1][1].keys()  # merged, none lost


def test_a_sloshing_scf_with_occasional_dips_is_stagnant(tmp_path):
    write_input(tmp_path, max_scf=60)
    # Sr2TiO4 (111) slab, 2026-12-04: 0.22 every step but two, the energy swinging by ±0.43 Ha
    dips = [0.2273, 0.2249, 0.0164, 0.2243, 0.2232, 0.2229, 0.2231, 0.2227, 0.2231, 0.0035]
    (tmp_path / "cp2k.out").write_text(scf_output([0.5] * 50 + dips))
    assert ScfLadderHandler().stagnant_convergence(tmp_path) == pytest.approx(0.2231)
    (tmp_path / "cp2k.out").write_text(scf_output([0.5] * 50 + [0.2] * 4 + [5e-3] * 6))  # settling down
    assert ScfLadderHandler().stagnant_convergence(tmp_path) is None
    falling = [0.05 * 0.1 ** (i / 9) for i in range(10)]  # 0.05 → 0.005: slow, median 0.016, not stuck
    (tmp_path / "cp2k.out").write_text(scf_output([0.5] * 50 + falling))
    assert ScfLadderHandler().stagnant_convergence(tmp_path) is None


def test_a_scf_stuck_just_below_1e_2_is_stagnant(tmp_path):
    write_input(tmp_path, max_scf=60)
    # SnO bulk, PBE on a k-mesh, 24 atoms (2026-12-04), steps 51-60 of 60; it went on like this to step 120
    stuck = [0.01008, 0.01003, 0.01004, 0.01001, 0.00999, 0.00908, 0.00805, 0.00840, 0.00724, 0.00807]
    (tmp_path / "cp2k.out").write_text(scf_output([0.0101] * 50 + stuck))
    assert ScfLadderHandler().stagnant_convergence(tmp_path) == pytest.approx(0.009535)


def test_a_slow_but_converging_scf_gets_more_steps_first(tmp_path):
    write_input(tmp_path, max_scf=60)
    handler = ScfLadderHandler()
    (tmp_path / "cp2k.out").write_text(scf_output([0.5] * 50 + [2e-3, 1e-3, 5e-4, 3e-4, 2e-4] * 2))
    assert handler.stagnant_convergence(tmp_path) is None
    assert handler.correct(str(tmp_path))["errors"] == ["SCF not converged; retrying with more SCF steps"]
    scf = Cp2kInput.from_file(tmp_path / "cp2k.inp").by_path("FORCE_EVAL/DFT/SCF")
    assert scf.get("MAX_SCF").values == (120,) and not [s for s in scf.subsections.values() if s.name.upper() == "SMEAR"]


# Ag2O, PBE at Γ in 36 atoms (2026-12-05), steps 2-23 of its first attempt: sloshing from step 4 on
AG2O_STEPS = [0.4913, 0.1148, 0.0593, 0.0580, 0.0070, 0.0587, 0.0357, 0.0479, 0.0596, 0.0529, 0.0353, 0.0430,
              0.0512, 0.0451, 0.0472, 0.0396, 0.0454, 0.0302, 0.0445, 0.0520, 0.0463, 0.0466]


def test_stagnation_monitor_watches_only_the_first_attempt_after_its_minimum_steps(tmp_path):
    write_input(tmp_path, max_scf=60)
    ladder = ScfLadderHandler()
    monitor = ScfStagnationMonitor(ladder)
    assert not monitor.check(tmp_path)  # no output yet
    (tmp_path / "cp2k.out").write_text(scf_output(AG2O_STEPS))
    assert not monitor.check(tmp_path)  # 22 steps: too early to judge
    (tmp_path / "cp2k.out").write_text(scf_output(AG2O_STEPS + [0.0412, 0.0498, 0.0455]))
    assert monitor.check(tmp_path)
    assert monitor.correct(str(tmp_path))["errors"][0].endswith("gentler mixing and smearing (stagnant at 4.5e-02)")
    assert ladder.rung == 2 and not monitor.check(tmp_path)  # the smeared retry is left to run its course
    converging = [0.5 * 0.6 ** i for i in range(40)]  # 0.5 → 1e-9 in 40 steps
    fresh = ScfStagnationMonitor(ScfLadderHandler())
    (tmp_path / "cp2k.out").write_text(scf_output(converging))
    assert not fresh.check(tmp_path)
    for real in ("mgo16_pbe_gamma.out", "na2o_hse06_converged.out", "cao_pbe_kpoints.out"):
        (tmp_path / "cp2k.out").write_text((DATA / real).read_text())
        assert not ScfStagnationMonitor(ScfLadderHandler(), min_steps=5).check(tmp_path), real


def test_a_stagnant_first_attempt_is_stopped_and_retried_smeared(tmp_path, cp2k_command):
    steps = "\n".join(f"    {i} Broy./Diag. 0.40E+00   26.0     {c:.8f}     -1080.2{i:08d}  1.0E-02"
                      for i, c in enumerate(AG2O_STEPS * 2, 1))
    script = stand_in_cp2k(tmp_path, "cp2k.sloshing", f"""import re, sys, time
from pathlib import Path
smeared = "SMEAR" in Path(sys.argv[sys.argv.index("-i") + 1]).read_text()
with open("calls.txt", "a") as log:
    log.write(f"{{'smeared' if smeared else 'plain'}}\\n")
if smeared:
    sys.stdout.write(Path("{DATA}", "mgo16_pbe_gamma.out").read_text())
    sys.exit(0)
sys.stdout.write(" SCF WAVEFUNCTION OPTIMIZATION\\n\\n" + {steps!r} + "\\n")
sys.stdout.flush()
time.sleep(120)  # a real run would slosh on until MAX_SCF
""")
    cp2k_command(str(script))
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    started = time.perf_counter()
    summary = run_cp2k(run_dir, monitor_seconds=2)
    assert time.perf_counter() - started < 60  # stopped by the monitor, not by the 120 s sleep
    assert summary.scf_converged and (run_dir / "calls.txt").read_text().split() == ["plain", "smeared"]
    assert "44 Broy./Diag. 0.40E+00   26.0     0.04660000" in (run_dir / "cp2k.out.attempt1").read_text()  # the stopped attempt's history is kept
    scf = Cp2kInput.from_file(run_dir / "cp2k.inp").by_path("FORCE_EVAL/DFT/SCF")
    assert scf.get("MAX_SCF").values == (120,)


def test_scf_that_never_converges_fails_with_the_reason(tmp_path, cp2k_command):
    cp2k_command(str(fake_cp2k(tmp_path, needed_max_scf=10_000)))
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    with pytest.raises(Cp2kRunError, match=r"CP2K run in .*run failed: SCF not converged"):
        run_cp2k(run_dir)
    assert len((run_dir / "calls.txt").read_text().splitlines()) == 1 + len(ScfLadderHandler.LADDER)


def test_divergence_monitor_flags_the_real_diverging_hybrid_and_not_a_converging_one(tmp_path):
    monitor = ScfDivergenceMonitor()
    diverging = (DATA / "li2o_hse06_diverging.out").read_text()
    (tmp_path / "cp2k.out").write_text(diverging)
    assert monitor.check(tmp_path)
    assert monitor.reason.startswith("SCF diverging: the energy jumped by more than 100 Ha in each of steps 14–18")
    assert monitor.correct(tmp_path)["actions"] is None  # stopped, not retried
    early = diverging[:diverging.index("     6 P_Mix")]  # steps 1–5: fewer than 1 + window steps yet
    (tmp_path / "cp2k.out").write_text(early)
    assert not ScfDivergenceMonitor().check(tmp_path)
    assert ScfDivergenceMonitor(window=3).check(tmp_path)
    (tmp_path / "cp2k.out").write_text((DATA / "na2o_hse06_converged.out").read_text())
    assert not ScfDivergenceMonitor(window=3).check(tmp_path)  # its first steps moved by 0.07 Ha at most
    (tmp_path / "cp2k.out").unlink()
    assert not monitor.check(tmp_path)


def test_a_diverging_run_is_stopped_early_with_the_reason(tmp_path, cp2k_command):
    script = stand_in_cp2k(tmp_path, "cp2k.diverging", f"""import sys, time
from pathlib import Path
with open("calls.txt", "a") as log:
    log.write("run\\n")
sys.stdout.write(Path("{DATA}", "li2o_hse06_diverging.out").read_text())
sys.stdout.flush()
time.sleep(120)  # a real run would go on diverging until MAX_SCF
""")
    cp2k_command(str(script))
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    started = time.perf_counter()
    with pytest.raises(Cp2kRunError, match=r"run failed: SCF diverging: the energy jumped by more than 100 Ha"):
        run_cp2k(run_dir, monitor_seconds=2)
    assert time.perf_counter() - started < 60  # stopped by the monitor, not by the 120 s sleep
    assert (run_dir / "calls.txt").read_text().split() == ["run"]  # and not retried


def test_memory_monitor_warns_once_about_integrals_on_the_fly_and_never_stops_the_run(tmp_path, caplog):
    monitor = HfxMemoryMonitor()
    (tmp_path / "cp2k.out").write_text((DATA / "na2o_hse06_converged.out").read_text())  # all in core
    assert not monitor.check(tmp_path) and monitor.warning is None
    (tmp_path / "cp2k.out").write_text((DATA / "li2o_hse06_on_the_fly.out").read_text())
    with caplog.at_level("WARNING", logger="bandflow.cp2k.run"):
        assert not monitor.check(tmp_path)  # a warning, not a correction
        assert not monitor.check(tmp_path)
    assert len(caplog.records) == 1
    assert "keeps 3.1e+09 of 6.28e+09 exchange integrals in memory (1999 MiB)" in monitor.warning
    assert "recomputes 49% of them at every SCF step" in monitor.warning
    assert "about 4051 MiB would hold them all: raise BANDFLOW_HFX_MEMORY_MB" in monitor.warning


def test_a_run_short_of_exchange_memory_is_reported_while_it_runs(tmp_path, cp2k_command, caplog):
    script = stand_in_cp2k(tmp_path, "cp2k.short_of_memory", f"""import sys
from pathlib import Path
sys.stdout.write(Path("{DATA}", "li2o_hse06_on_the_fly.out").read_text())
sys.stdout.write(Path("{DATA}", "mgo16_pbe_gamma.out").read_text())
""")
    cp2k_command(str(script))
    run_dir = tmp_path / "run"
    write_input(run_dir, max_scf=60)
    with caplog.at_level("WARNING", logger="bandflow.cp2k.run"):
        summary = run_cp2k(run_dir, monitor_seconds=0.1)
    assert summary.failure_reason() is None  # slow, not wrong: the run completes
    assert [r.message for r in caplog.records if "exchange integrals" in r.message]
    assert summary.hfx_memory.on_the_fly == 3090260097


def test_a_runner_stopped_by_sigterm_stops_its_cp2k(tmp_path):
    """`kill PID` on a runner inside a CP2K run: the runner exits with 143 and takes CP2K with it (before,
    the CP2K process ran on as an orphan, holding a core)."""
    script = stand_in_cp2k(tmp_path, "cp2k.slow", """import os, time
from pathlib import Path
Path("cp2k.pid").write_text(str(os.getpid()))
time.sleep(120)
""")
    run_dir = tmp_path / "run"
    write_input(run_dir)
    runner = subprocess.Popen(
        [sys.executable, "-c", "from bandflow.cli import exit_on_sigterm; from bandflow.cp2k import run_cp2k; "
         f"exit_on_sigterm(); run_cp2k({str(run_dir)!r})"],
        env={**os.environ, "BANDFLOW_CP2K_COMMAND": str(script)})
    pid_file = run_dir / "cp2k.pid"
    cp2k_pid = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file() and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.2)
        assert pid_file.is_file(), "the stand-in CP2K never started"
        time.sleep(0.2)  # let the stand-in finish writing its pid
        cp2k_pid = int(pid_file.read_text())
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 143
        with pytest.raises(ProcessLookupError):
            os.kill(cp2k_pid, 0)
    finally:  # nothing of this test outlives it, whatever failed
        if runner.poll() is None:
            runner.kill()
        if cp2k_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(cp2k_pid, signal.SIGKILL)


def test_cp2k_that_cannot_start_is_a_run_error(tmp_path, cp2k_command):
    cp2k_command(str(tmp_path / "missing-cp2k"))
    run_dir = tmp_path / "run"
    write_input(run_dir)
    with pytest.raises(Cp2kRunError, match="could not be started"):
        run_cp2k(run_dir)


# ------------------------------------------------------------------------------------------ real CP2K
needs_cp2k = pytest.mark.skipif(os.system("command -v cp2k.psmp >/dev/null 2>&1") != 0,
                                reason="cp2k.psmp not installed")


@pytest.mark.slow
@needs_cp2k
def test_real_cp2k_mgo_primitive_pbe_with_kpoints(tmp_path, cp2k_command):
    cp2k_command("cp2k.psmp")
    write_input(tmp_path, kpoints=(4, 4, 4))
    summary = run_cp2k(tmp_path)
    edges = summary.band_edges()
    assert summary.version == "2023.1" and summary.scf_converged and edges.n_kpoints == 36  # 4×4×4, each k, −k pair once
    assert 4.3 < edges.gap < 4.9  # PBE, direct at Γ
    assert edges.vbm_kpoint == edges.cbm_kpoint  # direct gap (at Γ)
    assert np.isfinite(summary.total_energy)
