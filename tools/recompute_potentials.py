"""Compute again the slab potentials of stored documents that cannot be re-aligned from a profile.

Documents made before 2026-12-04 (the binary reference surfaces, computed on other machines) have no
planar profile: their slab-centre average was taken over the period detected from the relaxed atoms, and
the datasheet flags those where that period is off the ideal slab's (``bandflow.dataset.slab_centre_issue``).
This runs their slab potential again on the stored relaxed structure (the engine, minutes per surface) and
aligns it with the bulk edges the document holds (``bandflow.runner.recompute_slab_potentials``).

    BANDFLOW_DATA_DIR=... python tools/recompute_potentials.py workflows/binary_oxides.yaml [--all] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys

from bandflow.dataset import slab_centre_issue
from bandflow.errors import BandflowError
from bandflow.flows import plan_campaign
from bandflow.runner import recompute_slab_potentials
from bandflow.spec import load_spec
from bandflow.store import BandflowStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="campaign YAML whose stored documents to look at")
    parser.add_argument("--all", action="store_true", help="every document without a profile, not only flagged ones")
    parser.add_argument("--dry-run", action="store_true", help="list the surfaces and stop")
    args = parser.parse_args()
    try:
        spec = load_spec(args.spec)
        store = BandflowStore.from_settings()
        planned = {e.id for plan in plan_campaign(spec) for e in plan.surfaces}
        stored = [d for d in store.query_surfaces(protocol=spec.protocol) if d.surface_id in planned]
        if not stored:  # nothing to look at: most often BANDFLOW_DATA_DIR names another store
            raise BandflowError(f"the store ({store.location}) holds no surface of {spec.name}; "
                                "is BANDFLOW_DATA_DIR set to the campaign's data directory?")
        docs = [d for d in stored if d.period_source is None and "planar" not in (d.extra.get("profile") or {})]
        chosen = [d for d in docs if args.all or slab_centre_issue(d)]
        # smallest slabs first: the most surfaces fixed per hour if the run is stopped
        chosen.sort(key=lambda d: len(d.structure_relaxed["sites"]) if d.structure_relaxed else 0)
        print(f"{len(chosen)} of {len(docs)} documents without a profile: "
              + ", ".join(d.surface_id for d in chosen))
        if args.dry_run or not chosen:
            return 0
        summary = recompute_slab_potentials(spec, store, [d.surface_id for d in chosen])
    except BandflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for surface_id, reason in summary.failed.items():
        print(f"failed: {surface_id}: {reason}", file=sys.stderr)
    print(f"{summary.ran} slab potentials computed again, {len(summary.failed)} failed in {summary.seconds:.0f} s")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
