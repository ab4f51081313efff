"""Export the reference campaigns from the results store into ``data/reference/``.

Writes, for each campaign spec, ``<campaign>_<protocol>.jsonl.gz`` (successful surfaces computed with the
present settings, the ``bandflow export`` format; those of earlier settings go to ``pending/``), the IP/EA
strip plot ``ip_ea_by_formula.png`` and the datasheet ``README.md`` (counts, ranges, time per surface, what
is still missing, method, per-formula table with published values from ``literature.yaml``, outliers,
failures). Failed documents of the present settings go to ``failures/`` (same format), so that a fresh
machine keeps them.

    BANDFLOW_DATA_DIR=~/campaign python tools/reference_dataset.py            # both reference campaigns
    BANDFLOW_DATA_DIR=~/campaign python tools/reference_dataset.py workflows/binary_oxides.yaml  # its files only

It writes nothing (exit 2) when the store lacks surfaces that a committed file holds, or job documents of
a committed checkpoint, as a store other than the campaign's does; ``--drop-missing`` writes anyway (a
document deleted on purpose), and ``--drop-checkpoint`` for the checkpoint (unfinished work discarded on purpose).

It also writes ``checkpoints/<campaign>_<protocol>.jsonl.gz``: the finished jobs of surfaces not yet
aligned (a bulk hybrid done, slabs half done; ``bandflow checkpoint save``), removed when there are none,
and ``checkpoints/finished_runs/``: the finished PBE runs of a stopped bulk job (``bandflow checkpoint
save-runs``), so that the next machine does not compute them again.

A campaign continues on a fresh machine from the committed files (the runner skips stored surfaces and
checkpointed jobs, and re-aligns the pending surfaces from their documents' slab data after recomputing
their bulks):

    for f in data/reference/{,pending/,failures/}*.jsonl.gz; do [ -e "$f" ] && bandflow import "$f"; done
    for f in data/reference/checkpoints/*.jsonl.gz; do bandflow checkpoint load $f; done
    bandflow checkpoint load-runs data/reference/checkpoints/finished_runs      # if the folder is there
    bandflow run workflows/binary_oxides.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from bandflow.checkpoint import read_checkpoint, save_checkpoint
from bandflow.cp2k.reuse import save_kept_runs
from bandflow.dataset import (
    PLANAR_PROFILE,
    REFERENCE_TARGETS,
    bulk_labels,
    datasheet_markdown,
    load_literature,
    read_json_lines,
    read_surfaces,
    reference_targets_met,
    surface_records,
    write_json_lines,
)
from bandflow.errors import exit_from_script
from bandflow.flows import campaign_flow, flow_jobs, plan_campaign
from bandflow.isostructural import isostructural_groups
from bandflow.plotting import plot_ip_ea_by_formula, plot_isostructural_cuts
from bandflow.runner import campaign_status, expected_job_uuids, is_current, record_wall_times
from bandflow.spec import load_spec
from bandflow.store import BandflowStore, dangling_jobs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "reference"
SPECS = [ROOT / "workflows" / "binary_oxides.yaml", ROOT / "workflows" / "ternary_oxides.yaml"]

METHOD = """\
`fast` protocol of bandflow on CP2K 2023.1 (Debian), all surfaces from `bandflow.surfaces` (symmetric,
stoichiometric, nonpolar; thickness ≥ 8 Å and ≥ 2 interlayer periods, 12 Å vacuum, at most 80 atoms):

1. **Slab relaxation**: CHGNet 0.4.2 (pretrained weights of its wheel) with the central layers fixed
   (`bandflow.forcefields.fix_central_layers`), FIRE to 0.05 eV/Å.
2. **Slab potential**: CP2K PBE, DZVP-MOLOPT-SR-GTH basis sets (La–Lu from `BASIS_MOLOPT_UCL`, Th:
   DZVP-MOLOPT-GTH-q12 of `BASIS_MOLOPT_AcPP1`, Li: GTH-PBE-q1 with `DZVP-MOLOPT-PBE-GTH-q1` of
   `BASIS_MOLOPT_UZH`, 1s in the core; docs/engines.md), GTH-PBE pseudopotentials, 400 Ry cutoff
   (REL_CUTOFF 50), Γ-centred in-plane k-points with spacing 0.6 Å⁻¹, diagonalisation; the V_HARTREE
   cube gives the vacuum level (plateau mean of each face) and the macroscopic average at the slab centre,
   taken over the interlayer period of the ideal (unrelaxed) slab (`period`, `center_variation` in each
   document).
3. **Bulk band edges**: CP2K HSE06 (25 % short-range exchange, ω = 0.11 bohr⁻¹) with ADMM (admm-dz; for
   Ca the Ling–Slater cFIT7 set, which has d functions; for K, Rb, Sr, Cs, Ba admm-dz with the d shell of
   their smallest cFIT set added; the orbital basis itself for elements without an admm-dz set: La, Ce, Th;
   for Li and Al their orbital basis's primitives of exponent ≥ 0.1 bohr⁻², uncontracted)
   at Γ, restarted from PBE, with density-matrix mixing and DIIS, in a supercell of any shape grown until its
   PBE energy per atom at Γ is within 0.03 eV/atom of the k-mesh one and it is at least 7 Å wide (at most
   64 atoms; its atom count and PBE Γ-sampling error are in each document's `extra.bulk`); the PBE
   k-mesh − Γ difference of the VBM and CBM is added (CP2K 2023.1 has no exact exchange with k-points).
   Edges are relative to the cell-mean potential. Exchange integrals are screened at EPS_SCHWARZ 1e-6,
   which in CP2K 2023.1 also sets the short-range cutoff radius (14.3 Å); HfO2-monoclinic and Ga2O3-beta
   take 1e-5 (12.5 Å), since their integral passes had not finished after 147 and 80 min at 1e-6 (on SnO2,
   1e-5 moved the Γ VBM by −0.6 meV and the CBM by +18 meV; docs/engines.md).
4. **Alignment**: IP = (V_vac − V̄_centre) − (E_VBM − V̄_bulk), EA = IP − E_gap (PBE potential step with
   HSE06 bulk edges, the usual slab/bulk split; see docs/method.md).

Each line of a file is one `SurfaceDoc` (docs/schema.md): unrelaxed and relaxed slab structures, IP, EA,
bulk VBM/CBM/gap, vacuum levels, potential step, protocol, engine, functionals, code versions, job uuids.
`bandflow import FILE` loads a file into a store (which marks its documents `source: import`); `bandflow
train` learns from it. Here every document says `source: bandflow` (all were computed by these campaigns),
and `updated_at` is when its content last changed.
`checkpoints/` holds the finished jobs of surfaces not yet aligned (a bulk hybrid done, its slabs half
done); `bandflow checkpoint load FILE` puts them into a store, so that `bandflow run` on the campaign
continues there without computing them again (docs/workflows.md). `checkpoints/finished_runs/` holds the
finished PBE runs of a bulk job that was stopped in its hybrid run (one archive each, named by a hash of
its inputs); `bandflow checkpoint load-runs FOLDER` gives them to the next attempt on any machine with the same CP2K command.
`failures/` (when there are any) holds the failed surface documents, in the same format: imported, they keep
the failures below on a new machine, and `bandflow run` there does not retry a bulk job whose failure one
of them records (a diverged hybrid diverges again; `--retry-failed` runs it anyway). Before 2026-12-07 the
failed documents stayed in the campaign machine's store and were lost with it: Ga2O3-beta's 28 surfaces
failed there on 2026-12-06 (its HSE06 SCF diverged, docs/engines.md), so they count as not yet computed
below until its bulk job runs again.

**Slab-centre history (docs/method.md):** until 2026-12-04 the centre average was taken over the period
detected from the relaxed atoms, which relaxation can spoil (MgTiO3 (001): 7.78 Å instead of 4.63 Å, IP
1.5 eV off); since then over the ideal slab's period, re-taken from the stored profiles for every surface
computed on this campaign's machine. The binary documents made elsewhere have no profile: those whose
relaxed-atom period is off the ideal one are flagged below. Since the same day slabs also span at least
two periods; the three thinner ones (Sr2TiO4 and MgTiO3 (001)) are computed again.

**Bulk method history (measured, see docs/engines.md):** until 2026-12-03 the bulk hybrid ran in a Γ cell
of at most 16 atoms, whose VBM, and so the IP, was not converged (CaO: the 8-atom cell's VBM 1.24 eV below
the 54-atom cell's); then in diagonal supercells grown by the PBE criterion alone. Since the fourth session
(2026-12-03) the cells may have any shape and must be 7 Å wide (the exchange converges more slowly than the
PBE energy),
and K, Ca, Rb, Sr, Cs, Ba get d functions in the ADMM basis (with admm-dz their d-like conduction bands got
no exact exchange: CaO gap 4.51 eV, now 5.27 eV; its IPs moved by < 0.1 eV, its EAs by −0.8 eV). Every
surface here is computed, or re-aligned with its stored slab potential, with the current method. Surfaces
from an earlier method and not yet re-aligned are left out of the files above and counted as remaining
below; their documents (valid slab potentials, outdated bulk edges) are kept in `pending/`.

**Expected bias of a fixed 25 % hybrid:** HSE06 underestimates the gaps of wide-gap oxides (MgO here 6.26 eV,
experiment ≈ 7.8 eV), and part of that error sits in the VBM, so their IPs come out lower than with the
dielectric-dependent hybrid of Kiyohara et al. (2024). If, as a rule of thumb (not measured here), half of
the gap error is in the VBM, MgO's IPs are ≈ 0.8 eV too low, which is about the distance between our
MgO(100) 6.36 eV and the 7.15 eV of the compilation below. The alkaline-earth oxides (CaO, SrO, BaO, and the
SrO-terminated Sr2TiO4 (001)) sit lowest; the narrow-gap ones should be least affected. Measured against
Kiyohara et al.'s own surfaces (per-formula medians of their SI Data S1, polymorphs pooled), our mean IP is
about 0.9 eV lower on average (the summary under the per-formula table has the present mean and median), most for the alkali and alkaline-earth oxides (Li2O −1.84, K2O −1.70, Na2O −1.61, MgO −1.49, CaO −1.42 eV) and
least for V2O5, CaTiO3 and SiO2 (within 0.11 eV); only Sb2O3 came out higher (+1.08 eV). Read the IPs here
as HSE06 values, about 1 eV shallower than that dataset's for ionic wide-gap oxides.

Published values beside ours come from `literature.yaml` (each with its reference; compilations are
labelled as such). They are for films, single crystals or other surfaces and methods, so a difference
of an eV is a prompt to look, not a verdict.

Licence: CC BY 4.0 (the data); the code that made it is bandflow's own licence.
"""


def stable_records(records: Iterable[dict], path: Path) -> Iterator[dict]:
    """``records`` as the dataset keeps them: ``source`` "bandflow" (every document here was computed by a
    bandflow campaign; "import" would only say that this machine's store read it back from this file), and a
    document that is otherwise as ``path`` has it keeps its ``updated_at`` there. So an export after
    re-importing the files on a fresh machine rewrites only the surfaces that changed."""
    previous = {}
    if path.is_file():
        for _, line in read_json_lines(path):
            old = json.loads(line)
            previous[old.get("surface_id")] = old
    for data in records:
        data["source"] = "bandflow"
        old = previous.get(data.get("surface_id"))
        if old is not None and {**old, "source": "bandflow", "updated_at": data.get("updated_at")} == data:
            data["updated_at"] = old.get("updated_at")
        yield data


def targets_line(successful: list) -> str:
    """One bullet: the surfaces and formulas done against :data:`~bandflow.dataset.REFERENCE_TARGETS`."""
    counts = {}
    for kind in REFERENCE_TARGETS:
        docs = [d for d in successful if ((d.n_cation_species or 0) == 1) == (kind == "binary")]
        counts[kind] = (len(docs), len({d.formula for d in docs}))
    met = reference_targets_met(counts)
    parts = []
    for kind, (n_target, f_target) in REFERENCE_TARGETS.items():
        n, f = counts[kind]
        parts.append(f"{kind} {n} of ≥ {n_target} surfaces, {f} of ≥ {f_target} formulas" + (" (met)" if met[kind] else ""))
    return "- targets of the reference campaign: " + "; ".join(parts)


def campaign_file(spec) -> str:
    """The name of a campaign's files here: ``<campaign>_<protocol>.jsonl.gz``."""
    return f"{spec.name}_{spec.protocol}.jsonl.gz"


def surfaces_the_store_lacks(spec, ids: set[str], docs: list) -> tuple[Path, list[str]] | None:
    """The first committed file of ``spec`` (dataset, ``pending/``, ``failures/``) that holds surfaces of the
    present plan (``ids``) of which the store has no document (``docs``), with their ids; None when it has all."""
    stored = {d.surface_id for d in docs}
    name = campaign_file(spec)
    for path in (OUT / name, OUT / "pending" / name, OUT / "failures" / name):
        if path.is_file():
            committed = [doc.surface_id for doc in read_surfaces(path)]
            if missing := sorted(i for i in committed if i in ids and i not in stored):
                return path, missing
    return None


def checkpoint_jobs_the_store_lacks(spec, store) -> list[str]:
    """The uuids of the committed checkpoint's job documents that the store's job store lacks (a finished
    surface's jobs stay in the job store, so only a store that never loaded the checkpoint lacks them)."""
    path = OUT / "checkpoints" / campaign_file(spec)
    if not path.is_file():
        return []
    committed = {(doc["uuid"], doc["index"]) for doc in read_checkpoint(path)}
    stored = {(doc["uuid"], doc["index"]) for doc in store.job_store.query(
        {"uuid": {"$in": sorted({uuid for uuid, _ in committed})}}, properties=["uuid", "index"])}
    return sorted(uuid for uuid, index in committed - stored)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", type=Path, default=SPECS)
    parser.add_argument("--drop-missing", action="store_true",
                        help="write the files even where the store lacks surfaces they hold (deleted on purpose)")
    parser.add_argument("--drop-checkpoint", action="store_true",
                        help="write the checkpoint even where the store lacks job documents it holds (discarded on purpose)")
    args = parser.parse_args()
    literature_file = OUT / "literature.yaml"
    literature = load_literature(literature_file) if literature_file.is_file() else {}
    files: dict[str, int] = {}
    all_docs, timing, remaining = [], [], []
    with BandflowStore.from_settings() as store:
        campaigns = []
        for spec_path in args.specs:
            spec = load_spec(spec_path)
            plans = plan_campaign(spec)
            ids = {e.id for p in plans for e in p.surfaces}
            docs = [d for d in store.query_surfaces(protocol=spec.protocol, state=None) if d.surface_id in ids]
            campaigns.append((spec_path, spec, plans, ids, docs))
        # nothing is written until the store is known to hold what the committed files hold: an export from
        # the wrong store (BANDFLOW_DATA_DIR unset) would otherwise replace the dataset with an empty one
        if not any(d.state == "successful" for *_, docs in campaigns for d in docs):
            print(f"error: no successful surfaces of these campaigns in the store ({store.location}); nothing written",
                  file=sys.stderr)
            return 2
        if dangling := dangling_jobs(store.job_store, older_than_s=0.0):  # the checkpoint could not load them
            print(f"error: the store ({store.location}) holds {len(dangling)} job documents whose outputs were never "
                  f"written (e.g. {dangling[0][2]}): a runner writing them now (try again), or one killed mid-write, "
                  "whose documents the next `bandflow run` drops; nothing written", file=sys.stderr)
            return 2
        # two separate overrides: leaving out a surface deleted on purpose must not also let a store that never
        # loaded the checkpoint remove it (hours of bulk hybrid work)
        for _, spec, _, ids, docs in campaigns:
            if not args.drop_missing and (lost := surfaces_the_store_lacks(spec, ids, docs)):
                path, missing = lost
                print(f"error: the store ({store.location}) lacks {len(missing)} surfaces of {path}"
                      f" (e.g. {missing[0]}); import the file first, or pass --drop-missing to leave them out; "
                      "nothing written", file=sys.stderr)
                return 2
            if not args.drop_checkpoint and (missing := checkpoint_jobs_the_store_lacks(spec, store)):
                print(f"error: the store ({store.location}) lacks {len(missing)} job documents of "
                      f"{OUT / 'checkpoints' / campaign_file(spec)} (e.g. {missing[0]}); `bandflow checkpoint "
                      "load` it first, or pass --drop-checkpoint to leave them out; nothing written", file=sys.stderr)
                return 2
        for spec_path, spec, plans, _, docs in campaigns:
            wanted = expected_job_uuids(flow_jobs(campaign_flow(spec, plans)))
            record_wall_times(store, docs)  # documents made before they recorded their engine times
            # the dataset holds what the present settings computed; successful documents of an earlier bulk
            # method go to pending/ (their slab potentials stay valid) until they are re-aligned
            pending = [d for d in docs if d.state == "successful" and not is_current(d, wanted)]
            docs = [d for d in docs if is_current(d, wanted)]  # failures of earlier settings are retried
            good = [d for d in docs if d.state == "successful"]
            name = campaign_file(spec)
            # failed documents travel too: on a new machine the datasheet keeps its failures, and the runner
            # does not retry a bulk job whose failure is recorded with the same settings (Ga2O3-beta's
            # diverged hybrid: 79 min on 2 cores); `bandflow import` takes them like any other
            failed = [d for d in docs if d.state == "failed"]
            for path, chosen in ((OUT / name, good), (OUT / "pending" / name, pending), (OUT / "failures" / name, failed)):
                if chosen:
                    path.parent.mkdir(exist_ok=True)
                    # the planar profile travels, so that a later analysis can re-take the alignment
                    records = stable_records(surface_records(chosen, keep_profiles=PLANAR_PROFILE), path)
                    count = write_json_lines(list(records), path)
                    if path.parent == OUT:
                        files[name] = count
                else:  # no file of an earlier state stays behind
                    path.unlink(missing_ok=True)
            all_docs += docs
            save_checkpoint(spec, store, OUT / "checkpoints" / name, plans, remove_when_empty=True)  # unfinished work, for a new machine
            status = campaign_status(spec, store, plans)
            done_names = {d.bulk_name for d in good}
            pending_names = {d.bulk_name for d in pending} - done_names
            per_surface = status.seconds_per_surface
            timing.append(f"- `{spec_path.name}`: {status.successful} of {status.total} surfaces done, "
                          f"{status.failed} failed; "
                          + (f"{per_surface:.0f} s of computing per surface (bulk steps spread over their surfaces; "
                             + ("from the jobs that ran on this machine" if status.timed_from == "jobs"
                                else "from the wall times the documents record") + ") on 2 cores"
                             if per_surface else "time per surface unknown: no surface of this campaign is timed yet"))
            if status.remaining:
                eta = ""
                if status.eta_seconds:
                    bulk_jobs = (f"{status.bulks_to_run} bulk jobs at the mean of those timed so far, "
                                 f"{status.bulk_seconds / 60:.0f} min, then "
                                 if status.bulks_to_run and status.bulk_seconds else "")
                    eta = f", about {status.eta_seconds / 3600:.1f} h ({bulk_jobs}slab steps of {status.slab_pace()})"
                outdated = (f" ({status.outdated} of them computed with earlier settings, kept in `pending/{name}` "
                            "until re-aligned)" if status.outdated else "")
                waiting = (f"; bulks with only pending results: {', '.join(sorted(pending_names))}"
                           if pending_names else "")
                # surfaces left per bulk, to plan the next allocation (HfO2-monoclinic's 48 are not Ag2O's 1)
                untouched = ", ".join(f"{b.name} ({b.remaining}{'; bulk stored' if b.bulk_stored else ''})"
                                      for b in sorted(status.bulks, key=lambda b: b.name)
                                      if b.remaining and not b.successful and b.name not in pending_names)
                partly = ", ".join(f"{b.name} ({b.remaining} of {b.total}{'; bulk stored' if b.bulk_stored else ''})"
                                   for b in sorted(status.bulks, key=lambda b: b.name) if b.remaining and b.successful)
                remaining.append(f"- `{spec_path.name}`: {status.remaining} surfaces{outdated}{eta}; bulks without any "
                                 f"surface yet (surfaces): {untouched or 'none'}"
                                 + (f"; bulks partly done (surfaces left): {partly}" if partly else "")
                                 + waiting)
    runs = OUT / "checkpoints" / "finished_runs"
    if not save_kept_runs(runs) and runs.is_dir() and not any(runs.iterdir()):  # a stopped bulk job's PBE runs
        runs.rmdir()
    timing.append("- Until 2026-12-04 14:35 one campaign runner used both cores; since then two runners on disjoint "
                  "bulks with one thread each (two threads ran 1.47× faster than one, so about 1.36× the "
                  "throughput; docs/engines.md), so a wall time recorded since is that of one thread beside "
                  "another run.")
    if {path.resolve() for path in args.specs} != {path.resolve() for path in SPECS}:
        # the datasheet and figures describe every reference campaign: from some of them they would drop the rest
        print(f"wrote {', '.join(f'{k} ({v})' for k, v in files.items()) or 'no dataset file'} in {OUT}; "
              "README.md and the figures are left as they were (they cover every campaign: run without arguments "
              "to rewrite them)")
        return 0
    successful = [d for d in all_docs if d.state == "successful"]
    labels = bulk_labels(successful)  # the datasheet's row names: BiVO4 (not VBiO4), TiO2-anatase, TiO2-rutile
    formula_of = {labels[d.bulk_name]: d.formula for d in successful}
    plot_ip_ea_by_formula([{**d.model_dump(), "formula": labels[d.bulk_name]} for d in successful],
                          OUT / "ip_ea_by_formula.png", title="bandflow reference surfaces (fast protocol)",
                          published={label: [(v.ip, v.ea) for v in literature.get(formula, [])]
                                     for label, formula in formula_of.items()})
    figures = ["ip_ea_by_formula.png"]
    isostructural = OUT / "isostructural_cuts.png"
    isostructural.unlink(missing_ok=True)  # no figure, not an old one, when no structure type has shared cuts
    if groups := isostructural_groups(all_docs):
        figures.append(plot_isostructural_cuts(groups, isostructural, labels).name)
    text = datasheet_markdown("bandflow reference dataset: oxide surface IP/EA", all_docs, files, METHOD,
                              timing=timing, remaining=remaining, literature=literature, isostructural=groups,
                              isostructural_figure=isostructural.name if groups else None)
    text = text.replace("## Counts and ranges", "![IP and EA per formula](ip_ea_by_formula.png)\n\n"
                        "How well the L-SOAP model learns from these surfaces (leave-one-compound-out errors against "
                        "a no-model baseline, written by `tools/reference_model.py`): "
                        "[docs/reference-model.md](../../docs/reference-model.md).\n\n## Counts and ranges")
    text = text.replace("## Counts and ranges\n\n", "## Counts and ranges\n\n" + targets_line(successful) + "\n", 1)
    (OUT / "README.md").write_text(text)
    print(f"wrote {', '.join(f'{k} ({v})' for k, v in files.items())}, README.md, {', '.join(figures)} in {OUT}")
    return 0


if __name__ == "__main__":
    exit_from_script(main)
