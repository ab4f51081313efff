"""Turn the outputs of the bulk and slab jobs into one surface document (IP, EA and provenance)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from pymatgen.core import Structure

from bandflow import __version__
from bandflow.errors import BandflowError
from bandflow.potential import (
    IDEAL_PERIOD_TOLERANCE,
    align,
    axis_index,
    centre_average,
    detect_period,
    macroscopic_average,
)
from bandflow.schemas import SurfaceDoc


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a job output that may be a pydantic model, a dataclass or a plain dict."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _as_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return dict(vars(obj))


def code_versions(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """Versions of bandflow and the Python packages that shape the numbers."""
    versions = {"bandflow": __version__}
    for package in ("pymatgen", "atomate2", "jobflow", "chgnet", "torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    versions.update({k: v for k, v in (extra or {}).items() if v})
    return versions


def run_seconds(bulk_edges: Any, potential_output: Any) -> dict[str, float]:
    """Wall-clock seconds of the engine steps, where their outputs record them: ``bulk_edges`` (the whole bulk
    job, shared by every surface of that bulk) and ``slab_potential``. Kept in the document so the time per
    surface travels with the data (the job store that also knows it stays on the machine that ran it)."""
    bulk = _field(bulk_edges, "wall_time")
    if isinstance(bulk, dict):
        # this attempt's time plus what the runs it reused from an earlier attempt cost (bandflow.cp2k.reuse)
        total = bulk.get("total")
        bulk = total + (bulk.get("reused") or 0.0) if isinstance(total, int | float) else None
    slab = _field(potential_output, "wall_time")
    return {step: float(value) for step, value in (("bulk_edges", bulk), ("slab_potential", slab))
            if isinstance(value, int | float) and not isinstance(value, bool)}


def ideal_period_centre(analysis: dict, ideal_slab: dict | Structure | None) -> dict:
    """``analysis`` (a slab potential's ``PotentialAnalysis.to_dict(profile=True)``) with its slab-centre
    average re-taken over the period of the ideal slab.

    The potential step detects the macroscopic-average period from the relaxed atoms in its cube, with a
    0.3 Å tolerance. Relaxation can move a thin slab's atoms past it, and the detection then returns a wrong
    period: MgTiO3 (001) got 7.78 Å, the slab's own thickness, instead of c/3 = 4.63 Å, and a centre average
    1.5 eV off. The ideal slab is cut from the bulk, so its atoms sit on the bulk repeats, and the frozen
    centre of the relaxed slab keeps them: its period (:data:`IDEAL_PERIOD_TOLERANCE`) is the one to
    average over. A period given by the user (``period_source: given``), a double period, or an analysis
    without its profile (``z``, ``planar``, ``slab_center``) is returned unchanged, and so is one whose
    ideal slab shows no repeat at that tolerance (a bulk slightly off its symmetry), with the reason in
    ``ideal_period_error``. The re-taken one records ``period_source: ideal slab``, the macroscopic average
    over the new period, and the relaxed-atom values as ``relaxed_atoms_period`` and
    ``relaxed_atoms_center_average``.
    """
    if (ideal_slab is None or analysis.get("period_source") == "given"
            or any(key not in analysis for key in ("z", "planar", "slab_center"))
            or isinstance(analysis.get("period"), list | tuple)):
        return analysis
    slab = ideal_slab if isinstance(ideal_slab, Structure) else Structure.from_dict(ideal_slab)
    try:
        period = detect_period(slab, axis_index(analysis.get("axis", 2)), tolerance=IDEAL_PERIOD_TOLERANCE)
    except BandflowError as exc:
        return {**analysis, "ideal_period_error": str(exc)}
    average, variation = centre_average(analysis["z"], analysis["planar"], analysis["slab_center"], period)
    vacuum = 0.5 * (float(analysis["vacuum_level_top"]) + float(analysis["vacuum_level_bottom"]))
    relaxed_atoms = {}
    if analysis.get("period_source", "atoms") == "atoms" and isinstance(analysis.get("period"), int | float):
        relaxed_atoms = {"relaxed_atoms_period": analysis["period"],
                         "relaxed_atoms_center_average": analysis["slab_center_average"]}
    retaken = {**analysis, "period": period, "period_source": "ideal slab", "slab_center_average": average,
               "center_variation": variation, "potential_step": vacuum - average, **relaxed_atoms}
    if "macroscopic" in analysis:  # the profile shown beside the numbers follows the period they used
        retaken["macroscopic"] = macroscopic_average(np.asarray(analysis["z"], dtype=float),
                                                     np.asarray(analysis["planar"], dtype=float), period).tolist()
    return retaken


def stored_bulk_edges(doc: SurfaceDoc) -> dict[str, Any]:
    """The bulk band edges a surface document holds, as :func:`surface_document` takes them: to align a new
    slab potential with them without running the bulk again."""
    extra = doc.extra or {}
    return {**(extra.get("bulk") or {}), "vbm": doc.bulk_vbm, "cbm": doc.bulk_cbm,
            "bulk_average_potential": doc.bulk_average_potential,
            "wall_time": (extra.get("wall_time") or {}).get("bulk_edges")}


def surface_document(
    surface: dict,
    protocol: dict,
    bulk_edges: Any,
    relaxed: Structure | dict | None,
    potential_output: Any,
) -> SurfaceDoc:
    """The stored document of one (surface, protocol); ``state='failed'`` when an input is missing.

    ``surface`` may carry ``slab_period_given`` (the slab potential's maker was given its period): the
    analysis's period is then kept, not re-taken over the ideal slab's (:func:`ideal_period_centre`).
    """
    surface = dict(surface)
    period_given = bool(surface.pop("slab_period_given", False))
    now = datetime.now(UTC)
    missing = [name for name, value in (("bulk band edges", bulk_edges), ("slab relaxation", relaxed),
                                         ("slab potential", potential_output)) if value is None]
    base = dict(
        **surface,
        protocol=protocol["name"],
        engine=protocol["engine"],
        functional_bulk=protocol["bulk_functional"],
        functional_slab=protocol["slab_functional"],
        created_at=now,
        updated_at=now,
        source="bandflow",
    )
    run_functional = _field(bulk_edges, "functional")
    if run_functional:  # what the bulk run used (e.g. DDH), over the protocol's default
        base["functional_bulk"] = str(run_functional)
    if missing:
        return SurfaceDoc(
            **base, state="failed", failure_reason=f"upstream step failed: {', '.join(missing)}",
            code_versions=code_versions(),
        )
    if isinstance(relaxed, Structure):
        relaxed = relaxed.as_dict()
    analysis = _as_dict(_field(potential_output, "potential", potential_output))
    if not period_given:
        analysis = ideal_period_centre(analysis, surface.get("structure_unrelaxed"))
    vbm, cbm = float(_field(bulk_edges, "vbm")), float(_field(bulk_edges, "cbm"))
    bulk_average = float(_field(bulk_edges, "bulk_average_potential", 0.0) or 0.0)
    top, bottom = float(analysis["vacuum_level_top"]), float(analysis["vacuum_level_bottom"])
    centre = float(analysis["slab_center_average"])
    vacuum = 0.5 * (top + bottom)
    ip, ea = align(vacuum, centre, vbm, cbm, bulk_average)
    reason = None
    if not (math.isfinite(ip) and math.isfinite(ea)) or ip <= 0 or cbm <= vbm:
        reason = f"unphysical alignment (IP {ip:.3g} eV, EA {ea:.3g} eV, gap {cbm - vbm:.3g} eV)"
    return SurfaceDoc(
        **base,
        structure_relaxed=relaxed,
        bulk_vbm=vbm,
        bulk_cbm=cbm if cbm >= vbm else None,
        bulk_gap=max(cbm - vbm, 0.0),
        bulk_average_potential=bulk_average,
        vacuum_level_top=top,
        vacuum_level_bottom=bottom,
        slab_center_average=centre,
        potential_step=vacuum - centre,
        period=analysis.get("period") if isinstance(analysis.get("period"), int | float) else None,
        period_source=analysis.get("period_source"),
        center_variation=analysis.get("center_variation"),
        ip=None if reason else ip,
        ea=None if reason else ea,
        state="failed" if reason else "successful",
        failure_reason=reason,
        code_versions=code_versions(
            {f"{protocol['engine']} (bulk)": _field(bulk_edges, "code_version"),
             f"{protocol['engine']} (slab)": _field(potential_output, "code_version")}
        ),
        extra={
            "bulk": {k: v for k, v in _as_dict(bulk_edges).items() if isinstance(v, (int, float, str))},
            "wall_time": run_seconds(bulk_edges, potential_output),
            "profile": {k: analysis[k] for k in ("z", "planar", "macroscopic", "slab_center") if k in analysis},
            **({"relaxed_atoms": {"period": analysis["relaxed_atoms_period"],
                                  "slab_center_average": analysis["relaxed_atoms_center_average"]}}
               if "relaxed_atoms_period" in analysis else {}),
        },
    )
