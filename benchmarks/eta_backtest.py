"""How well the time-left estimate of ``bandflow status`` foresees the surfaces that came later.

Replays a campaign from its job store: the surfaces computed first (by when their alignment finished)
play the timed ones, the rest the remaining ones. For each split it compares the measured slab-step time
of the later surfaces with two estimates made from the earlier ones: the flat mean per surface (the
estimate before the size scaling), the size-scaled one (``bandflow.timing.fit_size_scaling``, each
remaining slab sized by its atoms) and the size-scaled one at each bulk's own pace where two of its surfaces
are among the earlier ones (``bandflow.timing.bulk_scalings``). Prints the ratio estimate / measured for
each; closer to 1 is better. Needs a store with the campaign's jobs (``BANDFLOW_DATA_DIR``); reads only.

    BANDFLOW_DATA_DIR=/work/campaign/data python benchmarks/eta_backtest.py workflows/binary_oxides.yaml

``--documents FILE...`` judges single surfaces instead, from the slab-potential wall times that exported
documents record (no store needed): each surface's time predicted from all the others, with one pace for
all and with its bulk's own pace, as the median and mean absolute error (a worker's walltime decision is
about one job).

    python benchmarks/eta_backtest.py --documents data/reference/*_fast.jsonl.gz
"""

from __future__ import annotations

import argparse
from datetime import datetime

from bandflow.errors import exit_from_script
from bandflow.flows import campaign_flow, plan_campaign
from bandflow.runner import job_seconds, slab_atoms, slab_bulks, surface_step_seconds
from bandflow.spec import load_spec
from bandflow.store import BandflowStore
from bandflow.timing import bulk_scalings, fit_size_scaling


def one_surface_errors(paths: list[str]) -> None:
    """Leave-one-out errors of single surfaces' slab times from exported documents: one pace, and per bulk."""
    import numpy as np

    from bandflow.dataset import read_surfaces

    rows = [(d.bulk_name, len(d.structure_unrelaxed["sites"]), t) for path in paths for d in read_surfaces(path)
            if d.state == "successful" and (t := (d.extra.get("wall_time") or {}).get("slab_potential"))]
    common, own = [], []
    if len(rows) < 3:  # one left out leaves fewer than two to fit a scaling to (and no loop at all for none)
        print(f"{len(rows)} timed surfaces: too few to fit a size scaling")
        return
    for i, (bulk, n, t) in enumerate(rows):
        others = rows[:i] + rows[i + 1:]
        if (scaling := fit_size_scaling([(m, u) for _, m, u in others])) is None:
            print(f"{len(rows)} timed surfaces: too few, or too alike in size, to fit a size scaling")
            return
        paced = bulk_scalings({bulk: [(m, u) for b, m, u in others if b == bulk]}, scaling).get(bulk, scaling)
        common.append(abs(scaling.seconds(n) / t - 1))
        own.append(abs(paced.seconds(n) / t - 1))
    print(f"{len(rows)} surfaces with a recorded slab time, each predicted from the others")
    print(f"{'pace':>12} {'median |error|':>15} {'mean |error|':>13}")
    for name, errors in (("one for all", common), ("per bulk", own)):
        print(f"{name:>12} {np.median(errors):>15.0%} {np.mean(errors):>13.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?")
    parser.add_argument("--splits", default="0.25,0.5,0.75", help="shares of the surfaces taken as timed")
    parser.add_argument("--documents", nargs="+", help="exported dataset files: judge single surfaces")
    args = parser.parse_args()
    if args.documents:
        one_surface_errors(args.documents)
        return 0
    if not args.spec:
        parser.error("a campaign spec, or --documents FILE...")
    spec = load_spec(args.spec)
    plans = plan_campaign(spec)
    atoms = slab_atoms(plans)
    bulk_of = slab_bulks(plans)
    uuids = [job.uuid for job in campaign_flow(spec, plans).jobs]
    with BandflowStore.from_settings() as store:
        jobs = [doc for doc in store.job_store.query({"uuid": {"$in": uuids}},
                                                     properties=["uuid", "completed_at", "metadata", "output.wall_time"])
                if doc.get("completed_at")]
    per_surface = surface_step_seconds(jobs, job_seconds(jobs))
    finished = {doc["metadata"]["surface_id"]: datetime.fromisoformat(str(doc["completed_at"])) for doc in jobs
                if (doc.get("metadata") or {}).get("bandflow_step") == "alignment"}
    order = sorted((s for s in per_surface if s in atoms and per_surface[s] > 0), key=finished.get)
    print(f"{spec.name}: {len(order)} surfaces timed on this machine")
    print(f"{'timed':>6} {'later':>6} {'measured h':>11} {'flat mean':>10} {'sized':>8} {'per bulk':>9} "
          f"{'exponent':>9}")
    for share in (float(x) for x in args.splits.split(",")):
        cut = int(round(share * len(order)))
        early, late = order[:cut], order[cut:]
        if len(early) < 2 or not late:
            continue
        measured = sum(per_surface[s] for s in late)
        flat = len(late) * sum(per_surface[s] for s in early) / len(early)
        scaling = fit_size_scaling([(atoms[s], per_surface[s]) for s in early])
        sized = scaling.total(atoms[s] for s in late) if scaling else flat
        own = bulk_scalings({bulk: [(atoms[s], per_surface[s]) for s in early if bulk_of[s] == bulk]
                             for bulk in {bulk_of[s] for s in early}}, scaling)
        paced = sum(own.get(bulk_of[s], scaling).seconds(atoms[s]) for s in late) if scaling else flat
        print(f"{len(early):>6} {len(late):>6} {measured / 3600:>11.1f} {flat / measured:>10.2f} "
              f"{sized / measured:>8.2f} {paced / measured:>9.2f} "
              f"{scaling.exponent if scaling else float('nan'):>9.2f}")
    return 0


if __name__ == "__main__":
    exit_from_script(main)
