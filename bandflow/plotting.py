"""Figures: the band-alignment diagram of surfaces and the electrostatic-potential profile of a slab.

Matplotlib with the Agg backend (no display needed); the format follows the file suffix (.png or .svg).
Files are written to a temporary name and renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bandflow.isostructural import IsostructuralGroup
    from bandflow.potential import PotentialAnalysis

WATER_REDOX_LEVELS = {  # eV below the vacuum level at pH 0 (absolute SHE potential 4.44 V)
    r"H$^+$/H$_2$": -4.44,
    r"O$_2$/H$_2$O": -5.67,
}
SUFFIXES = {".png", ".svg"}
VALENCE_COLOR = "#4a7fb5"
CONDUCTION_COLOR = "#d9774a"


def formula_label(formula: str) -> str:
    """'SrTiO3' → 'SrTiO$_3$' (mathtext subscripts for the counts)."""
    return re.sub(r"(\d+(?:\.\d+)?)", r"$_{\1}$", formula)


def miller_label(miller_index: Sequence[int] | str) -> str:
    """(1, -1, 0) or '1-10' → '(1$\\bar{1}$0)'; indices beyond 9 are separated by commas."""
    if isinstance(miller_index, str):
        tokens = re.findall(r"-?\d", miller_index.strip("()[] ")) if "," not in miller_index else [
            t.strip() for t in miller_index.strip("()[] ").split(",")]
        try:
            indices = [int(t) for t in tokens]
        except ValueError as exc:
            raise BandflowError(f"bad Miller index {miller_index!r}") from exc
    else:
        try:
            indices = [int(i) for i in miller_index]
        except (TypeError, ValueError) as exc:
            raise BandflowError(f"bad Miller index {miller_index!r}") from exc
    if len(indices) not in (3, 4):
        raise BandflowError(f"a Miller index has 3 (or 4) integers; got {miller_index!r}")
    parts = [rf"$\bar{{{-i}}}$" if i < 0 else str(i) for i in indices]
    separator = "," if any(abs(i) > 9 for i in indices) else ""
    return "(" + separator.join(parts) + ")"


def plot_alignment(
    entries: Sequence[Mapping[str, Any]],
    path: str | Path,
    water_redox: bool = True,
    title: str | None = None,
) -> Path:
    """Band-alignment diagram (as in Kiyohara et al., JACS 2024, Fig. 2): one column per surface.

    Each entry is a dict with ``formula``, ``miller_index``, ``ip`` and ``ea`` (eV, positive) and optional
    ``ip_std``/``ea_std`` (error bars). The vacuum level is 0 eV; the valence band is filled below the VBM
    at −IP, the conduction band above the CBM at −EA up to the vacuum level, the gap left white.
    ``water_redox`` draws the H⁺/H₂ (−4.44 eV) and O₂/H₂O (−5.67 eV) levels as dashed lines.
    """
    rows = [_checked_entry(i, entry) for i, entry in enumerate(entries or [])]
    if not rows:
        raise BandflowError("plot_alignment: no surfaces to plot")
    path = check_figure_path(path)

    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    deepest = max(r["ip"] + (r["ip_std"] or 0.0) for r in rows)
    bottom = -math.ceil(deepest + 1.5)
    fig = Figure(figsize=(max(5.0, 0.9 * len(rows) + 1.8), 5.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.7
    for x, r in enumerate(rows):
        vbm, cbm = -r["ip"], -r["ea"]
        ax.bar(x, vbm - bottom, bottom=bottom, width=width, color=VALENCE_COLOR, edgecolor="black", linewidth=0.6)
        ax.bar(x, 0.0 - cbm, bottom=cbm, width=width, color=CONDUCTION_COLOR, edgecolor="black", linewidth=0.6)
        if r["ip_std"]:
            ax.errorbar(x, vbm, yerr=r["ip_std"], color="black", capsize=3, linewidth=1)
        if r["ea_std"]:
            ax.errorbar(x, cbm, yerr=r["ea_std"], color="black", capsize=3, linewidth=1)
        ax.text(x, vbm - 0.3, f"{r['ip']:.2f}", ha="center", va="top", fontsize=8, color="white")
        ax.text(x, cbm + 0.3, f"{r['ea']:.2f}", ha="center", va="bottom", fontsize=8)
    handles: list[Any] = [Patch(color=VALENCE_COLOR, label="valence band (VBM at −IP)"),
                          Patch(color=CONDUCTION_COLOR, label="conduction band (CBM at −EA)")]
    if water_redox:
        for (label, level), style in zip(WATER_REDOX_LEVELS.items(), ("--", "-."), strict=True):
            handles.append(ax.axhline(level, color="0.2", linestyle=style, linewidth=1.2, zorder=3,
                                      label=f"{label} ({level:.2f} eV)".replace("-", "−")))
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)), [f"{formula_label(r['formula'])}\n{miller_label(r['miller_index'])}" for r in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(bottom, 0.9)  # room for the EA label of a CBM near the vacuum level
    ax.set_ylabel("energy relative to vacuum level (eV)")
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_potential_profile(analysis: PotentialAnalysis, path: str | Path) -> Path:
    """Planar and macroscopic averages along the surface normal, with the vacuum plateaus (each level drawn
    over its plateau) and the slab-centre average marked."""
    import numpy as np

    z = np.asarray(getattr(analysis, "z", []), dtype=float)
    if z.size < 2:
        raise BandflowError("plot_potential_profile: the analysis has no profile to plot")
    path = check_figure_path(path)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(z, analysis.planar, color="0.55", linewidth=0.8, label="planar average")
    ax.plot(z, analysis.macroscopic, color=VALENCE_COLOR, linewidth=1.8, label="macroscopic average")
    length = z[1] * z.size
    for name, level, (z0, z1), color, style, width in (
        ("top", analysis.vacuum_level_top, analysis.vacuum_top_range, "tab:red", "-", 4.0),
        ("bottom", analysis.vacuum_level_bottom, analysis.vacuum_bottom_range, "black", ":", 2.0),
    ):
        # a plateau may wrap around the cell boundary: draw it in up to two pieces
        pieces = [(z0, z1)] if z0 <= z1 else [(z0, length), (0.0, z1)]
        for i, (a, b) in enumerate(pieces):
            ax.hlines(level, a, b, color=color, linestyle=style, linewidth=width,
                      label=f"vacuum plateau, {name} face: {level:.3f} eV" if i == 0 else None)
    ax.plot([analysis.slab_center], [analysis.slab_center_average], "o", color="black",
            label=f"slab centre: {analysis.slab_center_average:.3f} eV")
    ax.set_xlim(0, length)
    ax.set_xlabel(f"z along the surface normal (lattice vector {'abc'[analysis.axis]}) (Å)")
    ax.set_ylabel("electrostatic potential energy (eV)")
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return save_figure(fig, path)


def _checked_entry(index: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise BandflowError(f"plot_alignment: entry {index} is not a dict")
    missing = [key for key in ("formula", "miller_index", "ip", "ea") if key not in entry]
    if missing:
        raise BandflowError(f"plot_alignment: entry {index} lacks {', '.join(missing)}")
    row: dict[str, Any] = {"formula": str(entry["formula"]), "miller_index": entry["miller_index"]}
    for key in ("ip", "ea", "ip_std", "ea_std"):
        value = entry.get(key)
        if value is None and key.endswith("_std"):
            row[key] = None
            continue
        try:
            row[key] = float(value)
        except (TypeError, ValueError):
            row[key] = math.nan
        if not math.isfinite(row[key]) or (key.endswith("_std") and row[key] < 0):
            raise BandflowError(f"plot_alignment: entry {index} ({row['formula']}) has a bad {key}: {value!r}")
    if row["ea"] > row["ip"]:
        raise BandflowError(f"plot_alignment: entry {index} ({row['formula']}) has EA > IP (negative gap)")
    miller_label(row["miller_index"])  # validates
    return row


def check_figure_path(path: str | Path) -> Path:
    """``path`` if it can take a figure (.png or .svg in an existing folder), else ``BandflowError``."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise BandflowError(f"figure file must end in .png or .svg; got {path.name!r}")
    if not path.parent.is_dir():
        raise BandflowError(f"folder does not exist: {path.parent}")
    if path.is_dir():
        raise BandflowError(f"a folder, not a file: {path}")
    return path


def save_figure(fig: Figure, path: Path, dpi: int = 200) -> Path:
    """Render with the Agg canvas to a temporary file beside ``path``, then rename it into place."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with replaced_atomically(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format=path.suffix.lower().lstrip("."))
    return path


def plot_ip_ea_by_formula(docs: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None,
                          published: Mapping[str, Sequence[tuple[float | None, float | None]]] | None = None) -> Path:
    """IP and EA of every surface, one row per formula (a strip plot): the spread over orientations and
    terminations at a glance. Each doc needs ``formula``, ``ip`` and ``ea`` (eV); ``published`` maps a
    formula to published (IP, EA) pairs (either may be None), drawn as open diamonds on its row."""
    rows = [_checked_entry(i, doc) for i, doc in enumerate(docs or [])]
    if not rows:
        raise BandflowError("plot_ip_ea_by_formula: no surfaces to plot")
    path = check_figure_path(path)

    from matplotlib.figure import Figure

    formulas = sorted({r["formula"] for r in rows}, key=lambda f: -min(r["ip"] for r in rows if r["formula"] == f))
    fig = Figure(figsize=(6.5, 1.2 + 0.28 * len(formulas)), layout="constrained")
    ax = fig.add_subplot()
    for y, formula in enumerate(formulas):
        mine = [r for r in rows if r["formula"] == formula]
        ax.scatter([r["ip"] for r in mine], [y] * len(mine), s=14, color=VALENCE_COLOR, edgecolor="black",
                   linewidth=0.4, label="IP" if y == 0 else None, zorder=3)
        ax.scatter([r["ea"] for r in mine], [y] * len(mine), s=14, color=CONDUCTION_COLOR, edgecolor="black",
                   linewidth=0.4, label="EA" if y == 0 else None, zorder=3)
        for column, color in ((0, VALENCE_COLOR), (1, CONDUCTION_COLOR)):
            values = [pair[column] for pair in (published or {}).get(formula, []) if pair[column] is not None]
            ax.scatter(values, [y] * len(values), s=46, marker="D", facecolor="none", edgecolor=color,
                       linewidth=1.2, zorder=4, label=f"published {('IP', 'EA')[column]}" if values else None)
    ax.set_yticks(range(len(formulas)), [formula_label(f) for f in formulas])
    ax.set_ylim(-0.7, len(formulas) - 0.3)
    ax.set_xlabel("energy below the vacuum level (eV)")
    ax.grid(axis="x", color="0.9")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one legend entry per kind of marker
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_isostructural_cuts(groups: Sequence[IsostructuralGroup], path: str | Path,
                            labels: Mapping[str, str] | None = None) -> Path:
    """One panel per structure type: the IP of each shared cut (a line) in each of its bulks (the x axis,
    highest mean IP first). Parallel lines are cuts in the same order in every bulk; crossing lines are not.
    ``labels`` names the bulks (default: their names)."""
    if not groups:
        raise BandflowError("plot_isostructural_cuts: no structure type with shared cuts to plot")
    path = check_figure_path(path)

    from matplotlib.figure import Figure

    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)
    fig = Figure(figsize=(2.6 * columns, 2.6 * rows + 0.4), layout="constrained")
    for index, group in enumerate(groups):
        ax = fig.add_subplot(rows, columns, index + 1)
        bulks = sorted(group.bulks, key=lambda b: -sum(docs[b].ip for _, docs in group.cuts))
        for _, docs in group.cuts:
            ax.plot(range(len(bulks)), [docs[b].ip for b in bulks], color=VALENCE_COLOR, alpha=0.6,
                    marker="o", markersize=3, linewidth=1)
        ax.set_xticks(range(len(bulks)), [formula_label((labels or {}).get(b, b)) for b in bulks], fontsize=8)
        ax.set_xlim(-0.3, len(bulks) - 0.7)
        same, compared = group.concordant_pairs()
        ax.set_title(f"{group.spacegroup} {group.prototype}: {len(group.cuts)} cuts\n{same}/{compared} pairs in order",
                     fontsize=8)
        ax.grid(axis="y", color="0.9")
        if index % columns == 0:
            ax.set_ylabel("IP (eV)")
    fig.suptitle("The same cut in isostructural bulks (one line per cut)", fontsize=10)
    return save_figure(fig, path)
