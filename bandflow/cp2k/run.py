"""Running CP2K through custodian: one process with OpenMP threads, an SCF retry ladder, clear failures.

custodian's own CP2K pieces are used where they fit: :class:`custodian.cp2k.jobs.Cp2kJob` (input backup,
process start) and :class:`custodian.cp2k.interpreter.Cp2kModder` (applying corrections to the input).
bandflow replaces three of them:

* the job's ``terminate`` (custodian runs ``killall cp2k.psmp``, which would kill every CP2K run on the
  machine) by terminating only the process it started, and its environment by one that sets
  ``OMP_NUM_THREADS`` (one process with all cores was ~13 % faster than ``mpirun -np 2`` on 2 cores);
* the SCF handler: custodian's ``UnconvergedScfErrorHandler`` expects OT or adds 1000 empty orbitals for
  smearing, and reads ``SCF run NOT converged`` with pymatgen's parser, which misses CP2K 2023.1's abort;
  :class:`ScfLadderHandler` climbs a short ladder of diagonalisation settings instead (see there);
* the validator: custodian's ``Cp2kOutputValidator`` parses the whole output with pymatgen (which fails
  on some k-point outputs and then reports the run invalid); :class:`Cp2kCompletedValidator` checks the
  ``PROGRAM ENDED`` line and SCF convergence with :mod:`bandflow.cp2k.parsing`.

and adds two monitors custodian has no CP2K counterpart of: :class:`ScfDivergenceMonitor` stops a run whose
SCF energy swings by hundreds of Hartree per step, instead of letting it run to ``MAX_SCF`` and the ladder;
:class:`HfxMemoryMonitor` warns when a hybrid's exchange integrals do not fit in ``MAX_MEMORY``.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from custodian import Custodian
from custodian.cp2k.interpreter import Cp2kModder
from custodian.cp2k.jobs import Cp2kJob
from custodian.custodian import CustodianError, ErrorHandler, Validator

from bandflow.cp2k.parsing import Cp2kOutputSummary, last_scf_steps, parse_output
from bandflow.cp2k.sets import PROJECT_NAME
from bandflow.errors import BandflowError
from bandflow.settings import get_settings

logger = logging.getLogger(__name__)

INPUT_FILE = "cp2k.inp"
OUTPUT_FILE = "cp2k.out"
STDERR_FILE = "std_err.txt"
#: Files of an earlier attempt that must not survive into a new run (CP2K appends to some outputs).
STALE_OUTPUTS = (OUTPUT_FILE, STDERR_FILE, "custodian.json", f"{PROJECT_NAME}-pos-1.xyz", f"{PROJECT_NAME}-1.ener")


class Cp2kRunError(BandflowError):
    """A CP2K calculation failed for good; the message says why in one line."""


# ----------------------------------------------------------------------------------------- the binary
def cp2k_command() -> list[str]:
    """The CP2K command of the settings (``BANDFLOW_CP2K_COMMAND``), split into arguments."""
    command = shlex.split(os.path.expandvars(get_settings().cp2k_command))
    if not command:
        raise BandflowError("the cp2k_command setting is empty; set BANDFLOW_CP2K_COMMAND (e.g. cp2k.psmp)")
    return command


def _executable(command: Sequence[str]) -> str:
    """The CP2K executable within a command that may start with a launcher (mpirun -np 2 cp2k.psmp)."""
    for token in command:
        if "cp2k" in Path(token).name:
            return token
    return command[0]


def check_cp2k() -> str:
    """Check that the CP2K executable runs; return its version (e.g. ``2023.1``) or raise BandflowError.

    Called by the flow before any work is started, so a missing CP2K is one clear error, not a failure of
    every job.
    """
    command = cp2k_command()
    executable = _executable(command)
    path = shutil.which(executable)
    if path is None:
        raise BandflowError(f"CP2K executable '{executable}' not found on PATH; install CP2K "
                            "(Debian/Ubuntu: apt-get install cp2k) or set BANDFLOW_CP2K_COMMAND")
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BandflowError(f"CP2K executable '{path}' does not run: {exc}") from None
    for line in result.stdout.splitlines():
        if line.strip().startswith("CP2K version"):
            return line.split()[-1]
    raise BandflowError(f"'{path} --version' printed no CP2K version (exit code {result.returncode})")


def omp_threads() -> int:
    """OpenMP threads for CP2K: the ``omp_num_threads`` setting, else every core this process may use."""
    configured = get_settings().omp_num_threads
    if configured:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------ custodian
class BandflowCp2kJob(Cp2kJob):
    """custodian's Cp2kJob with its own OpenMP environment and a terminate that stops only its process."""

    def __init__(self, cp2k_cmd: Sequence[str], omp_num_threads: int, **kwargs: Any) -> None:
        super().__init__(list(cp2k_cmd), input_file=INPUT_FILE, output_file=OUTPUT_FILE,
                         stderr_file=STDERR_FILE, **kwargs)
        self.omp_num_threads = omp_num_threads
        self._process: subprocess.Popen | None = None

    def run(self, directory: str = "./") -> subprocess.Popen:
        """Start CP2K on the input file, stdout to cp2k.out (truncated), stderr to std_err.txt."""
        env = {**os.environ, "OMP_NUM_THREADS": str(self.omp_num_threads)}
        cmd = [*self.cp2k_cmd, "-i", self.input_file]
        logger.info("Running %s in %s (OMP_NUM_THREADS=%s)", " ".join(cmd), directory, self.omp_num_threads)
        with (open(os.path.join(directory, self.output_file), "w") as out,
              open(os.path.join(directory, self.stderr_file), "w", buffering=1) as err):
            self._process = subprocess.Popen(cmd, cwd=directory, stdout=out, stderr=err, env=env)
        return self._process

    def terminate(self, directory: str = "./") -> None:
        """Stop the CP2K process this job started (and nothing else)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()


class ScfLadderHandler(ErrorHandler):
    """Climb a ladder of SCF settings when CP2K's SCF does not converge (diagonalisation runs).

    1. twice the SCF steps;
    2. gentler mixing (α 0.1; 20 stored steps where Broyden mixes) and Fermi–Dirac smearing at 300 K;
    3. α 0.05 and 300 SCF steps.

    Each retry restarts from ``bandflow-RESTART.wfn`` when there is one (Γ runs); k-point runs start again
    from their initial guess. A stagnant SCF (the median of the last :attr:`STAGNANT_WINDOW` steps above
    :attr:`STAGNANT_CONVERGENCE`, a heuristic for charge sloshing, which more steps do not cure) gets the
    settings of rungs 1 and 2 in one retry instead of a separate rung-1 attempt. Measured on SnO2 slabs
    (PBE, 80 atoms, 2026-12-04): the two that needed smearing still sat at 0.06–0.2 after 60 and 94 steps
    and then converged in 24 and 44 smeared steps, ≈ 16 min of 5.5-s steps lost on rung 1 each; the one
    that rung 1 converged (102 steps) was at 1.7e-4 at step 60. The SnO bulk k-mesh run (PBE, 24 atoms)
    stayed at 0.007–0.011 (10-step medians) for 120 steps and converged in 13 smeared ones: hence a
    threshold of 1e-3, not the 1e-2 it passed under.

    The output of each failed attempt is kept as ``cp2k.out.attemptN``. After the last rung the handler gives
    up and the run fails with the reason "SCF not converged".
    """

    is_monitor = False
    raises_runtime_error = True
    LADDER: ClassVar[list[tuple[str, dict[str, Any]]]] = [
        ("more SCF steps", {"MAX_SCF": "double"}),
        ("gentler mixing and smearing", {"MIXING": {"ALPHA": 0.1, "NBROYDEN": 20},
                                         "SMEAR": {"_": True, "METHOD": "FERMI_DIRAC", "ELECTRONIC_TEMPERATURE": 300}}),
        ("smaller mixing step", {"MAX_SCF": 300, "MIXING": {"ALPHA": 0.05}}),
    ]

    STAGNANT_CONVERGENCE: ClassVar[float] = 1e-3
    STAGNANT_WINDOW: ClassVar[int] = 10

    def __init__(self, input_file: str = INPUT_FILE, output_file: str = OUTPUT_FILE) -> None:
        self.input_file = input_file
        self.output_file = output_file
        self.rung = 0
        self.attempts = 0  # failed attempts so far (a stagnant SCF climbs two rungs in one attempt)

    def stagnant_convergence(self, directory: str | Path, min_steps: int = 0) -> float | None:
        """The median SCF convergence of the last :attr:`STAGNANT_WINDOW` steps when it is above
        :attr:`STAGNANT_CONVERGENCE` and the later half of those steps is not below half the earlier one's
        median (the SCF is sloshing, not slowly converging), else None; also None before ``min_steps`` steps.

        The median, not the best step: a sloshing SCF dips now and then (Sr2TiO4 (111) slab, 49 atoms: the
        energy swinging by ±0.43 Ha every step while the convergence sat at 0.22 with single steps at 0.016
        and 0.0035), and those dips sent it to the "more steps" rung, 60 more 10-s steps.
        """
        path = Path(directory) / self.output_file
        steps = last_scf_steps(path.read_text(errors="replace")) if path.is_file() else []
        if len(steps) < max(self.STAGNANT_WINDOW, min_steps):
            return None
        window = [step[1] for step in steps[-self.STAGNANT_WINDOW:]]
        half = len(window) // 2
        typical = statistics.median(window)
        falling = statistics.median(window[half:]) < 0.5 * statistics.median(window[:half])  # slow, not stuck
        return typical if typical > self.STAGNANT_CONVERGENCE and not falling else None

    def check(self, directory: str = "./") -> bool:
        """True when the output says the SCF did not converge."""
        path = Path(directory) / self.output_file
        if not path.is_file():
            return False
        summary = parse_output(path)
        abort = (summary.abort_message or "").upper()
        return summary.scf_converged is False or "SCF" in abort and "CONVERGE" in abort

    def correct(self, directory: str = "./") -> dict[str, Any]:
        """Apply the next rung to the input (restarting from a Γ wavefunction); no actions when out of rungs."""
        if self.rung >= len(self.LADDER):
            return {"errors": ["SCF not converged"], "actions": []}
        output = Path(directory) / self.output_file
        self.attempts += 1
        if output.is_file():  # kept: the SCF history of every attempt is what tunes this ladder
            shutil.copyfile(output, output.with_name(f"{output.name}.attempt{self.attempts}"))
        label, scf_update = self.LADDER[self.rung]
        self.rung += 1
        update = dict(scf_update)
        if self.rung == 1 and (best := self.stagnant_convergence(directory)) is not None:
            next_label, next_update = self.LADDER[self.rung]
            self.rung += 1
            update |= next_update  # rungs 1 and 2 set different keys (tested)
            label = f"{label}, {next_label} (stagnant at {best:.1e})"
        modder = Cp2kModder(filename=self.input_file, directory=directory)
        scf = modder.ci.by_path("FORCE_EVAL/DFT/SCF")
        if update.get("MAX_SCF") == "double":
            update["MAX_SCF"] = 2 * int(scf.get("MAX_SCF").values[0]) if scf.get("MAX_SCF") else 100
        smear = update.pop("SMEAR", None)
        dft_update: dict[str, Any] = {"SCF": update}
        wfn = Path(directory) / f"{PROJECT_NAME}-RESTART.wfn"
        if wfn.is_file():
            dft_update["WFN_RESTART_FILE_NAME"] = wfn.name
            update["SCF_GUESS"] = "RESTART"
        actions: list[dict[str, Any]] = [{"dict": self.input_file, "action": {"_set": {"FORCE_EVAL": {"DFT": dft_update}}}}]
        if smear:
            from pymatgen.io.cp2k.inputs import Keyword, Section

            section = Section("SMEAR", keywords={k: Keyword(k, v) for k, v in smear.items() if k != "_"},
                              section_parameters=["T"])
            scf.insert(section)
        modder.apply_actions(actions)
        return {"errors": [f"SCF not converged; retrying with {label}"], "actions": actions}


class ScfStagnationMonitor(ErrorHandler):
    """Stop a first attempt whose SCF is stagnant (:meth:`ScfLadderHandler.stagnant_convergence`) after
    ``min_steps`` steps, and let the ladder restart it smeared, instead of waiting for its last step.

    Only the unsmeared first attempt is watched: smeared runs may sit above 1e-2 for 28 steps and still
    converge (the Sr2TiO4 (102) slab, at step 61). Measured cases it would have shortened: SnO2 slabs at
    0.06–0.2 for 60 and 94 steps, the SnO bulk k-mesh run at 0.007–0.011 for 120 (≈ 16–18 min lost each),
    Ag2O PBE (36 atoms, 2026-12-05): at Γ 0.03–0.06 from step 4 on, 26 s a step, stopped at step 26 and
    converged in 13 smeared steps; on the k-mesh stopped at step 25 (0.006–0.007), converged in 18 smeared
    ones. Of the 47 SCF loops kept from the campaign's runs of 2026-12-05 (all converged on their first
    attempt, 25 of them after 25–47 steps), none meets the rule before converging. The correction is the
    ladder's own (rungs 1 and 2 at once, from the last Γ wavefunction; k-point runs start again).
    """

    is_monitor = True

    def __init__(self, ladder: ScfLadderHandler, min_steps: int = 25) -> None:
        self.ladder = ladder
        self.min_steps = min_steps

    def check(self, directory: str = "./") -> bool:
        """True when the first attempt's SCF loop has run ``min_steps`` steps and is stagnant."""
        return not self.ladder.rung and self.ladder.stagnant_convergence(directory, self.min_steps) is not None

    def correct(self, directory: str = "./") -> dict[str, Any]:
        """The ladder's next rungs, applied to the stopped run's input."""
        return self.ladder.correct(directory)


class ScfDivergenceMonitor(ErrorHandler):
    """Stop a run whose SCF diverges instead of letting it use up its steps and the retry ladder.

    Diverging means the total energy jumped by more than ``max(min_jump_ha, rel_jump × |E₁|)`` Ha (E₁: the
    first step's energy) in each of the last ``window`` steps of the SCF loop. Measured case: Li2O HSE06 in
    54 atoms swung between −420 and +182 770 Ha for 17 steps after a 43-min integral pass; a retry rung
    would have repeated that pass (docs/engines.md). Converging PBE runs from atomic guesses moved by up to
    49 Ha in single early steps (13 outputs checked), hence the 100 Ha floor. The run fails with the
    reason; nothing is retried.
    """

    is_monitor = True
    raises_runtime_error = True

    def __init__(self, output_file: str = OUTPUT_FILE, window: int = 5, min_jump_ha: float = 100.0,
                 rel_jump: float = 0.05) -> None:
        self.output_file = output_file
        self.window = window
        self.min_jump_ha = min_jump_ha
        self.rel_jump = rel_jump
        self.reason: str | None = None

    def check(self, directory: str = "./") -> bool:
        """True when the last ``window`` SCF steps (after the first) each changed the energy by a jump."""
        path = Path(directory) / self.output_file
        if not path.is_file():
            return False
        steps = last_scf_steps(path.read_text(errors="replace"))
        if len(steps) < self.window + 1:
            return False
        threshold = max(self.min_jump_ha, self.rel_jump * abs(steps[0][2]))
        recent = steps[-self.window:]
        if not all(abs(change) > threshold for *_, change in recent):
            return False
        energies = [energy for _, _, energy, _ in recent]
        self.reason = (f"SCF diverging: the energy jumped by more than {threshold:.0f} Ha in each of steps "
                       f"{recent[0][0]}–{recent[-1][0]} (between {min(energies):.6g} and {max(energies):.6g} Ha, "
                       f"convergence {recent[-1][1]:.3g})")
        return True

    def correct(self, directory: str = "./") -> dict[str, Any]:
        """No correction: the run is stopped and fails with :attr:`reason`."""
        return {"errors": [self.reason or "SCF diverging"], "actions": None}


class HfxMemoryMonitor(ErrorHandler):
    """Warn, once per run, when CP2K recomputes exchange integrals at every SCF step for want of memory.

    CP2K prints where the integrals went after the first hybrid step (``HFX_MEM_INFO``); those beyond
    ``MAX_MEMORY`` are "calculated on the fly" at every step. Measured case: Li2O HSE06 in 54 atoms kept
    3.10e9 of 6.28e9 integrals within 2000 MiB, after a 97-min integral pass, and its second step had not
    ended after 5 min; with all of them in memory (3818 MiB) its steps took 50–70 s (docs/engines.md). The
    results stay right, so the run goes on; the warning names the setting that would have held them all.
    Never asks custodian for a correction.
    """

    is_monitor = True

    def __init__(self, output_file: str = OUTPUT_FILE) -> None:
        self.output_file = output_file
        self.warning: str | None = None

    def check(self, directory: str = "./") -> bool:
        """Log the warning the first time the output shows integrals on the fly; always False."""
        path = Path(directory) / self.output_file
        if self.warning is not None or not path.is_file():
            return False
        hfx = parse_output(path).hfx_memory
        if hfx is None or not hfx.on_the_fly:
            return False
        needed = f"; about {hfx.needed_mib} MiB would hold them all" if hfx.needed_mib else ""
        self.warning = (f"CP2K in {Path(directory).resolve()} keeps {hfx.in_core:.3g} of {hfx.calculated:.3g} "
                        f"exchange integrals in memory ({hfx.ram_mib} MiB) and recomputes "
                        f"{hfx.on_the_fly_fraction:.0%} of them at every SCF step, which makes each step "
                        f"cost a part of the integral pass{needed}: raise BANDFLOW_HFX_MEMORY_MB "
                        "(MAX_MEMORY per CP2K process) where the machine has the memory")
        logger.warning(self.warning)
        return False

    def correct(self, directory: str = "./") -> dict[str, Any]:
        """Never called (``check`` is always False)."""
        return {"errors": [], "actions": None}


class Cp2kCompletedValidator(Validator):
    """Invalid unless CP2K printed ``PROGRAM ENDED`` and every SCF it ran converged."""

    def __init__(self, output_file: str = OUTPUT_FILE) -> None:
        self.output_file = output_file

    def check(self, directory: str = "./") -> bool:
        """True (invalid) when the run did not finish cleanly."""
        path = Path(directory) / self.output_file
        return not path.is_file() or parse_output(path).failure_reason() is not None


def remove_stale_outputs(directory: Path) -> None:
    """Delete outputs of an earlier run in ``directory`` (CP2K appends to some, e.g. trajectories)."""
    for name in STALE_OUTPUTS:
        (directory / name).unlink(missing_ok=True)
    for stale in [*directory.glob(f"{PROJECT_NAME}-*.cube"), *directory.glob(f"{OUTPUT_FILE}.attempt*")]:
        stale.unlink()


def _default_handlers() -> list[ErrorHandler]:
    ladder = ScfLadderHandler()
    return [ladder, ScfStagnationMonitor(ladder), ScfDivergenceMonitor(), HfxMemoryMonitor()]


def run_cp2k(
    directory: str | Path = ".",
    max_errors: int = len(ScfLadderHandler.LADDER) + 1,
    handlers: Sequence[ErrorHandler] | None = None,
    monitor_seconds: float = 60.0,
) -> Cp2kOutputSummary:
    """Run CP2K on ``directory/cp2k.inp`` under custodian and return the parsed output, whose ``wall_time``
    is the seconds of all attempts.

    The default handlers are the SCF retry ladder and, every ``monitor_seconds`` while CP2K runs, the
    stagnation, divergence and exchange-memory monitors. Raises :class:`Cp2kRunError` (a BandflowError) with
    the reason when the run fails for good.
    """
    directory = Path(directory).resolve()
    if not (directory / INPUT_FILE).is_file():
        raise BandflowError(f"no CP2K input {directory / INPUT_FILE}")
    remove_stale_outputs(directory)
    job = BandflowCp2kJob(cp2k_command(), omp_num_threads=omp_threads())
    polling = 2
    custodian = Custodian(
        list(handlers) if handlers is not None else _default_handlers(),
        [job],
        validators=[Cp2kCompletedValidator()],
        max_errors=max_errors,
        polling_time_step=polling,
        monitor_freq=max(1, round(monitor_seconds / polling)),
        directory=str(directory),
    )
    started = time.perf_counter()
    try:
        custodian.run()
    except CustodianError as exc:
        handler = getattr(exc, "handler", None)
        reason = getattr(handler, "reason", None) or _failure_reason(directory) or exc.message
        raise Cp2kRunError(f"CP2K run in {directory} failed: {reason}") from None
    except OSError as exc:
        raise Cp2kRunError(f"CP2K could not be started in {directory}: {exc}") from None
    except BaseException:
        # interrupted (Ctrl-C, or SIGTERM through `bandflow run`): custodian leaves its job running, and an
        # orphaned CP2K would hold a core for hours; stop it with its runner
        job.terminate()
        raise
    summary = parse_output(directory / OUTPUT_FILE)
    # every attempt counts: CP2K's own timing covers only the last one (an SnO2 slab that climbed the SCF
    # ladder for 25 min recorded 274 s)
    summary.wall_time = time.perf_counter() - started
    return summary


def _failure_reason(directory: Path) -> str | None:
    """Why the last CP2K attempt in ``directory`` failed, from its output and stderr."""
    output = directory / OUTPUT_FILE
    reason = parse_output(output).failure_reason() if output.is_file() else "CP2K wrote no output"
    stderr = directory / STDERR_FILE
    if stderr.is_file():
        lines = [line.strip() for line in stderr.read_text(errors="replace").splitlines() if line.strip()]
        signals = [line for line in lines if "SIG" in line or "memory" in line.lower()]
        if signals:
            reason = f"{reason}; stderr: {signals[-1][:200]}"
    return reason
