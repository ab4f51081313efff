"""Exact-exchange screening of the bulk HSE06 step: cost against band edges, variants side by side.

The bulk hybrid's first SCF step computes the exchange integrals over every periodic image cell within the
SHORTRANGE potential's cutoff radius and drops integral quartets below ``EPS_SCHWARZ`` (bandflow's default
1e-6). CP2K 2023.1 derives that radius from ``EPS_SCHWARZ`` too, where erfc(ωr)/r falls below it (14.3 Å
at 1e-6, ω = 0.11 bohr⁻¹); it has no ``EPS_RANGE`` keyword for it (later versions do). On 2 cores that pass took
95 min for the 48-atom ZrO2 cell and did not finish in 147 min for HfO2 (docs/engines.md). This script
measures what a looser screening saves and what it does to the band edges, on a cheap bulk:

1. builds the bulk's Γ cell as :class:`bandflow.cp2k.jobs.Cp2kBulkHybridMaker` does (``--atoms`` picks a rung
   of its cell ladder, default the first, or a smaller cell to compare bulks cheaply), runs PBE at Γ once;
2. runs the HSE06 single point from that wavefunction once per variant, the first variant being the
   reference (the maker's settings), one after another on the same cores;
3. prints, per variant, the cutoff radius, the image cells, the first SCF step (the integral pass), the
   whole run, the Γ band edges and their shifts from the reference, and writes them as JSON.

    BANDFLOW_OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hfx_screening.py SnO2 \\
        --variant reference --variant eps_schwarz=1e-5 --workdir hfx/SnO2 --out hfx_SnO2.json

A variant is ``reference`` or comma-separated ``eps_schwarz=…`` and ``compact_aux_elements=Ga`` (the elements
given the compact auxiliary set, joined by ``+``). With ``--workdir``, a run whose folder already holds a
finished output of the same input is read instead of run again; a variant whose run fails is reported and
the next one goes on.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bandflow.bulk import load_bulk
from bandflow.cp2k.jobs import WFN_FILE, Cp2kBulkHybridMaker, _plain, _run, gamma_supercell
from bandflow.cp2k.parsing import parse_output
from bandflow.cp2k.sets import Cp2kStaticSetGenerator
from bandflow.errors import BandflowError

#: The settings a variant may set, each with how its text is read (elements joined by "+": Ga+In).
KEYS = {"eps_schwarz": float, "compact_aux_elements": lambda text: tuple(text.split("+"))}
_RADIUS = re.compile(r"HFX_INFO\| Cutoff Radius \[angstrom\]:\s+(\S+)")
_CELLS = re.compile(r"HFX_INFO\| Number of periodic cells considered:\s+(\d+)")
_STEP = re.compile(r"^\s+1\s+\S+\s+\S+\s+(\d+\.\d+)\s+\S+\s+-?\d+\.\d+\s+\S+\s*$", re.MULTILINE)


def parse_variant(text: str) -> dict[str, Any]:
    """``reference`` → {}; ``eps_schwarz=1e-5`` → that setting; ``eps_schwarz=1e-4,compact_aux_elements=Ga``
    → both (Ga with the compact auxiliary set, :class:`~bandflow.cp2k.jobs.Cp2kBulkHybridMaker`)."""
    if text == "reference":
        return {}
    settings = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key not in KEYS or not value:
            raise BandflowError(f"variant {text!r}: expected 'reference' or comma-separated key=value of {', '.join(sorted(KEYS))}")
        settings[key] = KEYS[key](value)
    return settings


def run_or_reuse(generator: Any, cell: Any, directory: Path, files: dict[str, Path] | None = None) -> Any:
    """:func:`_run`, or the finished output already in ``directory`` when its input is the same.

    Not :mod:`bandflow.cp2k.reuse`: that keeps runs under ``data_dir/finished_runs/``, which the reference
    export archives into ``data/reference/checkpoints/``; a benchmark's runs stay in its own work folder."""
    finished = directory / "cp2k.out"
    if finished.is_file() and parse_output(finished).failure_reason() is None:
        with tempfile.TemporaryDirectory() as tmp:
            generator.get_input_set(cell).write_input(tmp)
            if (Path(tmp) / "cp2k.inp").read_text() == (directory / "cp2k.inp.orig").read_text():
                print(f"    reusing the finished run in {directory}", flush=True)
                return parse_output(finished)
    return _run(generator, cell, directory, files=files)


def run(bulk: str, variants: list[str], atoms: int | None, work: Path) -> dict[str, Any]:
    maker = Cp2kBulkHybridMaker()
    plain = _plain(load_bulk(bulk).structure)
    ladder = maker.gamma_cells(plain)
    sizes = [len(c) for c in ladder]
    cell = ladder[0]
    if atoms is not None and atoms in sizes:
        cell = ladder[sizes.index(atoms)]
    elif atoms is not None:  # a smaller cell than the maker would take (cost comparisons between bulks)
        cell = gamma_supercell(plain, atoms, 0.0)
        if len(cell) != atoms:
            raise BandflowError(f"{bulk}: no Γ cell of {atoms} atoms; the ladder has {sizes}")
    print(f"{bulk}: Γ cell of {len(cell)} atoms (ladder {sizes}); PBE at Γ …", flush=True)
    pbe = run_or_reuse(Cp2kStaticSetGenerator(**maker._common()), cell, work / "pbe_gamma")
    rows = []
    for text in variants:
        print(f"  HSE06 {text} …", flush=True)
        directory = work / re.sub(r"[^\w.-]", "_", text)
        try:
            out = run_or_reuse(replace(maker, **parse_variant(text)).hybrid_generator(), cell, directory,
                               files={"pbe.wfn": work / "pbe_gamma" / WFN_FILE})
        except BandflowError as exc:
            print(f"    failed: {exc}", flush=True)
            continue
        log = (directory / "cp2k.out").read_text()
        edges = out.band_edges()
        rows.append({"variant": text, "cutoff_radius": float(_RADIUS.search(log).group(1)),
                     "image_cells": int(_CELLS.search(log).group(1)),
                     "first_step_s": float(m.group(1)) if (m := _STEP.search(log)) else None,
                     "wall_s": out.wall_time, "scf_steps": len(out.scf_steps) or None,
                     "vbm": edges.vbm, "cbm": edges.cbm, "gap": edges.cbm - edges.vbm})
    if not rows:
        raise BandflowError(f"{bulk}: no variant finished")
    ref = rows[0]
    for row in rows:
        row |= {f"d_{k}": row[k] - ref[k] for k in ("vbm", "cbm", "gap")}
        row["wall_ratio"] = row["wall_s"] / ref["wall_s"]
    return {"bulk": bulk, "n_atoms": len(cell), "pbe_gamma_wall_s": pbe.wall_time, "variants": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bulk", help="library bulk name, e.g. SnO2")
    parser.add_argument("--variant", action="append", default=None,
                        help="'reference' or eps_schwarz=… (repeat; the first is the reference)")
    parser.add_argument("--atoms", type=int, default=None,
                        help="Γ cell size: a rung of the maker's ladder, or the primitive cell's size")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = parser.parse_args()
    variants = args.variant or ["reference", "eps_schwarz=1e-5"]
    for text in variants:
        parse_variant(text)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.bulk, variants, args.atoms, args.workdir or Path(tmp))
    print(f"{'variant':<28}{'R/Å':>6}{'cells':>7}{'step1/s':>9}{'wall/s':>8}{'ratio':>7}"
          f"{'ΔVBM/meV':>10}{'ΔCBM/meV':>10}{'Δgap/meV':>10}")
    for r in result["variants"]:
        step = f"{r['first_step_s']:.0f}" if r["first_step_s"] is not None else "?"
        print(f"{r['variant']:<28}{r['cutoff_radius']:>6.2f}{r['image_cells']:>7}{step:>9}{r['wall_s']:>8.0f}"
              f"{r['wall_ratio']:>7.2f}{1e3 * r['d_vbm']:>10.1f}{1e3 * r['d_cbm']:>10.1f}{1e3 * r['d_gap']:>10.1f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
