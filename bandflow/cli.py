"""The ``bandflow`` command: parses arguments, calls the library modules, prints results."""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from bandflow.errors import BandflowError

if TYPE_CHECKING:
    from bandflow.runner import CampaignStatus

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Band alignment of nonpolar oxide surfaces.")
bulk_app = typer.Typer(no_args_is_help=True, help="The bulk oxide library.")
app.add_typer(bulk_app, name="bulk")


def exit_on_sigterm() -> None:
    """Make SIGTERM (``kill PID``) end this process as Ctrl-C does, through Python's exception path, so that
    a running CP2K is stopped with it (``run_cp2k``) instead of running on as an orphan and ``finally``
    clean-ups run; exit code 143."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@bulk_app.command("list")
def bulk_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Show the library: name, formula, space group, atoms per primitive cell."""
    from bandflow.bulk import library_summaries

    rows = [
        {"name": s.name, "formula": s.formula, "spacegroup": s.spacegroup_symbol,
         "spacegroup_number": s.spacegroup_number, "n_atoms_primitive": s.n_atoms_primitive}
        for s in library_summaries()
    ]
    if as_json:
        _print_json(rows)
        return
    groups = [f"{r['spacegroup']} ({r['spacegroup_number']})" for r in rows]
    name_width = max(len("name"), *(len(r["name"]) for r in rows)) + 2  # columns as wide as the longest entry
    formula_width = max(len("formula"), *(len(r["formula"]) for r in rows)) + 2
    group_width = max(len("space group"), *map(len, groups)) + 2
    typer.echo(f"{'name':<{name_width}}{'formula':<{formula_width}}{'space group':<{group_width}}{'atoms/prim.':>11}")
    for r, group in zip(rows, groups, strict=True):
        typer.echo(f"{r['name']:<{name_width}}{r['formula']:<{formula_width}}{group:<{group_width}}"
                   f"{r['n_atoms_primitive']:>11}")


@bulk_app.command("show")
def bulk_show(
    bulk: str = typer.Argument(..., help="Library name (see `bandflow bulk list`) or a CIF/POSCAR file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One bulk oxide: formula, space group, cell, formal oxidation states and source."""
    from bandflow.bulk import describe_bulk

    info = describe_bulk(bulk)
    if as_json:
        _print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:<18}{value}")


@app.command("surfaces")
def surfaces(
    bulk: str = typer.Argument(..., help="Library name (see `bandflow bulk list`) or a CIF/POSCAR file."),
    max_index: int = typer.Option(1, "--max-index", help="Largest Miller index |h|, |k|, |l| (>= 1)."),
    min_thickness: float = typer.Option(10.0, "--min-thickness", help="Smallest slab thickness (Å)."),
    vacuum: float = typer.Option(15.0, "--vacuum", help="Vacuum between periodic images (Å)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of all entries."),
    write: str | None = typer.Option(None, "--write", help="Write <id>.cif, <id>.POSCAR and surfaces.json here."),
) -> None:
    """Nonpolar (Tasker I/II) symmetric stoichiometric slabs of a bulk oxide; polar orientations with why."""
    from bandflow.bulk import load_bulk
    from bandflow.surfaces import enumerate_surfaces, write_surfaces

    entries = enumerate_surfaces(load_bulk(bulk), max_index, min_thickness, vacuum)
    if not any(e.nonpolar for e in entries):
        polar = "; ".join(f"({''.join(map(str, e.miller_index))}) {e.reason}" for e in entries if e.termination == 0)
        raise BandflowError(f"{bulk}: no nonpolar surface up to max index {max_index}: {polar}")
    if write:
        write_surfaces(entries, write)
    if as_json:
        _print_json([e.to_dict() for e in entries])
    else:
        typer.echo(f"{'id':<34}{'hkl':<7}{'term':>4}{'atoms':>6}{'thick/Å':>9}{'area/Å²':>9}  layer / reason")
        for e in entries:
            hkl = "".join(str(i) for i in e.miller_index)
            note = f"{e.surface_layer} (Tasker {e.tasker_type})" if e.nonpolar else e.reason
            typer.echo(f"{e.id:<34}{hkl:<7}{e.termination:>4}{e.n_atoms:>6}{e.thickness:>9.2f}{e.area:>9.2f}  {note}")
    if write:
        typer.echo(f"wrote {sum(e.nonpolar for e in entries)} slabs (CIF and POSCAR) to {write}", err=as_json)


# ------------------------------------------------------------------------- campaigns (run, submit, plot)
plot_app = typer.Typer(no_args_is_help=True, help="Plots of stored results.")
app.add_typer(plot_app, name="plot")


def _surface_rows(docs: list) -> list[dict]:
    return [
        {"id": d.surface_id, "formula": d.formula, "miller_index": list(d.miller_index),
         "termination": d.termination, "ip": d.ip, "ea": d.ea, "protocol": d.protocol, "state": d.state,
         "failure_reason": d.failure_reason}
        for d in docs
    ]


@app.command("run")
def run(
    spec_file: str = typer.Argument(..., help="Campaign YAML, e.g. workflows/quickstart.yaml"),
    plot: str | None = typer.Option(None, "--plot", help="Write the band-alignment diagram (PNG/SVG)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    stored_only: bool = typer.Option(
        False, "--stored-only",
        help="Only the surfaces that already have a document (re-align them after a settings change); "
             "start no new surface."),
    realign: bool = typer.Option(
        False, "--realign",
        help="Also take again the alignments whose bulk and slab outputs are in this store (no engine step "
             "for them), e.g. after a bandflow update changed how they are taken; with --stored-only, "
             "nothing else runs."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed",
        help="Run again the bulk jobs whose failure an earlier run recorded with the same settings (by "
             "default they are not: a diverged hybrid fails the same way)."),
    slabs_only: bool = typer.Option(
        False, "--slabs-only",
        help="Run only the slab steps (relaxation, slab potential) of unfinished surfaces, which need no bulk "
             "result: for an allocation too short for a bulk hybrid. A later full run does the rest."),
    bulks: list[str] | None = typer.Option(
        None, "--bulk",
        help="Only this bulk of the campaign (repeatable): two runners with one thread each "
             "(BANDFLOW_OMP_NUM_THREADS=1) on disjoint bulks share a 2-core machine."),
    walltime: str | None = typer.Option(
        None, "--walltime",
        help="Start only the jobs expected to finish within this time from now (as Slurm's --time: MM, MM:SS, "
             "H:MM:SS, D-H:MM:SS; or 90m, 2h), "
             "judged from the campaign's timed jobs: a bulk hybrid that would be cut off by the end of a batch "
             "allocation is left for a later run, while slab steps that fit still run."),
) -> None:
    """Run a campaign here, on the configured store; resumes where an earlier run stopped."""
    from bandflow.preflight import check_campaign, unsupported_bulks
    from bandflow.runner import plans_with_documents, run_campaign
    from bandflow.spec import load_spec, select_bulks
    from bandflow.store import BandflowStore

    seconds = _walltime_seconds(walltime)
    counted_from = time.monotonic()  # the walltime runs from here, not from after planning
    if plot:  # refused now, not after hours of computing
        from bandflow.plotting import check_figure_path

        check_figure_path(plot)
    whole = load_spec(spec_file)
    spec = select_bulks(whole, bulks or [])
    plans = check_campaign(spec)  # before the store exists: a refused campaign writes nothing
    for name, reason in unsupported_bulks(spec, plans).items():
        typer.echo(f"warning: {name} will fail: {reason}", err=True)
    store = BandflowStore.from_settings()
    if stored_only:
        plans = plans_with_documents(plans, store, spec.protocol)
        if not plans:
            raise BandflowError(f"--stored-only: the store has no {spec.protocol} document of this campaign's "
                                "surfaces")
    summary = run_campaign(spec, store=store, progress=progress, plans=plans, realign=realign,
                           retry_failed=retry_failed, slabs_only=slabs_only,
                           walltime=None if seconds is None else seconds - (time.monotonic() - counted_from),
                           whole=whole if bulks else None)
    ids = [e.id for p in plans for e in p.surfaces]
    docs = [d for d in store.query_surfaces(protocol=spec.protocol, state=None) if d.surface_id in ids]
    rows = _surface_rows(docs)
    if as_json:
        _print_json({"summary": vars(summary), "surfaces": rows})
    else:
        typer.echo(f"{summary.ran} jobs run, {summary.skipped} already done, {len(summary.failed)} failed "
                   f"in {summary.seconds:.0f} s"
                   + (f"; {summary.deferred} left for a later run (not expected to finish within --walltime)"
                      if summary.deferred else ""))
        if rows:
            typer.echo(f"{'surface':<34}{'hkl':<8}{'IP (eV)':>9}{'EA (eV)':>9}  state")
        for r in rows:
            hkl = "".join(str(i) for i in r["miller_index"])
            ip = f"{r['ip']:.2f}" if r["ip"] is not None else "-"
            ea = f"{r['ea']:.2f}" if r["ea"] is not None else "-"
            typer.echo(f"{r['id']:<34}{hkl:<8}{ip:>9}{ea:>9}  {r['state']}"
                       + (f" ({r['failure_reason']})" if r["failure_reason"] else ""))
    good = [r for r in rows if r["state"] == "successful"]
    if plot and good:
        from bandflow.plotting import plot_alignment

        plot_alignment(good, plot)
        typer.echo(f"band-alignment diagram written to {plot}", err=as_json)  # stdout stays one JSON document
    if slabs_only:
        typer.echo("--slabs-only: the bulk steps and alignments are left for a full run")
        if summary.failed and not summary.ran:
            raise BandflowError("no slab step finished; see the failures above")
    elif not good:
        raise BandflowError("no surface finished successfully; see the failure reasons above")


checkpoint_app = typer.Typer(no_args_is_help=True, help="Carry a campaign's unfinished work to another store.")
app.add_typer(checkpoint_app, name="checkpoint")


@checkpoint_app.command("save")
def checkpoint_save(
    spec_file: str = typer.Argument(..., help="Campaign YAML"),
    output: str = typer.Argument(..., help="File to write: .jsonl.gz (or .jsonl)."),
) -> None:
    """Write the finished jobs of surfaces not yet aligned (bulk, relaxed structures, slab potentials)."""
    from bandflow.checkpoint import save_checkpoint
    from bandflow.spec import load_spec
    from bandflow.store import BandflowStore

    spec = load_spec(spec_file)
    with BandflowStore.from_settings() as store:
        n = save_checkpoint(spec, store, output)
        location = store.location
    if not n:
        raise BandflowError(f"no unfinished work of {spec.name} in the store ({location}); nothing written")
    typer.echo(f"wrote {n} job documents to {output}")


@checkpoint_app.command("load")
def checkpoint_load(path: str = typer.Argument(..., help="A file written by `bandflow checkpoint save`.")) -> None:
    """Put a checkpoint's job documents into the store; `bandflow run` then skips those jobs."""
    from bandflow.checkpoint import load_checkpoint, read_checkpoint
    from bandflow.store import BandflowStore

    docs = read_checkpoint(path)  # the whole file is checked before the store is opened
    if not docs:
        raise BandflowError(f"{path}: no job documents; nothing loaded")
    with BandflowStore.from_settings() as store:
        n = load_checkpoint(store, docs)
    typer.echo(f"loaded {n} job documents")


@checkpoint_app.command("save-runs")
def checkpoint_save_runs(folder: str = typer.Argument(..., help="Folder for the archives (<key>.tar.gz).")) -> None:
    """Archive the finished CP2K runs kept for stopped bulk jobs, so another machine reuses them."""
    from bandflow.cp2k.reuse import remove_finished_archives, runs_folder, save_kept_runs

    removed = remove_finished_archives(folder)  # of runs whose job succeeded here since (none from elsewhere)
    if not (n := save_kept_runs(folder)):
        if removed:
            typer.echo(f"no runs kept in {runs_folder()}; removed {removed} archives of runs whose job has "
                       f"succeeded since from {folder}")
            return
        raise BandflowError(f"no finished CP2K runs kept in {runs_folder()}; nothing written or removed")
    typer.echo(f"{folder} holds the {n} runs kept in {runs_folder()}"
               + (f"; removed {removed} archives of runs whose job has succeeded since" if removed else ""))


@checkpoint_app.command("load-runs")
def checkpoint_load_runs(folder: str = typer.Argument(..., help="A folder written by `checkpoint save-runs`.")) -> None:
    """Add archived CP2K runs to this data directory's kept runs; a stopped bulk job then reuses them."""
    from bandflow.cp2k.reuse import load_kept_runs, runs_folder

    n = load_kept_runs(folder)
    typer.echo(f"added {n} finished CP2K runs to {runs_folder()}")


@app.command("submit")
def submit(spec_file: str = typer.Argument(..., help="Campaign YAML")) -> None:
    """Add a campaign's flow to the FireWorks LaunchPad (workers run it with rlaunch/qlaunch)."""
    from jobflow import Flow

    from bandflow.flows import campaign_flow, flow_jobs
    from bandflow.preflight import check_campaign
    from bandflow.queue import submit_flows, submitted_job_uuids
    from bandflow.runner import (
        completed_uuids,
        expected_job_uuids,
        is_current,
        restore_slab_outputs,
        unneeded_jobs,
    )
    from bandflow.spec import load_spec
    from bandflow.store import BandflowStore

    spec = load_spec(spec_file)
    plans = check_campaign(spec, need_engine=False)
    store = BandflowStore.from_settings()
    wanted = expected_job_uuids(flow_jobs(campaign_flow(spec, plans)))
    done = {d.surface_id for d in store.query_surfaces(protocol=spec.protocol) if is_current(d, wanted)}
    for plan in plans:
        plan.surfaces = [e for e in plan.surfaces if e.id not in done]
    plans = [p for p in plans if p.surfaces]
    if not plans:
        typer.echo("nothing to submit: every surface of this campaign is already in the store")
        return
    flow = campaign_flow(spec, plans)
    # jobs whose outputs are stored, or restored from surface documents (slab steps kept when only the bulk
    # method changed), are not run again: the remaining jobs read those outputs from the job store
    stored = completed_uuids(store, [j.uuid for j in flow.jobs])
    ordered = flow_jobs(flow)
    stored |= restore_slab_outputs(store, ordered, stored)
    stored |= unneeded_jobs(ordered, stored)
    jobs = [j for j in flow.jobs if j.uuid not in stored]
    for j in jobs:
        j.hosts = []  # they move to the flow that is submitted
    flow = Flow(jobs, name=flow.name)
    already = submitted_job_uuids([j.uuid for j in flow.jobs])
    if already:
        raise BandflowError(f"{len(already)} of this campaign's {len(flow.jobs)} jobs are already on the "
                            "LaunchPad; see `bandflow status` (or reset the LaunchPad to submit again)")
    fw_ids = submit_flows([flow], allow_external_references=bool(stored))
    reused = f", {len(stored)} jobs skipped (outputs stored, restored or not needed)" if stored else ""
    typer.echo(f"submitted {len(fw_ids)} fireworks for {sum(len(p.surfaces) for p in plans)} surfaces "
               f"({len(done)} already computed{reused})")


@plot_app.command("alignment")
def plot_alignment_cmd(
    output: str = typer.Option("alignment.png", "--output", "-o", help="PNG or SVG file to write."),
    formula: list[str] = typer.Option(None, "--formula", help="Only these formulas (repeatable)."),
    protocol: str | None = typer.Option(None, "--protocol"),
) -> None:
    """Band-alignment diagram of stored surfaces: VBM and CBM against the vacuum level."""
    from bandflow.plotting import plot_alignment
    from bandflow.store import BandflowStore

    store = BandflowStore.from_settings()
    docs = [d for f in (formula or [None]) for d in store.query_surfaces(formula=f, protocol=protocol)]
    if not docs:
        raise BandflowError("no stored surfaces match; run a campaign first (bandflow run ...)")
    plot_alignment(_surface_rows(docs), output)
    typer.echo(f"wrote {output} ({len(docs)} surfaces)")


@app.command("potential")
def potential(
    path: str = typer.Argument(..., help="VASP LOCPOT (LVHAR) or CP2K *v_hartree*.cube file."),
    axis: str = typer.Option("c", "--axis", help="Lattice vector normal to the surface: a, b, c (or 0, 1, 2)."),
    period: Annotated[list[float] | None, typer.Option(
        "--period", help="Interlayer spacing (Å) for the macroscopic average; repeat for a double average. "
        "Default: detected from the atoms.")] = None,
    tolerance: float = typer.Option(0.02, "--tolerance", help="Largest spread (eV) of a vacuum plateau."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    profile: bool = typer.Option(False, "--profile", help="Also print z (Å), planar and macroscopic averages (eV)."),
    plot: str | None = typer.Option(None, "--plot", help="Write the profile figure to this .png/.svg file."),
) -> None:
    """Vacuum levels and slab-centre average (eV) of a slab's electrostatic potential."""
    from bandflow.potential import analyze_potential

    result = analyze_potential(path, axis=axis, period=period or None, plateau_tolerance=tolerance)
    if plot:
        from bandflow.plotting import plot_potential_profile

        plot_potential_profile(result, plot)
    if as_json:
        _print_json(result.to_dict(profile=profile))
        return
    periods = result.period if isinstance(result.period, tuple) else (result.period,)
    for key, value, unit in (
        ("vacuum_level_top", result.vacuum_level_top, "eV"),
        ("vacuum_level_bottom", result.vacuum_level_bottom, "eV"),
        ("slab_center_average", result.slab_center_average, "eV"),
        ("potential_step", result.potential_step, "eV"),
        ("period", " ".join(f"{p:.4f}" for p in periods), "Å"),
        ("center_variation", result.center_variation, "eV"),
    ):
        typer.echo(f"{key:<21}{value:>12.4f} {unit}" if isinstance(value, float) else f"{key:<21}{value:>12} {unit}")
    if profile:
        typer.echo(f"{'z (Å)':>10}{'planar (eV)':>14}{'macro (eV)':>14}")
        for z, v, m in zip(result.z, result.planar, result.macroscopic, strict=True):
            typer.echo(f"{z:>10.4f}{v:>14.6f}{m:>14.6f}")

# ------------------------------------------------------------------------- store and queue (query, status, worker)
def _prediction_rows(docs: list) -> list[dict]:
    return [
        {"id": d.surface_id, "formula": d.formula, "miller_index": list(d.miller_index),
         "termination": d.termination, "ip": d.ip, "ea": d.ea, "ip_std": d.ip_std, "ea_std": d.ea_std,
         "model_id": d.model_id, "model_version": d.model_version, "unseen_elements": d.unseen_elements}
        for d in docs
    ]


@app.command("query")
def query(
    formula: str | None = typer.Option(None, "--formula", help="Reduced formula, e.g. MgO."),
    miller: tuple[int, int, int] | None = typer.Option(None, "--miller", help="Miller index as three integers: h k l."),
    protocol: str | None = typer.Option(None, "--protocol", help="Protocol name, e.g. fast."),
    chemsys: str | None = typer.Option(None, "--chemsys", help="Chemical system, e.g. Mg-O."),
    state: str = typer.Option("successful", "--state", help="successful, failed or all (surfaces only)."),
    predictions: bool = typer.Option(False, "--predictions", help="Show model predictions instead of DFT results."),
    model_id: str | None = typer.Option(None, "--model-id", help="Only predictions of this model."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Stored surfaces (IP/EA in eV) or model predictions, filtered."""
    import csv

    from bandflow.store import BandflowStore

    if as_json and as_csv:
        raise BandflowError("choose one of --json and --csv")
    with BandflowStore.from_settings() as store:
        if predictions:
            rows = _prediction_rows(store.query_predictions(formula=formula, miller=miller, model_id=model_id,
                                                            chemsys=chemsys))
        else:
            rows = _surface_rows(store.query_surfaces(formula=formula, miller=miller, protocol=protocol,
                                                      chemsys=chemsys, state=None if state == "all" else state))
    if as_json:
        _print_json(rows)
        return
    if as_csv:
        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({**r, "miller_index": " ".join(map(str, r["miller_index"])),
                              **({"unseen_elements": " ".join(r["unseen_elements"])} if "unseen_elements" in r else {})}
                             for r in rows)
        return
    if not rows:
        typer.echo("no stored results match", err=True)
        return
    last = "model" if predictions else "protocol  state"
    typer.echo(f"{'surface':<34}{'hkl':<8}{'IP (eV)':>9}{'EA (eV)':>9}  {last}")
    for r in rows:
        hkl = "".join(str(i) for i in r["miller_index"])
        ip = f"{r['ip']:.2f}" if r["ip"] is not None else "-"
        ea = f"{r['ea']:.2f}" if r["ea"] is not None else "-"
        if predictions:
            tail = r["model_id"] + (f" (unseen {','.join(r['unseen_elements'])})" if r["unseen_elements"] else "")
        else:
            tail = f"{r['protocol']:<10}{r['state']}"
        typer.echo(f"{r['id']:<34}{hkl:<8}{ip:>9}{ea:>9}  {tail}")


@app.command("export")
def export(
    output: str = typer.Argument(..., help="File to write: .jsonl.gz (or .jsonl)."),
    protocol: str | None = typer.Option(None, "--protocol"),
    formula: list[str] = typer.Option(None, "--formula", help="Only these formulas (repeatable)."),
    n_cation_species: int | None = typer.Option(None, "--n-cations", help="1 = binary, 2 = ternary oxides."),
    failed: bool = typer.Option(False, "--failed", help="Include failed surfaces."),
    summary: bool = typer.Option(False, "--summary", help="Print counts, ranges and outliers as JSON."),
) -> None:
    """Export stored surfaces as compressed JSON lines (the reference-dataset format; re-importable)."""
    from bandflow.dataset import dataset_summary, export_surfaces
    from bandflow.store import BandflowStore

    with BandflowStore.from_settings() as store:
        docs = [d for f in (formula or [None]) for d in store.query_surfaces(
            formula=f, protocol=protocol, n_cation_species=n_cation_species, state=None if failed else "successful")]
    if not docs:
        raise BandflowError("no stored surfaces match; nothing written")
    n = export_surfaces(docs, output)
    if summary:
        _print_json(dataset_summary(docs))
    typer.echo(f"wrote {n} surfaces to {output}", err=summary)


def campaign_status_text(progress: CampaignStatus) -> str:
    """``bandflow status SPEC``'s lines: the totals and estimate, a row per bulk with surfaces left, and the
    jobs running now."""
    from bandflow.activity import describe_active, duration_text
    from bandflow.runner import MIN_TIMED_HERE

    eta = "unknown" if progress.eta_seconds is None else f"{progress.eta_seconds / 3600:.1f} h"
    per = "" if progress.seconds_per_surface is None else f", {progress.seconds_per_surface:.0f} s per surface"
    if progress.timed_from == "documents":
        per += (" (the wall times recorded in the finished documents: fewer than "
                f"{MIN_TIMED_HERE} surfaces of this campaign went through all their steps on this machine)")
    elif progress.timed_from == "campaign":
        per += " (the whole campaign's mean times where the bulks picked have none yet)"
    if progress.eta_seconds is not None and progress.remaining:
        n_bulks = f"{progress.bulks_to_run} bulk job{'s' if progress.bulks_to_run != 1 else ''}"
        bulks = "" if not progress.bulks_to_run else (
            f"{n_bulks} of {progress.bulk_seconds / 60:.0f} min on average, then " if progress.bulk_seconds
            else f"{n_bulks} not counted (no bulk job timed yet)"
            + (", except their stopped attempts" if any(b.stopped_seconds for b in progress.bulks) else "") + ", ")
        eta += f" ({bulks}{progress.slab_pace()})"
    outdated = f" ({progress.outdated} computed with earlier settings)" if progress.outdated else ""
    lines = [f"{progress.name}: {progress.successful} done, {progress.failed} failed, "
             f"{progress.remaining} remaining{outdated} of {progress.total}{per}; estimated time left {eta}"]
    open_bulks = [b for b in progress.bulks if b.remaining]
    if open_bulks:
        width = max(len(b.name) for b in open_bulks)
        lines.append(f"  {'bulk':<{width}}  done  failed  left  bulk job")
        lines += [f"  {b.name:<{width}}  {b.successful:>4}  {b.failed:>6}  {b.remaining:>4}  "
                  f"{'stored' if b.bulk_stored else 'to run'}"
                  + (f" (an attempt was stopped after {duration_text(b.stopped_seconds)}; counted as at least that)"
                     if b.stopped_seconds else "") for b in open_bulks]
    if finished := len(progress.bulks) - len(open_bulks):
        lines.append(f"  {finished} bulk{'s' if finished != 1 else ''} with no surface left")
    if progress.running:
        lines.append("  now:")
        lines += [f"  - {describe_active(job)}" for job in progress.running]
    return "\n".join(lines)


@app.command("status")
def status(
    spec_file: str | None = typer.Argument(None, help="A campaign YAML: show its progress and time left."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    bulks: list[str] | None = typer.Option(None, "--bulk", help="Only this bulk of the campaign (repeatable)."),
) -> None:
    """FireWorks states of submitted jobs and what the results store holds (or one campaign's progress)."""
    from bandflow.queue import describe_launchpad, firework_state_counts, get_launchpad, running_launches
    from bandflow.store import BandflowStore

    if bulks and spec_file is None:
        raise BandflowError("--bulk needs a campaign YAML to pick the bulk from")
    if spec_file is not None:
        from bandflow.runner import campaign_status
        from bandflow.spec import load_spec, select_bulks

        whole = load_spec(spec_file)
        spec = select_bulks(whole, bulks or [])
        with BandflowStore.from_settings() as store:
            progress = campaign_status(spec, store, whole=whole if bulks else None)
        if as_json:
            _print_json({**vars(progress), "bulks": [{**vars(b), "remaining": b.remaining} for b in progress.bulks],
                         "bulks_to_run": progress.bulks_to_run,
                         "size_scaling": vars(progress.size_scaling) if progress.size_scaling else None,
                         "bulk_scalings": {name: vars(s) for name, s in progress.bulk_scalings.items()},
                         "running": [{**vars(job), "alive": job.alive(), "seconds": round(job.seconds())}
                                     for job in progress.running]})
            return
        typer.echo(campaign_status_text(progress))
        return

    launchpad = get_launchpad()
    fireworks = firework_state_counts(launchpad)
    running = running_launches(launchpad)
    with BandflowStore.from_settings() as store:
        counts, location = store.counts(), store.location
    if as_json:
        _print_json({"launchpad": describe_launchpad(launchpad), "fireworks": fireworks, "store": location,
                     "running": [{**run, **{k: run[k].isoformat() for k in ("started", "last_pinged") if run[k]}}
                                 for run in running], **counts})
        return
    typer.echo(f"LaunchPad: {describe_launchpad(launchpad)}")
    typer.echo("  " + "  ".join(f"{state} {n}" for state, n in fireworks.items() if n) if any(fireworks.values())
               else "  no fireworks")
    if running:
        from bandflow.activity import describe_launch

        typer.echo("  now:")
        typer.echo("\n".join("  - " + describe_launch(run) for run in running))
    typer.echo(f"Store: {location}")
    typer.echo(f"  surfaces {counts['surfaces_successful']} successful, {counts['surfaces_failed']} failed; "
               f"predictions {counts['predictions']}; models {counts['models']}; job outputs {counts['job_outputs']}")


def _walltime_seconds(walltime: str | None, option: str = "--walltime") -> float | None:
    """A duration option (``--walltime``) in seconds (None when not given); a bad one is one error line."""
    from bandflow.timing import parse_walltime

    try:
        return parse_walltime(walltime) if walltime is not None else None
    except ValueError as exc:
        raise BandflowError(f"{option}: {exc}") from None


@app.command("worker")
def worker(
    n_jobs: int | None = typer.Option(None, "--n-jobs", help="Stop after this many jobs (default: until done)."),
    launch_dir: str | None = typer.Option(None, "--launch-dir", help="Where job folders go (default data_dir/launches)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop starting new jobs after this many seconds."),
    poll: float = typer.Option(5.0, "--poll", help="Seconds between checks while other workers run parent jobs."),
    quiet: bool = typer.Option(False, "--quiet", help="Log errors only."),
    walltime: str | None = typer.Option(
        None, "--walltime",
        help="The allocation's time left (as Slurm's --time: MM, MM:SS, H:MM:SS, D-H:MM:SS; or 90m, 2h): take "
             "only jobs expected to finish in it (mean times of the store's timed jobs); a bulk hybrid that would "
             "be cut off stays READY for a later worker."),
) -> None:
    """Run submitted jobs from the LaunchPad until none is left (safe to start several at once)."""
    from bandflow.queue import launch

    seconds = _walltime_seconds(walltime)
    n_ran = launch(n_jobs, launch_dir=launch_dir, timeout_s=timeout, poll_s=poll, strm_lvl="ERROR" if quiet else "INFO",
                   walltime_s=seconds)
    typer.echo(f"worker finished: {n_ran} job{'s' if n_ran != 1 else ''} run")


@app.command("requeue")
def requeue(
    lost_after: str | None = typer.Option(
        None, "--lost-after",
        help="A RUNNING firework whose worker has not pinged for this long is lost (as --walltime: 4:00:00, 90m, "
             "4h; default FireWorks' run expiration, 4 h; workers ping hourly)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the lost fireworks."),
) -> None:
    """Put fireworks whose worker was killed outright (SIGKILL, node failure) back to READY."""
    from bandflow.activity import duration_text
    from bandflow.queue import requeue_lost

    lost = requeue_lost(_walltime_seconds(lost_after, "--lost-after"), dry_run=dry_run)
    for run in lost:
        ran = duration_text(run["ran_s"]) if run["ran_s"] > 0 else "an unknown time (no ping after its start)"
        typer.echo(f"{run['name'] or 'firework'} (fw {run['fw_id']}) on {run['host'] or 'an unknown host'}: "
                   f"ran at least {ran}")
    verb = "would be put back to READY" if dry_run else "put back to READY"
    typer.echo(f"{len(lost)} lost firework{'s' if len(lost) != 1 else ''} {verb}")


# ------------------------------------------------------------------------- model (train, predict, import, transfer, retrain)
_QUERY_HELP = "Surface filter KEY=VALUE, repeatable: formula, protocol, chemsys, n_cation_species, source, miller."


def _finite(obj: object) -> object:
    """NaN/inf → None, so --json output is valid JSON."""
    from bandflow.ml.train import finite_values

    return finite_values(obj)


def _echo_metrics(metrics: dict) -> None:
    typer.echo(f"{'':<7}{'IP MAE':>8}{'RMSE':>7}{'R2':>7}{'EA MAE':>9}{'RMSE':>7}{'R2':>7}   (eV)")
    for subset, targets in metrics.items():
        ip, ea = targets["ip"], targets["ea"]
        typer.echo(f"{subset:<7}{ip['mae']:>8.3f}{ip['rmse']:>7.3f}{ip['r2']:>7.2f}{ea['mae']:>9.3f}{ea['rmse']:>7.3f}{ea['r2']:>7.2f}")


@app.command("train")
def train(
    query: list[str] = typer.Option(None, "--query", help=_QUERY_HELP),
    descriptor: str = typer.Option("lsoap", "--descriptor", help="lsoap, or soap (one fixed channel per element)."),
    split: str = typer.Option("compound", "--split", help="compound (test compounds unseen in training) or random."),
    members: int = typer.Option(5, "--members", help="Ensemble members (their spread is the uncertainty)."),
    jobs: int = typer.Option(1, "--jobs", help="Members trained at once, one process each."),
    max_epochs: int = typer.Option(300, "--max-epochs", help="Upper limit; training stops early on validation."),
    seed: int = typer.Option(0, "--seed"),
    name: str | None = typer.Option(None, "--name", help="Model name (default lsoap-ipea or soap-ipea)."),
    parity: str | None = typer.Option(None, "--parity", help="Write a parity plot (.png or .svg)."),
    as_json: bool = typer.Option(False, "--json", help="Print model_id and metrics as JSON."),
) -> None:
    """Train the attention network on stored DFT surfaces and store it as a new model version."""
    from bandflow.ml.figures import parity_plot
    from bandflow.ml.model import ModelHyperparameters
    from bandflow.ml.train import TrainConfig
    from bandflow.ml.workflow import parse_query, train_from_store
    from bandflow.plotting import check_figure_path
    from bandflow.store import BandflowStore

    if parity:
        check_figure_path(parity)
    hp = ModelHyperparameters(descriptor=descriptor)
    config = TrainConfig(split=split, n_members=members, n_jobs=jobs, max_epochs=max_epochs, seed=seed)
    with BandflowStore.from_settings() as store:
        stored = train_from_store(store, parse_query(query), hp, config, name)
    result = stored.result
    if parity:
        parity_plot(result.predictions, parity, title=stored.doc.model_id)
    if as_json:
        _print_json(_finite({"model_id": stored.doc.model_id, "version": stored.doc.version, "metrics": result.metrics,
                             "n_surfaces": len(stored.doc.training_surface_ids), "epochs": result.epochs,
                             "seconds": round(result.seconds, 1)}))
        return
    typer.echo(f"stored model {stored.doc.model_id}: {len(stored.doc.training_surface_ids)} surfaces, "
               f"{len(result.model.members)} members, {result.seconds:.0f} s")
    _echo_metrics(result.metrics)


@app.command("crossval")
def crossval(
    query: list[str] = typer.Option(None, "--query", help=_QUERY_HELP),
    descriptor: str = typer.Option("lsoap", "--descriptor", help="lsoap, or soap (one fixed channel per element)."),
    members: int = typer.Option(3, "--members", help="Ensemble members per fold."),
    jobs: int = typer.Option(1, "--jobs", help="Members trained at once, one process each."),
    max_epochs: int = typer.Option(300, "--max-epochs", help="Upper limit; training stops early on validation."),
    seed: int = typer.Option(0, "--seed"),
    plot: str | None = typer.Option(None, "--plot", help="Write the out-of-compound parity plot (.png or .svg)."),
    as_json: bool = typer.Option(False, "--json", help="Print folds, overall metrics and every prediction as JSON."),
) -> None:
    """Leave-one-compound-out cross-validation on stored DFT surfaces, against the training-mean baseline
    (nothing is stored: it measures how far to trust a model on compounds it has not seen)."""
    from bandflow.ml.crossval import compound_cross_validation
    from bandflow.ml.figures import crossval_plot
    from bandflow.ml.model import ModelHyperparameters
    from bandflow.ml.train import TrainConfig
    from bandflow.ml.workflow import parse_query, surface_records, training_surfaces
    from bandflow.plotting import check_figure_path
    from bandflow.store import BandflowStore

    if plot:
        check_figure_path(plot)
    hp = ModelHyperparameters(descriptor=descriptor)
    config = TrainConfig(n_members=members, n_jobs=jobs, max_epochs=max_epochs, seed=seed)
    with BandflowStore.from_settings() as store:
        docs = training_surfaces(store, parse_query(query))
    result = compound_cross_validation(surface_records(docs), hp, config, progress=not as_json)
    if plot:
        crossval_plot(result, plot, title=f"{descriptor}, leave one compound out ({result['n_compounds']} compounds)")
    if as_json:
        _print_json(_finite(result))
        return
    typer.echo(f"{result['n_surfaces']} surfaces of {result['n_compounds']} compounds, each compound held out once")
    typer.echo(f"{'held out':<16}{'n':>4}{'IP MAE':>9}{'baseline':>10}{'EA MAE':>9}{'baseline':>10}   (eV)")
    for fold in [*result["folds"], {"compound": "all", "n_surfaces": result["n_surfaces"], **result["overall"]}]:
        m, b = fold["model"], fold["baseline"]
        typer.echo(f"{fold['compound']:<16}{fold['n_surfaces']:>4}{m['ip']['mae']:>9.3f}{b['ip']['mae']:>10.3f}"
                   f"{m['ea']['mae']:>9.3f}{b['ea']['mae']:>10.3f}")


@app.command("predict")
def predict(
    bulks: list[str] = typer.Argument(None, help="Library bulk names or CIF/POSCAR files."),
    missing: bool = typer.Option(False, "--missing", help="Only surfaces without a stored DFT result (of the "
                                 "given bulks, or of every library bulk)."),
    model_id: str | None = typer.Option(None, "--model", help="Stored model id (default: the newest)."),
    max_index: int = typer.Option(1, "--max-index", help="Largest Miller index of the enumerated surfaces."),
    importance: str | None = typer.Option(None, "--importance", help="Folder for per-atom importance JSON + PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Predict IP and EA (with ensemble uncertainty) of the nonpolar surfaces of bulks; stored as predictions,
    never over DFT results."""
    from pathlib import Path

    from bandflow.ml.figures import importance_plot
    from bandflow.ml.importance import atom_importances, write_importances
    from bandflow.ml.workflow import load_stored_model, predict_into_store, surfaces_of, surfaces_without_dft
    from bandflow.store import BandflowStore

    if not bulks and not missing:
        raise BandflowError("give bulk names or files, or --missing")
    if importance and not Path(importance).is_dir():
        raise BandflowError(f"folder does not exist: {importance}")
    with BandflowStore.from_settings() as store:
        stored = load_stored_model(store, model_id)
        entries = surfaces_without_dft(store, bulks, max_index) if missing else surfaces_of(bulks, max_index)
        predictions = predict_into_store(store, stored, entries)
        dft = {d.surface_id: d for d in store.query_surfaces(state="successful")}
    if importance:
        for entry in entries:
            if entry.slab is not None:
                values = atom_importances(stored.model, entry.slab, entry.id)
                write_importances(values, Path(importance) / f"{entry.id}.json")
                importance_plot(values, Path(importance) / f"{entry.id}.png", "alpha_ip")
    rows = [{**p.as_dict(), "model_id": stored.doc.model_id,
             "dft_ip": dft[p.id].ip if p.id in dft else None, "dft_ea": dft[p.id].ea if p.id in dft else None}
            for p in predictions]
    if as_json:
        _print_json(_finite(rows))
        return
    if not rows:
        typer.echo("no surfaces to predict", err=True)
        return
    typer.echo(f"model {stored.doc.model_id}; {len(rows)} surfaces stored as predictions")
    typer.echo(f"{'surface':<34}{'hkl':<8}{'IP (eV)':>13}{'EA (eV)':>13}{'DFT IP':>8}{'DFT EA':>8}  note")
    for r in rows:
        hkl = "".join(str(i) for i in r["miller_index"] or ())
        dft_ip = f"{r['dft_ip']:.2f}" if r["dft_ip"] is not None else "-"
        dft_ea = f"{r['dft_ea']:.2f}" if r["dft_ea"] is not None else "-"
        note = f"unseen {','.join(r['unseen_elements'])}" if r["unseen_elements"] else ""
        typer.echo(f"{r['id']:<34}{hkl:<8}{r['ip']:>7.2f}±{r['ip_std']:<5.2f}{r['ea']:>7.2f}±{r['ea_std']:<5.2f}"
                   f"{dft_ip:>8}{dft_ea:>8}  {note}")


@app.command("import")
def import_(path: str = typer.Argument(..., help="Surface documents as JSON lines (.jsonl or .jsonl.gz).")) -> None:
    """Import DFT surface results (the `bandflow export` format); bad records are listed, good ones kept."""
    from bandflow.ml.workflow import read_surface_records, write_surface_records
    from bandflow.store import BandflowStore

    report, valid = read_surface_records(path)  # the whole file is read before the store is opened
    if not report.n_records:
        raise BandflowError(f"{path}: no records; nothing imported")
    if valid:
        with BandflowStore.from_settings() as store:
            write_surface_records(store, report, valid)
    for message in report.rejected:
        typer.echo(f"rejected {message}", err=True)
    typer.echo(f"imported {len(report.imported)} of {report.n_records} records")
    if report.rejected:
        raise BandflowError(f"{len(report.rejected)} of {report.n_records} records rejected (listed above)")


@app.command("transfer")
def transfer(
    source: str = typer.Option(..., "--from", help="Source L-SOAP model id (e.g. trained on binary oxides)."),
    fractions: str = typer.Option("0.1,0.2,0.4,0.8", "--fractions", help="Fractions of the target training pool."),
    query: list[str] = typer.Option(None, "--query", help=_QUERY_HELP + " Default: n_cation_species=2."),
    members: int = typer.Option(1, "--members", help="Ensemble members per trained model."),
    max_epochs: int = typer.Option(300, "--max-epochs", help="Upper limit per model; stops early on validation."),
    repeats: int = typer.Option(1, "--repeats", help="Run the study this many times, each with other test "
                                "compounds, pool order and initial weights; report means and ranges."),
    plot: str | None = typer.Option(None, "--plot", help="Write the learning curves (.png or .svg)."),
    as_json: bool = typer.Option(False, "--json", help="Print the curves as JSON."),
) -> None:
    """Compare fine-tuning the source model, L-SOAP from scratch and standard SOAP on the target surfaces."""
    from bandflow.ml.figures import transfer_plot
    from bandflow.ml.train import TrainConfig
    from bandflow.ml.transfer import transfer_verdict, verdict_sentence
    from bandflow.ml.workflow import parse_query, transfer_from_store
    from bandflow.plotting import check_figure_path
    from bandflow.store import BandflowStore

    try:
        values = [float(f) for f in fractions.split(",")]
    except ValueError:
        raise BandflowError(f"--fractions must be numbers separated by commas, got {fractions!r}") from None
    if plot:
        check_figure_path(plot)
    with BandflowStore.from_settings() as store:
        result = transfer_from_store(store, source, values, parse_query(query) if query else None,
                                     TrainConfig(n_members=members, max_epochs=max_epochs), repeats=repeats)
    if plot:
        transfer_plot(result["curves"], plot, title=f"transfer from {source}")
    verdict = transfer_verdict(result)
    if as_json:
        _print_json(_finite({**result, "verdict": verdict}))
        return
    if result["repeats"] == 1:
        typer.echo(f"{result['n_target']} target surfaces, {result['n_test']} in the test set "
                   f"({', '.join(result['test_groups'])}); test MAE IP / EA (eV)")
    else:
        typer.echo(f"{result['n_target']} target surfaces, {result['repeats']} repeats, test sets "
                   + "; ".join(", ".join(s["test_groups"]) for s in result["splits"])
                   + "; mean test MAE IP / EA (eV), range over the repeats below each row")
    typer.echo(f"{'method':<22}" + "".join(f"{p['fraction']:>14.2f}" for p in result["curves"][0]["points"]))
    for curve in result["curves"]:
        typer.echo(f"{curve['method']:<22}" + "".join(
            f"{p['test']['ip']['mae']:>8.3f}/{p['test']['ea']['mae']:<5.3f}" for p in curve["points"]))
        if result["repeats"] > 1:
            typer.echo(f"{'':<22}" + "".join(
                f"{'{:.1f}-{:.1f}/{:.1f}-{:.1f}'.format(*p['test_range']['ip'], *p['test_range']['ea']):>14}"
                for p in curve["points"]))
    typer.echo("verdict: " + verdict_sentence(verdict))


@app.command("retrain")
def retrain(
    model_id: str | None = typer.Option(None, "--model", help="Stored model id (default: the newest)."),
    jobs: int = typer.Option(1, "--jobs", help="Members trained at once, one process each."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fine-tune a model on surfaces stored since it was trained, store the new version, re-predict."""
    from bandflow.ml.workflow import retrain as retrain_model
    from bandflow.store import BandflowStore

    with BandflowStore.from_settings() as store:
        outcome = retrain_model(store, model_id, n_jobs=jobs)
    new = outcome.stored
    if as_json:
        _print_json(_finite({"parent_model_id": outcome.parent.model_id, "model_id": new.doc.model_id if new else None,
                             "new_surfaces": outcome.new_surfaces, "repredicted": outcome.repredicted,
                             "metrics": new.result.metrics if new else None}))
        return
    if new is None:
        typer.echo(f"model {outcome.parent.model_id} is up to date: no surfaces added since it was trained")
        return
    typer.echo(f"stored model {new.doc.model_id} (fine-tuned from {outcome.parent.model_id} with "
               f"{len(outcome.new_surfaces)} new surfaces); {outcome.repredicted} predictions redone")
    _echo_metrics(new.result.metrics)


def main() -> None:
    """Entry point: bad input or environment gives one line on stderr and exit code 2."""
    exit_on_sigterm()
    try:
        app()
    except BandflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path the user gave that the file system refuses (a file where a folder should be, no permission)
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
