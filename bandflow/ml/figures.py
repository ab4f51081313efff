"""Figures of the model: parity plot, per-atom importance of a slab (side view), transfer-learning curves.

Matplotlib ``Figure`` with the Agg canvas (no display); written to a temporary file and renamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bandflow.errors import BandflowError
from bandflow.plotting import check_figure_path, save_figure

MODEL_FIGURE_DPI = 150  # lighter than the dataset figures (200): model pages hold several of them

SUBSET_COLORS = {"train": "#9aa5b1", "val": "#4a7fb5", "test": "#d9774a"}


def _diagonal(ax: Any, values: Sequence[np.ndarray]) -> None:
    """The y = x line and equal axis limits spanning ``values`` (NaN ignored), with 5 % padding."""
    both = np.concatenate([np.asarray(v, float) for v in values])
    low, high = float(np.nanmin(both)), float(np.nanmax(both))
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", lw=0.8)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)


def parity_plot(predictions: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """Predicted vs reference IP and EA per subset (``TrainResult.predictions``)."""
    from matplotlib.figure import Figure

    path = check_figure_path(path)
    fig = Figure(figsize=(9, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, target, label in zip(axes, ("ip", "ea"), ("IP", "EA"), strict=True):
        values = []
        for subset, rows in predictions.items():
            true, predicted = np.asarray(rows[f"{target}_true"]), np.asarray(rows[target])
            if not len(true):
                continue
            mae = float(np.abs(predicted - true).mean())
            ax.errorbar(true, predicted, yerr=np.asarray(rows.get(f"{target}_std", np.zeros_like(true))), fmt="o",
                        ms=4, alpha=0.8, color=SUBSET_COLORS.get(subset), label=f"{subset} (MAE {mae:.2f} eV)")
            values += [true, predicted]
        if values:
            _diagonal(ax, values)
        ax.set_xlabel(f"reference {label} (eV)")
        ax.set_ylabel(f"predicted {label} (eV)")
        ax.set_aspect("equal")
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=MODEL_FIGURE_DPI)


def importance_plot(importances: Mapping[str, Any], path: str | Path, quantity: str = "alpha_ip") -> Path:
    """Side view of a slab (in-plane axis a horizontal, surface normal vertical) coloured by ``quantity``,
    one of the per-atom entries of ``bandflow.ml.importance.atom_importances``."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from pymatgen.core import Element

    path = check_figure_path(path)
    atoms = importances.get("atoms") or []
    if not atoms:
        raise BandflowError("no atoms to draw")
    if quantity not in atoms[0]:
        choices = sorted(k for k, v in atoms[0].items() if isinstance(v, float))
        raise BandflowError(f"unknown importance {quantity!r}; choose one of {', '.join(choices)}")
    period = float(importances.get("a_length") or 0.0)
    repeats = int(np.ceil(10.0 / period)) if period > 0 else 1  # periodic images along a: a ≥ 10 Å wide picture
    shifts = np.repeat(np.arange(repeats) * period, len(atoms))
    horizontal = np.tile([a["in_plane"] for a in atoms], repeats) + shifts
    height = np.tile([a["height"] for a in atoms], repeats)
    value = np.tile([a[quantity] for a in atoms], repeats).astype(float)
    elements = [a["element"] for a in atoms] * repeats
    radius = np.array([Element(e).atomic_radius or 1.0 for e in elements], dtype=float)
    order = np.argsort(np.tile([a["depth_into_page"] for a in atoms], repeats))[::-1]  # far atoms drawn first
    high = float(value.max()) if value.max() > value.min() else float(value.min()) + 1e-9
    norm = Normalize(vmin=float(value.min()), vmax=high)
    width, tall = float(np.ptp(horizontal)) + 3.0, float(np.ptp(height)) + 3.0
    scale = min(9.0 / width, 7.0 / tall, 0.6)  # inches per Å
    fig = Figure(figsize=(width * scale + 1.8, tall * scale + 1.0), layout="constrained")
    ax = fig.subplots()
    points_per_angstrom = 72.0 * scale * 0.9  # balls of half the atomic radius (diameter = radius)
    ax.scatter(horizontal[order], height[order], s=(radius[order] * points_per_angstrom) ** 2, c=value[order],
               cmap=colormaps["viridis"], norm=norm, edgecolors="black", linewidths=0.5)
    for h, z, element in zip(horizontal, height, elements, strict=True):
        ax.annotate(element, (h, z), ha="center", va="center", fontsize=6, color="white")
    ax.set_aspect("equal")
    ax.set_xlim(horizontal.min() - 1.5, horizontal.max() + 1.5)
    ax.set_ylim(height.min() - 1.5, height.max() + 1.5)
    ax.set_xlabel("along a (Å)")
    ax.set_ylabel("height (Å)")
    label = {"alpha_ip": "attention α (IP)", "alpha_gap": "attention α (gap)", "alpha_h_ip": "α·h (IP, eV)",
             "alpha_h_gap": "α·h (gap, eV)", "alpha_h_ea": "α·h (EA, eV)"}.get(quantity, quantity)
    fig.colorbar(ax.collections[0], ax=ax, label=label, shrink=0.8)
    name = importances.get("formula", "")
    ax.set_title(f"{name}\nIP {importances['ip']:.2f} eV, EA {importances['ea']:.2f} eV", fontsize=8)
    return save_figure(fig, path, dpi=MODEL_FIGURE_DPI)


def transfer_plot(curves: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Test MAE of IP and EA against the fraction of target training data, one line per method
    (``bandflow.ml.transfer.transfer_curves(...)["curves"]``); with repeats, the line joins their means
    and a bar spans their range (methods side by side, so that the bars do not hide each other)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    path = check_figure_path(path)
    fig = Figure(figsize=(9, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, target in zip(axes, ("ip", "ea"), strict=True):
        for i, curve in enumerate(curves):
            points = curve["points"]
            fractions = np.array([p["fraction"] for p in points])
            maes = np.array([p["test"][target]["mae"] for p in points], float)
            if all(len(p.get("test_each", ())) > 1 for p in points):
                shift = 1 + 0.02 * (i - (len(curves) - 1) / 2)  # the x axis is logarithmic: shift by a factor
                low, high = (np.array(v, float) for v in zip(*(p["test_range"][target] for p in points), strict=True))
                ax.errorbar(fractions * shift, maes, yerr=[maes - low, high - maes], marker="o", ms=4, capsize=2,
                            color=f"C{i}", label=curve["method"])
            else:
                ax.plot(fractions, maes, marker="o", color=f"C{i}", label=curve["method"])
        ax.set_xscale("log")
        ax.set_xticks(sorted({p["fraction"] for c in curves for p in c["points"]}))
        ax.xaxis.set_major_formatter("{x:.0%}")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("share of the target training pool")
        ax.set_ylabel(f"test MAE {target.upper()} (eV)")
        ax.set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    if title:
        fig.suptitle(title + (" (mean and range over the repeats)" if any(
            len(p.get("test_each", ())) > 1 for c in curves for p in c["points"]) else ""))
    return save_figure(fig, path, dpi=MODEL_FIGURE_DPI)


def crossval_plot(result: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Out-of-compound predictions against DFT, coloured by held-out compound, with the MAE of the model
    and of the training-mean baseline (``bandflow.ml.crossval.compound_cross_validation``)."""
    from matplotlib.figure import Figure

    path = check_figure_path(path)
    rows = result["surfaces"]
    compounds = sorted({r["compound"] for r in rows})
    colors = {c: f"C{i % 10}" for i, c in enumerate(compounds)}
    markers = {c: "osD^v<>ph*"[(i // 10) % 10] for i, c in enumerate(compounds)}
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, target in zip(axes, ("ip", "ea"), strict=True):
        true = np.array([r[f"{target}_true"] for r in rows])
        predicted = np.array([r[target] for r in rows])
        for compound in compounds:
            mine = [i for i, r in enumerate(rows) if r["compound"] == compound]
            ax.errorbar(true[mine], predicted[mine], yerr=[rows[i][f"{target}_std"] for i in mine], fmt=markers[compound],
                        ms=4, alpha=0.85, color=colors[compound], label=compound)
        _diagonal(ax, [true, predicted])
        ax.set_aspect("equal")
        model, baseline = result["overall"]["model"][target]["mae"], result["overall"]["baseline"][target]["mae"]
        ax.set_title(f"{target.upper()}: MAE {model:.2f} eV (training-mean baseline {baseline:.2f} eV)", fontsize=9)
        ax.set_xlabel(f"DFT {target.upper()} (eV)")
        ax.set_ylabel(f"predicted {target.upper()}, compound held out (eV)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), title="held-out compound",
                   title_fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=MODEL_FIGURE_DPI)
