"""Check the ``fast`` protocol's CHGNet slab relaxation of stored surfaces against a CP2K PBE relaxation.

For each surface document, the slab is relaxed again with the ``accurate`` protocol's CP2K relaxation
(:class:`bandflow.cp2k.Cp2kSlabRelaxMaker`: PBE, BFGS, 600 Ry, the same central layers fixed), starting
from CHGNet's geometry (default: if CHGNet found the DFT minimum, few steps are needed) or from the
unrelaxed cut. The campaign's own slab-potential job then runs on the DFT geometry and is aligned with the
bulk edges the document holds, so the two IPs differ only by the relaxation. Nothing is written to a store:
a JSON report per surface goes to the work directory, and one line per surface to stdout.

    python tools/relaxation_check.py workflows/ternary_oxides.yaml MgTiO3-148-001-t1-29dc8518 \
        --work-dir /tmp/relax_check [--start unrelaxed] [--max-steps 100]

The documents are read from the exported reference files (``data/reference/*.jsonl.gz``) or ``--dataset``.

Cost (docs/engines.md, "Slab relaxation"): CP2K restarts every geometry step of a k-point run from the
atomic guess, so each L-BFGS step is a whole SCF: K2O (111) t0 (9 atoms) took 11 steps and 3665 s on one
thread beside other runs; a 30-atom ternary slab takes about 10 min per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from bandflow.errors import BandflowError

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"


def find_documents(paths: list[Path], surface_ids: list[str]) -> dict:
    """The surface documents of ``surface_ids`` in the dataset files; an unknown id is an error."""
    from bandflow.dataset import read_surfaces

    docs = {d.surface_id: d for path in paths for d in read_surfaces(path) if d.surface_id in surface_ids}
    if missing := [s for s in surface_ids if s not in docs]:
        raise BandflowError(f"not in {', '.join(str(p) for p in paths)}: {', '.join(missing)}")
    return docs


def campaign_jobs(spec_path: str, doc) -> dict:
    """The campaign's jobs of this surface (``slab_potential`` and ``alignment`` are used)."""
    from bandflow.flows import campaign_flow
    from bandflow.runner import run_order, surface_steps
    from bandflow.spec import load_spec, select_bulks

    spec = select_bulks(load_spec(spec_path), [doc.bulk_name])
    jobs = surface_steps(run_order(campaign_flow(spec))).get(doc.surface_id)
    if not jobs or "slab_potential" not in jobs:
        raise BandflowError(f"{doc.surface_id} is not a surface of {spec_path}")
    return jobs


def displacements(a: Structure, b: Structure) -> np.ndarray:
    """Per-site distance (Å) between two geometries of the same slab, minimum image."""
    return np.array([a[i].distance(b[i]) for i in range(len(a))])


def align_again(doc, jobs: dict, relaxed: Structure, potential_output):
    """The surface document of a new slab potential, aligned with the bulk edges ``doc`` holds, as the
    campaign's alignment job would make it."""
    from bandflow.alignment import stored_bulk_edges, surface_document

    surface, protocol = jobs["alignment"].function_args[:2]
    try:
        new = surface_document(surface, protocol, stored_bulk_edges(doc), relaxed, potential_output)
    except BandflowError as exc:
        raise BandflowError(f"{doc.surface_id}: {exc}") from None
    if new.state != "successful":
        raise BandflowError(f"{doc.surface_id}: {new.failure_reason}")
    return new


def check(doc, jobs: dict, work: Path, start: str, max_steps: int) -> dict:
    """Relax with CP2K, take the slab potential, align; the report of one surface."""
    from bandflow.coordination import outermost_cation_height
    from bandflow.cp2k import Cp2kSlabRelaxMaker

    chgnet = Structure.from_dict(doc.structure_relaxed)
    unrelaxed = Structure.from_dict(doc.structure_unrelaxed)
    potential_maker = jobs["slab_potential"].function.__self__
    relax_maker = Cp2kSlabRelaxMaker(kspacing=potential_maker.kspacing, kpoints=potential_maker.kpoints,
                                     user_input_settings=dict(potential_maker.user_input_settings),
                                     max_geo_steps=max_steps)
    work.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    started = time.perf_counter()
    try:
        os.chdir(work)
        relaxed = relax_maker.make.original(relax_maker, chgnet if start == "chgnet" else unrelaxed)
        relax_seconds = time.perf_counter() - started
        dft = Structure.from_dict(relaxed.structure)
        potential = potential_maker.make.original(potential_maker, dft)
    finally:
        os.chdir(here)
    new = align_again(doc, jobs, dft, potential)
    moved = displacements(chgnet, dft)
    return {
        "surface_id": doc.surface_id, "start": start, "n_atoms": len(dft), "geo_steps": relaxed.n_steps,
        "relax_seconds": round(relax_seconds, 1), "potential_seconds": potential.wall_time,
        "ip_chgnet": doc.ip, "ip_dft": new.ip, "ea_chgnet": doc.ea, "ea_dft": new.ea,
        "ip_dft_minus_chgnet": new.ip - doc.ip,
        "cation_height": {"unrelaxed": outermost_cation_height(unrelaxed),
                          "chgnet": outermost_cation_height(chgnet), "dft": outermost_cation_height(dft)},
        "max_displacement_chgnet_to_dft": float(moved.max()),
        "most_moved_site": chgnet[int(moved.argmax())].species_string,
        "dft_structure": dft.as_dict(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the campaign YAML the surfaces belong to")
    parser.add_argument("surface_ids", nargs="+", metavar="SURFACE_ID")
    parser.add_argument("--dataset", type=Path, action="append", help="JSON-lines file(s) holding the documents")
    parser.add_argument("--work-dir", type=Path, default=Path("relaxation_check"))
    parser.add_argument("--start", choices=("chgnet", "unrelaxed"), default="chgnet",
                        help="geometry the DFT relaxation starts from")
    parser.add_argument("--max-steps", type=int, default=200, help="BFGS steps at most")
    args = parser.parse_args()
    try:
        docs = find_documents(args.dataset or sorted(REFERENCE.glob("*.jsonl.gz")), args.surface_ids)
        for surface_id in args.surface_ids:
            doc = docs[surface_id]
            report = check(doc, campaign_jobs(args.spec, doc), args.work_dir / surface_id, args.start,
                           args.max_steps)
            (args.work_dir / f"{surface_id}.json").write_text(json.dumps(report, indent=1))
            heights = report["cation_height"]
            print(f"{surface_id}: IP {report['ip_chgnet']:.2f} (CHGNet) -> {report['ip_dft']:.2f} eV (CP2K PBE "
                  f"relaxation, {report['geo_steps']} steps, {report['relax_seconds']:.0f} s); outermost cation "
                  f"{heights['unrelaxed']:+.2f} / {heights['chgnet']:+.2f} / {heights['dft']:+.2f} Å "
                  f"(unrelaxed / CHGNet / DFT); largest CHGNet→DFT move {report['max_displacement_chgnet_to_dft']:.2f}"
                  f" Å ({report['most_moved_site']})", flush=True)
    except BandflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
