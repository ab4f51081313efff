"""Train and judge the L-SOAP model on the committed reference dataset; write docs/reference-model.md.

What a user reads to decide whether to trust the model on compounds it has not seen:

1. leave-one-compound-out cross-validation of L-SOAP and of standard SOAP on the binary oxides, each
   against the training-mean baseline (`bandflow crossval`), the L-SOAP one repeated with ``--seeds``
   seeds to show how far its numbers move by chance;
2. the binary model itself, trained on a compound-grouped split (`bandflow train --split compound`);
3. the transfer curve binary → ternary (`bandflow transfer`), once the ternary campaign has surfaces,
   run ``--transfer-repeats`` times with other test compounds and seeds (means and ranges).

    python tools/reference_model.py            # reads data/reference/*.jsonl.gz

Numbers, figures and the JSON behind them are rewritten on every run (docs/images/reference_*.png,
data/reference/model_metrics.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bandflow.dataset import REFERENCE_TARGETS, bulk_edges_issue, read_surfaces, reference_targets_met
from bandflow.errors import BandflowError, exit_from_script
from bandflow.files import replaced_atomically
from bandflow.ml.crossval import MIN_COMPOUNDS, compound_cross_validation
from bandflow.ml.figures import crossval_plot, parity_plot, transfer_plot
from bandflow.ml.model import ModelHyperparameters
from bandflow.ml.train import TrainConfig, finite_values, train_model
from bandflow.ml.transfer import transfer_curves, transfer_verdict, verdict_sentence
from bandflow.ml.workflow import surface_records

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "reference"
IMAGES = ROOT / "docs" / "images"
PAGE = ROOT / "docs" / "reference-model.md"
#: A transfer curve needs target compounds both to fine-tune on and to test on.
MIN_TERNARY_COMPOUNDS = 4


def _metric(metrics: dict, target: str, name: str = "mae") -> str:
    value = metrics[target][name]
    return f"{value:.2f}" if math.isfinite(value) else "–"


def _write_texts(texts: dict[Path, str]) -> None:
    """Write each file whole (a reader never sees half a page); the texts are all made before the first write."""
    for path, content in texts.items():
        with replaced_atomically(path) as temporary:
            temporary.write_text(content)


def _train_and_write(args: argparse.Namespace, results: dict, binary: list, ternary: list, config: TrainConfig,
                     staging: Path, started: float) -> None:
    """The cross-validations, the binary model and the transfer study; figures go to ``staging`` and are moved,
    with the metrics and page written, only at the end."""
    records = surface_records(binary)
    for descriptor in ("lsoap", "soap"):
        print(f"cross-validation, {descriptor}")
        cv = compound_cross_validation(records, ModelHyperparameters(descriptor=descriptor), config)
        results[f"crossval_{descriptor}"] = cv
        crossval_plot(cv, staging / f"reference_crossval_{descriptor}.png",
                      title=f"{'L-SOAP' if descriptor == 'lsoap' else 'standard SOAP'}: each compound held out once")
    # the same L-SOAP folds with other seeds (other early-stopping compounds, other initial weights): how far
    # a number on this page moves with nothing changed but chance
    results["crossval_lsoap_seeds"] = [seed_summary(results["crossval_lsoap"], config.seed)]
    for k in range(1, args.seeds):
        print(f"cross-validation, lsoap, seed {config.seed + k}")
        cv = compound_cross_validation(records, ModelHyperparameters(), replace(config, seed=config.seed + k))
        results["crossval_lsoap_seeds"].append(seed_summary(cv, config.seed + k))
    print("binary model, compound split")
    trained = train_model(records, ModelHyperparameters(), config)
    results["binary_model"] = {"metrics": trained.metrics, "epochs": trained.epochs,
                               "split": {k: sorted({records[i].group for i in v}) for k, v in trained.split.items()}}
    parity_plot(trained.predictions, staging / "reference_binary_parity.png",
                title="L-SOAP on the binary reference surfaces (compound split)")
    if len({d.formula for d in ternary}) >= MIN_TERNARY_COMPOUNDS:
        print("transfer binary -> ternary")
        curves = transfer_curves(trained.model, surface_records(ternary), config=TrainConfig(n_members=1,
                                 max_epochs=args.max_epochs), repeats=args.transfer_repeats)
        gaps: dict[str, set[float]] = {}  # per formula: every polymorph's gap (TiO2 rutile and anatase)
        for d in ternary + binary:
            if d.bulk_gap is not None:
                gaps.setdefault(d.formula, set()).add(round(d.bulk_gap, 4))
        curves["bulk_gaps"] = {formula: sorted(values) for formula, values in gaps.items()}
        results["transfer"] = curves
        transfer_plot(curves["curves"], staging / "reference_transfer.png", title="binary → ternary")
    results["seconds"] = round(time.perf_counter() - started, 1)
    # the texts are made before anything is replaced: a page that fails to render leaves the last one whole
    text, metrics = page(results), json.dumps(finite_values(results), indent=1) + "\n"
    for old in IMAGES.glob("reference_*.png"):  # none left from an earlier run that this one did not draw
        if not (staging / old.name).exists():
            old.unlink()
    for figure in staging.iterdir():
        os.replace(figure, IMAGES / figure.name)
    _write_texts({DATA / "model_metrics.json": metrics, PAGE: text})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3, help="ensemble members per trained model")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3,
                        help="L-SOAP cross-validations with different seeds, to show how much the numbers move")
    parser.add_argument("--transfer-repeats", type=int, default=5,
                        help="transfer studies, each with other ternary test compounds and seeds (means and ranges)")
    parser.add_argument("--page-only", action="store_true",
                        help="rewrite the page from the stored model_metrics.json (after a change to the page's text; "
                             "no training)")
    args = parser.parse_args()
    if args.page_only:
        metrics = DATA / "model_metrics.json"
        if not metrics.exists():
            print(f"error: {metrics} does not exist; run without --page-only first", file=sys.stderr)
            return 2
        try:
            results = json.loads(metrics.read_text())
        except json.JSONDecodeError as exc:
            raise BandflowError(f"{metrics}: not JSON ({exc.msg}, line {exc.lineno}); run without --page-only"
                                ) from None
        _write_texts({PAGE: page(results) if "crossval_lsoap" in results else too_few_page(results)})
        print(f"wrote {PAGE} from {metrics}")
        return 0
    docs = [d for path in sorted(DATA.glob("*.jsonl.gz")) for d in read_surfaces(path) if d.state == "successful"]
    protocols = sorted({d.protocol for d in docs})
    if len(protocols) != 1:
        print(f"error: expected surfaces of one protocol in {DATA}, found {protocols or 'none'}", file=sys.stderr)
        return 2
    binary = [d for d in docs if d.n_cation_species == 1]
    ternary = [d for d in docs if (d.n_cation_species or 0) >= 2]
    config = TrainConfig(n_members=args.members, max_epochs=args.max_epochs)
    results: dict = {"protocol": protocols[0], "n_binary": len(binary), "n_ternary": len(ternary),
                     "binary_compounds": sorted({d.formula for d in binary}),
                     "ternary_compounds": sorted({d.formula for d in ternary}), "members": args.members,
                     # per bulk, not formula: polymorphs (TiO2 rutile and anatase) have their own hybrid cells
                     "bulk_edge_issues": {d.bulk_name: issue for d in sorted(docs, key=lambda d: d.bulk_name)
                                          if (issue := bulk_edges_issue(d))}}
    if len(results["binary_compounds"]) < MIN_COMPOUNDS:  # nothing to judge yet: say so instead of old numbers
        _write_texts({DATA / "model_metrics.json": json.dumps(results, indent=1) + "\n", PAGE: too_few_page(results)})
        for figure in IMAGES.glob("reference_*.png"):
            figure.unlink()
        print(f"wrote {os.path.relpath(PAGE, ROOT)}: {len(results['binary_compounds'])} binary compounds, "
              f"cross-validation needs {MIN_COMPOUNDS}")
        return 0
    started = time.perf_counter()
    # the figures are drawn into a folder of their own and moved beside the metrics and page only when all is
    # done, so that an interrupted run (an hour long) leaves the last complete page, not new figures beside it
    staging = Path(tempfile.mkdtemp(prefix=".reference_model.", dir=IMAGES))
    try:
        _train_and_write(args, results, binary, ternary, config, staging, started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {os.path.relpath(PAGE, ROOT)}, data/reference/model_metrics.json and figures in {results['seconds']:.0f} s")
    return 0


def seed_summary(cv: dict, seed: int) -> dict:
    """The overall and per-compound IP/EA MAE of one cross-validation run, with its seed."""
    return {"seed": seed, "ip": cv["overall"]["model"]["ip"]["mae"], "ea": cv["overall"]["model"]["ea"]["mae"],
            "folds": {f["compound"]: {"ip": f["model"]["ip"]["mae"], "ea": f["model"]["ea"]["mae"]}
                      for f in cv["folds"]}}


def seed_spread_sentence(runs: list[dict]) -> str:
    """How much the L-SOAP cross-validation moves between seeds (``runs`` from :func:`seed_summary`)."""
    def span(values: list[float]) -> str:
        return f"{min(values):.2f}–{max(values):.2f} eV"

    compounds = list(runs[0]["folds"])
    widest = {t: max(compounds, key=lambda c: max(r["folds"][c][t] for r in runs) - min(r["folds"][c][t] for r in runs))
              for t in ("ip", "ea")}
    moves = {t: span([r["folds"][widest[t]][t] for r in runs]) for t in ("ip", "ea")}
    return (f"**How much these numbers move by chance.** The L-SOAP cross-validation was run {len(runs)} times "
            "with different seeds (each draws other early-stopping compounds and other initial weights). Overall IP MAE "
            f"{span([r['ip'] for r in runs])}, EA {span([r['ea'] for r in runs])}. Per compound the IP MAE moves "
            f"most for {widest['ip']} ({moves['ip']}) and the EA MAE for {widest['ea']} ({moves['ea']}). A "
            "difference smaller than these spreads, between two compounds or between two versions of this page, "
            "is noise.")


_EA_FROM_GAP = ("The network predicts IP and the gap and gives EA = IP − gap, so a gap it has to extrapolate goes "
                "straight into EA")


def _gap_lists(gaps: dict[str, list[float] | float]) -> dict[str, list[float]]:
    """``gaps`` with every formula's gaps as a list (an older metrics file holds a single number)."""
    return {f: [g] if isinstance(g, int | float) else list(g) for f, g in gaps.items()}


def _outside_pool(gaps: dict[str, list[float]], test: list[str], ternary: list[str]) -> tuple[list[float], list[str]]:
    """The gaps of the ternary compounds a transfer point trains on (not in ``test``), and the test compounds
    with a gap outside their range."""
    pool = [gap for f, values in gaps.items() if f in ternary and f not in test for gap in values]
    return pool, [f for f in test if f in gaps and pool and any(not min(pool) <= g <= max(pool) for g in gaps[f])]


def _gap_ranges(gaps: dict[str, list[float] | float], test: list[str], ternary: list[str]) -> str:
    """One sentence: the test compounds' bulk gaps against those of the compounds a transfer point learns from
    (``gaps``: formula → the gaps of its polymorphs; a single number from an older metrics file)."""
    def span(values: list[float]) -> str:
        return f"{min(values):.2f}–{max(values):.2f} eV" if values else "none"

    gaps = _gap_lists(gaps)
    pool, outside = _outside_pool(gaps, test, ternary)
    binary = [gap for f, values in gaps.items() if f not in ternary for gap in values]
    shown = ", ".join(f"{f} {' / '.join(f'{g:.2f}' for g in gaps[f])} eV" for f in test if f in gaps)
    sentence = (f"Bulk HSE06 gaps: test {shown}; the other "
                f"ternary compounds {span(pool)}; the binary ones {span(binary)}. {_EA_FROM_GAP}")
    return sentence + (f": {', '.join(outside)} lies outside the ternary training range." if outside else ".")


def transfer_section(transfer: dict, ternary: list[str]) -> list[str]:
    """The transfer tables (IP and EA), their reading and the bulk-gap sentence, for one study or repeats."""
    repeats = transfer.get("repeats", 1)
    points = transfer["curves"][0]["points"]
    header = "| method | " + " | ".join(f"{p['fraction']:.0%} ({p['n_train']})" for p in points) + " |"
    rule = "|---|" + "---|" * len(points)

    def cell(point: dict, target: str) -> str:
        low_high = point.get("test_range", {}).get(target)
        return _metric(point["test"], target) + (f" ({low_high[0]:.2f}–{low_high[1]:.2f})"
                                                 if repeats > 1 and low_high else "")

    lines = []
    if repeats > 1:
        lines += [f"{transfer['n_target']} ternary surfaces. The study was run {repeats} times, each with other test "
                  "compounds (25 % of the ternary compounds, held out whole), another order of the training pool and "
                  "other initial weights: " + "; ".join(f"{', '.join(s['test_groups'])} ({s['n_test']} surfaces)"
                                                        for s in transfer["splits"]) + ".", ""]
    else:
        n_groups = len(transfer["test_groups"])
        lines += [f"{transfer['n_target']} ternary surfaces; test compounds {', '.join(transfer['test_groups'])} "
                  f"({transfer['n_test']} surfaces of {n_groups} compound{'s' if n_groups > 1 else ''}, one network "
                  "per point: differences below about 0.5 eV are not meaningful).", ""]
    for target in ("ip", "ea"):
        lines += [f"Test MAE of {target.upper()} (eV):", "", header, rule]
        lines += [f"| {curve['method']} | " + " | ".join(cell(p, target) for p in curve["points"]) + " |"
                  for curve in transfer["curves"]]
        lines.append("")
    lines += ["Columns: the share of the ternary training pool (in brackets: the surfaces trained on"
              + (", mean over the repeats" if repeats > 1 else "") + "; validation included for the baseline). "
              + ("Each cell is the mean over the repeats, in brackets their range. " if repeats > 1 else "")
              + "The last two rows are the references: the binary model with no ternary data, and the mean of the "
              "ternary surfaces a point may train on. A method helps only where it beats both"
              + (", and a difference counts only where the ranges barely overlap." if repeats > 1 else "."), "",
              "**Transfer verdict now** (paired: in each repeat a method and the references see the same test "
              "compounds): " + verdict_sentence(transfer_verdict(transfer)), "",
              "![transfer](images/reference_transfer.png)"]
    if gaps := transfer.get("bulk_gaps"):
        splits = transfer.get("splits") or [{"test_groups": transfer["test_groups"]}]
        if len(splits) == 1:
            lines += ["", _gap_ranges(gaps, splits[0]["test_groups"], ternary)]
        else:
            lines += ["", _gap_outliers(gaps, [s["test_groups"] for s in splits], ternary)]
    return lines


def _gap_outliers(gaps: dict[str, list[float] | float], tests: list[list[str]], ternary: list[str]) -> str:
    """One sentence over repeated transfer studies: which test compounds had a bulk gap outside the gaps of
    the ternary compounds their repeat trained on (their EA is an extrapolation)."""
    gaps = _gap_lists(gaps)
    shown = ", ".join(f"{f} {' / '.join(f'{g:.2f}' for g in gaps[f])}" for f in ternary if f in gaps)
    outside = [f"{f} (repeat {k})" for k, test in enumerate(tests, start=1)
               for f in _outside_pool(gaps, test, ternary)[1]]
    sentence = f"Bulk HSE06 gaps of the ternary compounds (eV): {shown}. {_EA_FROM_GAP}"
    return sentence + (f"; test compounds whose gap lies outside those their repeat trained on: {', '.join(outside)}."
                       if outside else "; no test compound's gap lay outside those its repeat trained on.")


def too_few_page(results: dict) -> str:
    """The page while the dataset has fewer binary compounds than a leave-one-compound-out needs."""
    return "\n".join([
        "# The model on bandflow's own DFT data",
        "",
        "Written by `python tools/reference_model.py` from the reference dataset in `data/reference/` "
        "(see its [datasheet](../data/reference/README.md)).",
        "",
        f"**No verdict yet.** The dataset holds {results['n_binary']} binary-oxide surfaces of "
        f"{len(results['binary_compounds'])} compounds ({', '.join(results['binary_compounds']) or 'none'}) "
        f"computed with the current bulk method; leave-one-compound-out cross-validation needs at least "
        f"{MIN_COMPOUNDS}. Surfaces computed with an earlier bulk method wait in `data/reference/pending/` "
        "until their bulks are recomputed, and are not used here. This page is regenerated as the dataset "
        "grows.",
        "",
    ])


def _growth_sentence(results: dict) -> str:
    """Where the dataset stands against the campaign's targets, and what that means for the numbers."""
    counts = {"binary": (results["n_binary"], len(results["binary_compounds"])),
              "ternary": (results["n_ternary"], len(results["ternary_compounds"]))}
    (nb, fb), (nt, ft) = REFERENCE_TARGETS["binary"], REFERENCE_TARGETS["ternary"]
    targets = f"≥ {nb} binary surfaces of ≥ {fb} formulas, ≥ {nt} ternary of ≥ {ft}"
    if all(reference_targets_met(counts).values()):
        return (f"The dataset has reached the targets of its campaign ({targets}), yet with "
                f"{counts['binary'][1]} binary compounds the numbers describe these compounds, not oxides in general; "
                "this page is regenerated as the dataset grows.")
    return ("With this few compounds the numbers describe these compounds, not oxides in general: the dataset is "
            f"still growing toward its targets ({targets}) and this page is regenerated as it grows.")


def page(results: dict) -> str:
    """The markdown page (docs/reference-model.md) for ``results``."""
    lsoap, soap = results["crossval_lsoap"], results["crossval_soap"]
    lines = [
        "# The model on bandflow's own DFT data",
        "",
        "Written by `python tools/reference_model.py` from the reference dataset in `data/reference/` "
        f"(`{results['protocol']}` protocol, CP2K; see its [datasheet](../data/reference/README.md)). "
        f"{results['n_binary']} binary-oxide surfaces of {len(results['binary_compounds'])} compounds "
        f"({', '.join(results['binary_compounds'])}); {results['n_ternary']} ternary-oxide surfaces. "
        f"Ensembles of {results['members']} networks; every number below is measured, on the 2-core development "
        f"machine ({results['seconds'] / 60:.1f} min for this page).",
        "",
        f"**Read this first.** {_growth_sentence(results)} The reference point is the "
        "**baseline**, the mean IP/EA of the training compounds: a model that does not beat it has learnt "
        "nothing transferable. For scale, Kiyohara, Hinuma & Oba (2024) report MAE ≈ 0.2 eV with ~2,200 "
        "binary surfaces. The targets are this dataset's HSE06-level values, so the model predicts those: "
        "for ionic wide-gap oxides its IPs are about 1 eV smaller than those of Kiyohara et al.'s dielectric-dependent "
        "hybrid (the comparison under the datasheet's per-formula table, "
        "data/reference/README.md).",
        "",
        *([f"**Bulk band edges flagged** (in the datasheet; docs/engines.md) for "
           f"{', '.join(results['bulk_edge_issues'])}; the model learns these targets as they are:", "",
           *(f"- {bulk}: {issue}" for bulk, issue in results["bulk_edge_issues"].items()), ""]
          if results.get("bulk_edge_issues") else []),
        "## Unseen compounds: leave one compound out",
        "",
        "Each compound is held out once; the model is trained on the others (early stopping on another whole "
        "compound) and predicts every surface of the held-out one from its *unrelaxed* structure. "
        "`bandflow crossval --query n_cation_species=1 --plot cv.png`.",
        "",
        "| held-out compound | surfaces | L-SOAP IP MAE | SOAP IP MAE | baseline IP MAE | L-SOAP EA MAE | SOAP EA MAE | baseline EA MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fold, other in zip(lsoap["folds"], soap["folds"], strict=True):
        lines.append(f"| {fold['compound']} | {fold['n_surfaces']} | {_metric(fold['model'], 'ip')} | "
                     f"{_metric(other['model'], 'ip')} | {_metric(fold['baseline'], 'ip')} | {_metric(fold['model'], 'ea')} | "
                     f"{_metric(other['model'], 'ea')} | {_metric(fold['baseline'], 'ea')} |")
    lo, so = lsoap["overall"], soap["overall"]
    gain = {t: lo["baseline"][t]["mae"] - lo["model"][t]["mae"] for t in ("ip", "ea")}
    ranges = {}
    for fold in lsoap["folds"]:
        held = [s["ip_true"] for s in lsoap["surfaces"] if s["compound"] == fold["compound"]]
        others = [s["ip_true"] for s in lsoap["surfaces"] if s["compound"] != fold["compound"]]
        if min(held) > max(others) or max(held) < min(others):
            ranges[fold["compound"]] = f"{min(held):.1f}–{max(held):.1f} eV"
    verdict = (f"**Verdict now:** on unseen compounds L-SOAP is {abs(gain['ip']):.2f} eV "
               f"{'better' if gain['ip'] > 0 else 'worse'} than the baseline for IP and {abs(gain['ea']):.2f} eV "
               f"{'better' if gain['ea'] > 0 else 'worse'} for EA (MAE); far from the ≈ 0.2 eV of the paper, so "
               "its predictions are not yet a substitute for DFT." if max(lo["model"]["ip"]["mae"],
                                                                        lo["model"]["ea"]["mae"]) > 0.3 else
               f"**Verdict now:** MAE on unseen compounds {lo['model']['ip']['mae']:.2f} eV (IP), "
               f"{lo['model']['ea']['mae']:.2f} eV (EA).")
    if ranges:
        verdict += (" Held-out compounds whose IPs lie wholly outside the range of all others are extrapolations, "
                    "which no model of this kind does well: " + ", ".join(f"{k} ({v})" for k, v in ranges.items())
                    + ".")
    lines += [
        f"| **all** | {lsoap['n_surfaces']} | **{_metric(lo['model'], 'ip')}** | {_metric(so['model'], 'ip')} | "
        f"{_metric(lo['baseline'], 'ip')} | **{_metric(lo['model'], 'ea')}** | {_metric(so['model'], 'ea')} | "
        f"{_metric(lo['baseline'], 'ea')} |",
        "",
        f"R² over all held-out predictions: L-SOAP IP {_metric(lo['model'], 'ip', 'r2')}, EA {_metric(lo['model'], 'ea', 'r2')}; "
        f"standard SOAP IP {_metric(so['model'], 'ip', 'r2')}, EA {_metric(so['model'], 'ea', 'r2')} (MAE in eV). Standard SOAP has "
        "one channel per element of the whole dataset, so a held-out compound's own element has an untrained "
        "channel; L-SOAP maps every element through its learnt embedding of elemental properties.",
        "",
        verdict,
        "",
        *([seed_spread_sentence(results["crossval_lsoap_seeds"]), ""]
          if len(results.get("crossval_lsoap_seeds", [])) > 1 else []),
        "![L-SOAP, leave one compound out](images/reference_crossval_lsoap.png)",
        "",
        "![standard SOAP, leave one compound out](images/reference_crossval_soap.png)",
        "",
        "## The binary model (compound-grouped split)",
        "",
        "`bandflow train --query n_cation_species=1 --split compound --parity parity.png`: one split, "
        f"test compounds {', '.join(results['binary_model']['split']['test'])}; validation "
        f"{', '.join(results['binary_model']['split']['val'])}.",
        "",
        "| subset | IP MAE | IP R² | EA MAE | EA R² |",
        "|---|---|---|---|---|",
    ]
    for subset, metrics in results["binary_model"]["metrics"].items():
        lines.append(f"| {subset} | {_metric(metrics, 'ip')} | {_metric(metrics, 'ip', 'r2')} | {_metric(metrics, 'ea')} | "
                     f"{_metric(metrics, 'ea', 'r2')} |")
    lines += ["", "![binary model parity](images/reference_binary_parity.png)", "", "## Binary → ternary transfer", ""]
    if "transfer" in results:
        lines += transfer_section(results["transfer"], results["ternary_compounds"])
    else:
        compounds = ", ".join(results["ternary_compounds"]) or "none"
        lines.append(f"Not yet measurable: the ternary campaign has {results['n_ternary']} surfaces "
                     f"(compounds: {compounds}); the curve needs at least {MIN_TERNARY_COMPOUNDS} ternary "
                     "compounds (some to fine-tune on, some to test on). The command is ready: "
                     "`bandflow transfer --from lsoap-ipea-v1 --plot transfer.png` (tested on synthetic data, "
                     "docs/ml.md).")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    exit_from_script(main)
