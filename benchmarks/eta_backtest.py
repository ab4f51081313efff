"""How well the time-left estimate of ``bandflow status`` foresees the surfaces that came later.

Replays a campaign from its job store: the surfaces computed first (by when their alignment finished)
play the timed ones, the rest the remaining ones. For each split it compares the measured slab-step time
of the later surfaces with two estimates made from the earlier ones: the flat mean per surface (the
estimate before the size scaling) and the size-scaled one (``bandflow.timing.fit_size_scaling``, each
remaining slab sized by its atoms). Prints the ratio estimate / measured for both; closer to 1 is better.
Needs a store with the campaign's jobs (``BANDFLOW_DATA_DIR``); reads only.

    BANDFLOW_DATA_DIR=/work/campaign/data python benchmarks/eta_backtest.py workflows/binary_oxides.yaml
"""

from __future__ import annotations

import argparse
from datetime import datetime

from bandflow.flows import campaign_flow, plan_campaign
from bandflow.runner import job_seconds, slab_atoms, surface_step_seconds
from bandflow.spec import load_spec
from bandflow.store import BandflowStore
from bandflow.timing import fit_size_scaling


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--splits", default="0.25,0.5,0.75", help="shares of the surfaces taken as timed")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    plans = plan_campaign(spec)
    atoms = slab_atoms(plans)
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
    print(f"{'timed':>6} {'later':>6} {'measured h':>11} {'flat mean':>10} {'sized':>8} {'exponent':>9}")
    for share in (float(x) for x in args.splits.split(",")):
        cut = int(round(share * len(order)))
        early, late = order[:cut], order[cut:]
        if len(early) < 2 or not late:
            continue
        measured = sum(per_surface[s] for s in late)
        flat = len(late) * sum(per_surface[s] for s in early) / len(early)
        scaling = fit_size_scaling([(atoms[s], per_surface[s]) for s in early])
        sized = scaling.total(atoms[s] for s in late) if scaling else flat
        print(f"{len(early):>6} {len(late):>6} {measured / 3600:>11.1f} {flat / measured:>10.2f} "
              f"{sized / measured:>8.2f} {scaling.exponent if scaling else float('nan'):>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
