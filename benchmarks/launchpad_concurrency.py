"""Several FireWorks launchers on one file-mode LaunchPad: FireWorks' raw file mode vs bandflow's.

Each of N jobs appends one line to a file. Prints, for each mode, how many jobs ran exactly once, more
than once or never, the final firework states and the wall time, side by side in one run.

    .venv/bin/python benchmarks/launchpad_concurrency.py --launchers 8 --jobs 16
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}"}


def _submit(mode: str, workdir: Path, n_jobs: int, sleep_s: float) -> None:
    out = workdir / "out.txt"
    if mode == "raw":
        # FireWorks' own file mode: the variable must be set before fireworks is imported.
        os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(workdir / "fw.json")
        from fireworks import LaunchPad
        from jobflow.managers.fireworks import flow_to_workflow
        from jobs_for_tests import append_line

        launchpad = LaunchPad()
        launchpad.reset("", require_password=False)
        for i in range(n_jobs):
            launchpad.add_wf(flow_to_workflow(append_line(str(out), f"job{i}", sleep_s)))
        # the database reaches the file when this process exits
    else:
        from jobs_for_tests import append_line

        from bandflow.queue import submit_flows

        submit_flows([append_line(str(out), f"job{i}", sleep_s) for i in range(n_jobs)])


def _work(mode: str, workdir: Path) -> None:
    if mode == "raw":
        os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(workdir / "fw.json")
        from fireworks import FWorker, LaunchPad
        from fireworks.core.rocket_launcher import rapidfire

        rapidfire(LaunchPad(), FWorker(), m_dir=str(workdir / "launches"), nlaunches=0, sleep_time=1,
                  strm_lvl="ERROR")
    else:
        from bandflow.queue import launch

        launch(launch_dir=workdir / "launches", poll_s=1.0, strm_lvl="ERROR")


def _states(mode: str, workdir: Path) -> dict[str, int]:
    import bson.json_util

    path = workdir / ("fw.json" if mode == "raw" else "data/fireworks/launchpad.json")
    data = bson.json_util.loads(path.read_text())
    database = data["fireworks" if mode == "raw" else "bandflow_fireworks"]
    states = collections.Counter(doc["state"] for _, doc in database["fireworks"]["documents"])
    return dict(sorted(states.items()))


def run_mode(mode: str, n_launchers: int, n_jobs: int, sleep_s: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bandflow-{mode}-"))
    (workdir / "fw.json").write_text("{}")
    (workdir / "launches").mkdir()
    env = {**ENV, "BANDFLOW_DATA_DIR": str(workdir / "data")}
    script = [sys.executable, __file__, "--workdir", str(workdir), "--mode", mode]
    subprocess.run([*script, "--submit", "--jobs", str(n_jobs), "--sleep", str(sleep_s)], env=env, check=True,
                   cwd=workdir)
    start = time.perf_counter()
    workers = [subprocess.Popen([*script, "--work"], env=env, cwd=workdir, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(n_launchers)]
    codes = [w.wait() for w in workers]
    wall = time.perf_counter() - start
    out = workdir / "out.txt"
    runs = collections.Counter(line.split()[0] for line in out.read_text().splitlines()) if out.exists() else {}
    per_job = [runs.get(f"job{i}", 0) for i in range(n_jobs)]
    return {
        "mode": mode, "exactly_once": sum(n == 1 for n in per_job), "more_than_once": sum(n > 1 for n in per_job),
        "never": sum(n == 0 for n in per_job), "line_count": sum(per_job), "states": _states(mode, workdir),
        "exit_codes": sorted(set(codes)), "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launchers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds each job sleeps")
    parser.add_argument("--mode", choices=["raw", "bandflow"])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--work", action="store_true")
    args = parser.parse_args()
    if args.submit:
        return _submit(args.mode, args.workdir, args.jobs, args.sleep)
    if args.work:
        return _work(args.mode, args.workdir)
    print(f"{args.launchers} launcher processes, {args.jobs} jobs of {args.sleep} s each")
    results = [run_mode(mode, args.launchers, args.jobs, args.sleep) for mode in ("raw", "bandflow")]
    for r in results:
        print(f"{r['mode']:>9}: ran exactly once {r['exactly_once']}/{args.jobs}, more than once "
              f"{r['more_than_once']}, never {r['never']}, lines {r['line_count']}, final states {r['states']}, "
              f"exit codes {r['exit_codes']}, wall {r['wall_s']} s")
    raw, ours = results
    print(f"wall-time ratio bandflow/raw: {ours['wall_s'] / raw['wall_s']:.2f}")


if __name__ == "__main__":
    main()
