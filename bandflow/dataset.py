"""Reference datasets: stored surfaces exported as gzip-compressed JSON lines, and their datasheet numbers.

One line per (surface, protocol): the full :class:`~bandflow.schemas.SurfaceDoc` in JSON (unrelaxed and
relaxed structures as pymatgen dicts, IP, EA, bulk edges, potential step, protocol, code versions). The
same format is what ``bandflow import`` reads back.
"""

from __future__ import annotations

import gzip
import io
import json
import statistics
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymatgen.core import Composition

from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically
from bandflow.isostructural import (
    FACE_ATOMS,
    MIN_SHARED_CUTS,
    IsostructuralGroup,
    isostructural_groups,
    isostructural_markdown,
)
from bandflow.protocols import MAX_GAMMA_SAMPLING_ERROR
from bandflow.schemas import SurfaceDoc

#: The targets of bandflow's own reference campaign (data/reference/): (surfaces, formulas) of binary and of
#: ternary oxides. The datasheet and the model page both say whether they are met.
REFERENCE_TARGETS = {"binary": (300, 25), "ternary": (80, 10)}


def reference_targets_met(counts: dict[str, tuple[int, int]]) -> dict[str, bool]:
    """Per kind of :data:`REFERENCE_TARGETS`, whether ``counts[kind]`` (surfaces, formulas) reaches it."""
    return {kind: counts[kind][0] >= n and counts[kind][1] >= f for kind, (n, f) in REFERENCE_TARGETS.items()}


#: Values outside these ranges are flagged for a second look (eV).
IP_RANGE = (3.0, 12.0)
EA_MIN = -1.0
#: A Γ-only hybrid whose gap the PBE k-point correction moves by more than this (eV) sampled too few k-points
#: for the additive correction to hold (CaO: 8-atom cell +1.76 eV, VBM 1.24 eV below the 54-atom cell's).
MAX_GAP_K_CORRECTION = 0.5
#: eV: a macroscopic average that varies more than this within half a period of the slab centre has no
#: bulk-like interior to align to (the MgTiO3 (001) slabs, 20 atoms: 0.86 eV).
MAX_CENTRE_VARIATION = 0.5
#: A period detected from relaxed atoms this far (relative) from a whole multiple of the ideal slab's one
#: leaves part of the interlayer ripple in the centre average.
MAX_PERIOD_MISMATCH = 0.02
#: eV: a surface whose IP is this far from the median of its bulk's surfaces (at least MIN_SURFACES_FOR_MEDIAN
#: of them) has a surface dipole of its own; the flag gives its broken-bond density beside the others', which
#: tells a cut through molecular units (Sb2O3 (111) t1: +2.1 eV, 5.6 bonds/nm² against 0–3.2) from a
#: termination whose outermost cations differ (MgSiO3 (001) t0: −3.8 eV at the same density as t1).
MAX_IP_FROM_MEDIAN = 2.0
MIN_SURFACES_FOR_MEDIAN = 3
#: Å: outermost cation and oxygen closer than this along the normal end a slab in one plane
FLAT_TERMINATION = 0.05


class PublishedValue(BaseModel):
    """A published IP and/or EA of one formula (eV), or a remark on it, with its reference."""

    model_config = ConfigDict(extra="forbid")

    ip: float | None = None
    ea: float | None = None
    gap: float | None = Field(None, description="Published band gap (eV), beside the bulk step's.")
    note: str = ""
    source: str = Field(min_length=1)


def load_literature(path: Path | str) -> dict[str, list[PublishedValue]]:
    """Published values per reduced formula from a YAML file with ``sources`` (key → reference) and
    ``values`` (formula → entries whose ``source`` is a key of ``sources``); see data/reference/literature.yaml."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BandflowError(f"{path}: cannot read published values ({exc})") from None
    if not isinstance(data, dict) or set(data) - {"sources", "values"}:
        raise BandflowError(f"{path}: expected the keys 'sources' and 'values'")
    sources = data.get("sources") or {}
    literature: dict[str, list[PublishedValue]] = {}
    for formula, entries in (data.get("values") or {}).items():
        try:
            key = Composition(formula).reduced_formula  # keyed like the documents (BiVO4 -> VBiO4)
            for entry in entries:
                if entry.get("source") not in sources:
                    raise ValueError(f"source {entry.get('source')!r} is not in 'sources'")
                literature.setdefault(key, []).append(PublishedValue(**{**entry, "source": sources[entry["source"]]}))
        except (ValueError, TypeError, AttributeError) as exc:
            raise BandflowError(f"{path}: {formula}: {str(exc).splitlines()[0]}") from None
    return literature


#: The part of a potential profile that re-taking an alignment needs (``bandflow.alignment``); the
#: macroscopic average follows from it and a period.
PLANAR_PROFILE = ("z", "planar", "slab_center")


def export_surfaces(docs: Iterable[SurfaceDoc], path: Path | str,
                    keep_profiles: bool | tuple[str, ...] = False) -> int:
    """Write ``docs`` to ``path`` (``.jsonl.gz`` or ``.jsonl``) atomically; returns the number written.

    ``keep_profiles``: keep the potential profile (``extra.profile``), all of it (True) or these keys of it.
    """
    return write_json_lines(surface_records(docs, keep_profiles), path)


def surface_records(docs: Iterable[SurfaceDoc], keep_profiles: bool | tuple[str, ...] = False) -> Iterator[dict]:
    """``docs`` as the JSON objects of the ``bandflow export`` format (see :func:`export_surfaces`)."""
    for doc in docs:
        data = doc.model_dump(mode="json")
        extra = data.get("extra", {})
        if not keep_profiles:
            extra.pop("profile", None)
        elif not isinstance(keep_profiles, bool) and isinstance(extra.get("profile"), dict):
            extra["profile"] = {k: v for k, v in extra["profile"].items() if k in keep_profiles}
        yield data


def write_json_lines(records: Iterable[dict], path: Path | str) -> int:
    """Write one JSON object per line to ``path`` (gzip when it ends in ``.gz``), keys sorted, atomically:
    a failure leaves any earlier file as it was. Returns the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with replaced_atomically(path) as tmp, _text_writer(tmp, gz=path.suffix == ".gz") as handle:
        for data in records:
            handle.write(json.dumps(data, sort_keys=True) + "\n")
            n += 1
    return n


@contextmanager
def _text_writer(path: Path, gz: bool) -> Iterator[IO[str]]:
    """A UTF-8 text file for writing; gzip without name or timestamp in its header, so equal data give
    equal bytes (a re-export of an unchanged store leaves git with nothing to commit)."""
    if not gz:
        with open(path, "w", encoding="utf-8") as handle:
            yield handle
        return
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed, \
            io.TextIOWrapper(packed, encoding="utf-8") as handle:
        yield handle


def read_json_lines(path: Path | str, what: str = "file") -> list[tuple[int, str]]:
    """The non-blank lines of a JSON-lines file (gzip when it ends in ``.gz``) with their 1-based numbers,
    read whole before any is used; a missing or unreadable file raises one :class:`BandflowError`
    (``what`` names the kind of file in it)."""
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"{what} not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return [(number, line) for number, line in enumerate(handle, 1) if line.strip()]
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        raise BandflowError(f"cannot read {path}: {exc}") from None


def first_problem(exc: ValidationError) -> str:
    """A validation error in one line: the first problem's field and message, and how many more there are."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def read_surfaces(path: Path | str) -> list[SurfaceDoc]:
    """Read an exported dataset back (every line validated)."""
    docs = []
    for number, line in read_json_lines(path, "dataset"):
        try:
            docs.append(SurfaceDoc.model_validate_json(line))
        except ValidationError as exc:
            raise BandflowError(f"{path}:{number}: not a valid surface document ({first_problem(exc)})") from None
    return docs


def outlier_reason(doc: SurfaceDoc, siblings: Sequence[SurfaceDoc] = ()) -> str | None:
    """Why a computed surface deserves a second look (reasons joined by "; "), or None.

    ``siblings``: the successful surfaces of the same bulk (``doc`` may be among them), for the IP spread.
    """
    return "; ".join(reason for _, reason in outlier_reasons(doc, siblings)) or None


def outlier_reasons(doc: SurfaceDoc, siblings: Sequence[SurfaceDoc] = ()) -> list[tuple[bool, str]]:
    """The reasons of :func:`outlier_reason`, in its order, each with whether it concerns the bulk's band
    edges (shared by all surfaces of the bulk) rather than the surface itself."""
    reasons = []
    if doc.ip is not None and not IP_RANGE[0] <= doc.ip <= IP_RANGE[1]:
        reasons.append((False, f"IP {doc.ip:.2f} eV outside {IP_RANGE[0]}–{IP_RANGE[1]} eV"))
    if doc.ea is not None and doc.ea < EA_MIN:
        reasons.append((False, f"EA {doc.ea:.2f} eV below {EA_MIN} eV"))
    spread = ip_spread_issue(doc, siblings)
    if reasons and not spread and (termination := termination_note(doc)):  # the spread issue gives it too
        reasons.append((False, termination))
    if issue := bulk_edges_issue(doc):
        reasons.append((True, issue))
    if issue := slab_centre_issue(doc):
        reasons.append((False, issue))
    if spread:
        reasons.append((False, spread))
    return reasons


def termination_note(doc: SurfaceDoc) -> str | None:
    """Which species ends the relaxed slab of ``doc``, as a reading of a low or high IP/EA: an outermost
    cation layer is a surface dipole that lowers the vacuum level (BeAl2O4 (001), a 3-fold Al 0.09 Å over the
    O: IP 6.31 eV; its O-terminated (011): 9.30 eV). None for a slab without a cation or without oxygen."""
    from pymatgen.core import Structure

    from bandflow.coordination import outermost_cation_height

    try:
        height = outermost_cation_height(Structure.from_dict(doc.structure_relaxed or doc.structure_unrelaxed))
    except BandflowError:
        return None
    ends = ("a cation ends" if height > FLAT_TERMINATION else "oxygen ends" if height < -FLAT_TERMINATION
            else "cations and oxygen end")
    slab = "relaxed" if doc.structure_relaxed else "unrelaxed"
    return f"{ends} the {slab} slab (outermost cation {height:+.2f} Å over the outermost O)"


def ip_spread_issue(doc: SurfaceDoc, siblings: Sequence[SurfaceDoc]) -> str | None:
    """Why the IP of ``doc`` stands apart from those of the other surfaces of its bulk, or None."""
    others = [d for d in siblings if d.surface_id != doc.surface_id and d.ip is not None]
    if doc.ip is None or len(others) + 1 < MIN_SURFACES_FOR_MEDIAN:
        return None
    median = statistics.median([doc.ip] + [d.ip for d in others])
    if abs(doc.ip - median) <= MAX_IP_FROM_MEDIAN:
        return None
    side = "above" if doc.ip > median else "below"
    reason = (f"IP {doc.ip:.2f} eV, {abs(doc.ip - median):.2f} eV {side} the median of its bulk's {len(others) + 1} "
              f"surfaces ({median:.2f} eV; more than {MAX_IP_FROM_MEDIAN} eV): a surface dipole of its own")
    from pymatgen.core import Structure

    from bandflow.bulk import load_bulk
    from bandflow.coordination import broken_bond_densities, outermost_cation_height

    try:  # a datasheet is written whatever the slabs: a descriptor that cannot be taken is left out
        relaxed = [d.structure_relaxed or d.structure_unrelaxed for d in [doc, *others]]
        height, *heights = [outermost_cation_height(Structure.from_dict(s)) for s in relaxed]
        reason += (f"; its outermost cation lies {height:+.2f} Å over the outermost O (relaxed; the others "
                   f"{min(heights):+.2f} to {max(heights):+.2f} Å)")
    except BandflowError:  # a slab without oxygen
        pass
    try:  # the siblings are cuts of the same bulk
        own, *theirs = broken_bond_densities([Structure.from_dict(d.structure_unrelaxed) for d in [doc, *others]],
                                             load_bulk(doc.bulk_name).structure)
    except BandflowError:  # a bulk outside the library, or a slab that is not a cut of it
        return reason
    return (f"{reason}; its unrelaxed cut breaks {own:.1f} cation–O bonds per nm² of face, the others "
            f"{min(theirs):.1f}–{max(theirs):.1f}")


def slab_centre_issue(doc: SurfaceDoc) -> str | None:
    """Why the slab-centre average of ``doc`` is doubtful, or None.

    Any document with a ``center_variation`` is judged by it. One not aligned over the ideal slab's period
    is also judged by how far its period (``period``, or else detected again from its relaxed atoms, as the
    potential step did) is from a whole multiple of the ideal slab's.
    """
    from pymatgen.core import Structure

    from bandflow.potential import IDEAL_PERIOD_TOLERANCE, detect_period

    reasons = []
    if doc.center_variation is not None and doc.center_variation > MAX_CENTRE_VARIATION:
        reasons.append(f"the macroscopic average varies by {doc.center_variation:.2f} eV within half a period "
                       f"of the slab centre (more than {MAX_CENTRE_VARIATION} eV: no bulk-like interior)")
    if doc.period_source in (None, "atoms") and doc.structure_relaxed:
        try:
            used = doc.period or detect_period(Structure.from_dict(doc.structure_relaxed))
            ideal = detect_period(Structure.from_dict(doc.structure_unrelaxed), tolerance=IDEAL_PERIOD_TOLERANCE)
        except BandflowError:
            used = ideal = None
        if used and ideal:
            multiple = max(round(used / ideal), 1)
            if abs(used / ideal - multiple) / multiple > MAX_PERIOD_MISMATCH:
                has_profile = "planar" in ((doc.extra or {}).get("profile") or {})
                reasons.append(f"centre average over {used:.2f} Å, the period of the relaxed atoms; the ideal "
                               f"slab's is {ideal:.2f} Å" + ("" if has_profile else
                                                               " (not re-taken: the document has no potential profile)"))
    return "; ".join(reasons) or None


def bulk_edges_issue(doc: SurfaceDoc) -> str | None:
    """Why the bulk band edges of ``doc`` (from a Γ-only hybrid cell) are not converged, or None."""
    reasons = []
    if (shift := k_correction_of_gap(doc)) is not None and abs(shift) > MAX_GAP_K_CORRECTION:
        reasons.append(f"the PBE k-point correction moved the bulk gap by {shift:+.2f} eV (more than "
                       f"{MAX_GAP_K_CORRECTION} eV): the hybrid gap rests on a large PBE correction, either because "
                       "the band edges lie at k-points that do not fold onto Γ of the hybrid cell or because "
                       "that cell is too small")
    error = (doc.extra.get("bulk") or {}).get("gamma_sampling_error")
    if isinstance(error, int | float) and abs(error) > MAX_GAMMA_SAMPLING_ERROR:
        reasons.append(f"the Γ-only PBE energy of the bulk hybrid cell is {1000 * abs(error):.1f} meV/atom off the "
                       f"k-mesh one (more than {1000 * MAX_GAMMA_SAMPLING_ERROR:.0f}): its band edges are not converged")
    return "; ".join(reasons) or None


def k_correction_of_gap(doc: SurfaceDoc) -> float | None:
    """Gap after minus gap before the k-point correction of a Γ-only bulk hybrid (eV), from the bulk output
    kept in ``extra["bulk"]``; None if it is not recorded there."""
    bulk = doc.extra.get("bulk") or {}
    if not {"gap", "vbm_gamma", "cbm_gamma"} <= set(bulk):
        return None
    return bulk["gap"] - (bulk["cbm_gamma"] - bulk["vbm_gamma"])


def bulk_labels(docs: Iterable[SurfaceDoc]) -> dict[str, str]:
    """A row label per bulk name: the formula as the bulk's name spells it (BiVO4, where the documents'
    reduced formula is pymatgen's VBiO4), or the whole bulk name where the formula has several bulks among
    ``docs`` (TiO2-anatase, TiO2-rutile)."""
    formula_of = {doc.bulk_name: doc.formula for doc in docs}
    bulks_of = Counter(formula_of.values())
    labels = {}
    for bulk, formula in formula_of.items():
        spelled = bulk.split("-")[0]
        try:
            same = Composition(spelled).reduced_formula == formula
        except (ValueError, KeyError):  # a bulk name that is not a formula
            same = False
        labels[bulk] = bulk if bulks_of[formula] > 1 else spelled if same else formula
    return labels


def dataset_summary(docs: list[SurfaceDoc]) -> dict:
    """Counts, value ranges and per-formula statistics for a datasheet."""
    good = [d for d in docs if d.state == "successful"]
    by_bulk: dict[str, list[SurfaceDoc]] = defaultdict(list)  # polymorphs apart (TiO2 rutile and anatase)
    for doc in good:
        by_bulk[doc.bulk_name].append(doc)
    labels = bulk_labels(good)
    reasons = {d.surface_id: outlier_reasons(d, by_bulk[d.bulk_name]) for d in good}  # once: some parse slabs

    def spread(values: list[float]) -> dict:
        return {"min": min(values), "max": max(values), "mean": statistics.fmean(values)} if values else {}

    return {
        "n_successful": len(good),
        "n_failed": len(docs) - len(good),
        "n_binary": sum(d.n_cation_species == 1 for d in good),
        "n_ternary": sum((d.n_cation_species or 0) >= 2 for d in good),
        "n_formulas_binary": len({d.formula for d in good if d.n_cation_species == 1}),
        "n_formulas_ternary": len({d.formula for d in good if (d.n_cation_species or 0) >= 2}),
        "ip": spread([d.ip for d in good]),
        "ea": spread([d.ea for d in good]),
        "gap": spread([d.bulk_gap for d in good if d.bulk_gap is not None]),
        "protocols": dict(Counter(d.protocol for d in good)),
        # one row per bulk, named by its formula unless the formula has polymorphs here (TiO2-rutile, -anatase)
        "per_formula": {
            labels[bulk]: {
                "formula": items[0].formula, "n": len(items), "ip": spread([d.ip for d in items]),
                "ea": spread([d.ea for d in items]), "gap": items[0].bulk_gap, "bulk_cell": bulk_cell(items[0])}
            for bulk, items in sorted(by_bulk.items(), key=lambda kv: (kv[1][0].formula, kv[0]))
        },
        "outliers": [{"surface_id": d.surface_id, "reason": "; ".join(r for _, r in reasons[d.surface_id])}
                     for d in good if reasons[d.surface_id]],
        # the same flags grouped for reading: a bulk's band-edge issue once, then what is each surface's own
        "bulk_flags": [{"bulk": labels[bulk], "n": n, "reason": reason}
                       for bulk, items in sorted(by_bulk.items(), key=lambda kv: labels[kv[0]])
                       for reason, n in Counter(r for d in items for of_bulk, r in reasons[d.surface_id]
                                                if of_bulk).items()],
        "surface_flags": [{"surface_id": d.surface_id, "reason": own} for d in good
                          if (own := "; ".join(r for of_bulk, r in reasons[d.surface_id] if not of_bulk))],
        "failures": [{"surface_id": d.surface_id, "bulk": d.bulk_name, "reason": d.failure_reason}
                     for d in docs if d.state == "failed"],
    }


def bulk_cell(doc: SurfaceDoc) -> str:
    """The bulk hybrid's Γ cell as "atoms, width Å (sampling error in meV/atom)", from ``extra["bulk"]``; the
    width and error only where recorded (documents made before 2026-12-04 lack the width); "–" if unknown."""
    bulk = doc.extra.get("bulk") or {}
    if not isinstance(atoms := bulk.get("n_atoms"), int):
        return "–"
    text = str(atoms)
    if isinstance(width := bulk.get("gamma_cell_width"), int | float):
        text += f", {width:.2f} Å"
    error = bulk.get("gamma_sampling_error")
    return f"{text} ({1000 * abs(error):.0f})" if isinstance(error, int | float) else text


def recorded_times(docs: list[SurfaceDoc]) -> dict[str, dict]:
    """Computing time per bulk from the wall times the documents record (``extra["wall_time"]``).

    For each bulk with recorded times: ``surfaces`` (successful documents of that bulk), ``bulk_seconds``
    (its bulk job, shared by those surfaces), ``slab_seconds`` (mean slab-potential run) and
    ``seconds_per_surface`` (the bulk job spread over the surfaces, plus the mean slab run).
    """
    by_bulk: dict[str, list[SurfaceDoc]] = defaultdict(list)
    for doc in docs:
        if doc.state == "successful":
            by_bulk[doc.bulk_name].append(doc)
    table = {}
    for name, items in sorted(by_bulk.items()):
        times = [t for d in items if (t := d.extra.get("wall_time"))]
        bulk = [t["bulk_edges"] for t in times if "bulk_edges" in t]
        slab = [t["slab_potential"] for t in times if "slab_potential" in t]
        if not bulk or not slab:
            continue
        bulk_seconds, slab_seconds = max(bulk), statistics.fmean(slab)
        table[name] = {"surfaces": len(items), "bulk_seconds": bulk_seconds, "slab_seconds": slab_seconds,
                       "seconds_per_surface": bulk_seconds / len(items) + slab_seconds}
    return table


def recorded_step_seconds(docs: list[SurfaceDoc]) -> tuple[float, float, float] | None:
    """``(surface_seconds, bulk_seconds, seconds_per_surface)`` from the wall times the documents record
    (:func:`recorded_times`): the surface-weighted mean slab-potential run, the mean bulk job and the mean
    time per surface with the bulk jobs spread over their surfaces; None if no bulk is timed."""
    table = recorded_times(docs)
    if not table:
        return None
    n = sum(row["surfaces"] for row in table.values())
    slab = sum(row["slab_seconds"] * row["surfaces"] for row in table.values()) / n
    bulk = sum(row["bulk_seconds"] for row in table.values()) / len(table)
    return slab, bulk, _mean_seconds_per_surface(table) or 0.0


def _mean_seconds_per_surface(table: dict[str, dict]) -> float | None:
    """The surface-weighted mean ``seconds_per_surface`` of a :func:`recorded_times` table."""
    n = sum(row["surfaces"] for row in table.values())
    return sum(row["seconds_per_surface"] * row["surfaces"] for row in table.values()) / n if n else None


def recorded_time_lines(docs: list[SurfaceDoc]) -> list[str]:
    """Markdown: :func:`recorded_times` as a table and the mean time per surface over those bulks."""
    table = recorded_times(docs)
    if not table:
        return []
    n = sum(row["surfaces"] for row in table.values())
    mean = _mean_seconds_per_surface(table) or 0.0  # not None: the table is not empty here
    lines = [f"Computing time recorded in the documents (wall clock, 2 cores; since 2026-12-04): {n} surfaces of "
             f"{len(table)} bulk{'s' if len(table) > 1 else ''}, {mean / 60:.1f} min per surface on average.", "",
             "| bulk | surfaces | bulk job (min) | slab potential (s, mean) | per surface (min) |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['surfaces']} | {row['bulk_seconds'] / 60:.1f} | {row['slab_seconds']:.0f} | "
              f"{row['seconds_per_surface'] / 60:.1f} |" for name, row in table.items()]
    return lines


def _range(stats: dict) -> str:
    return f"{stats['min']:.2f} – {stats['max']:.2f} (mean {stats['mean']:.2f})" if stats else "–"


#: a source's offsets are summarised (mean, spread) when it gives IPs for at least this many table rows
MIN_FORMULAS_PER_SOURCE = 3


def source_offset_lines(offsets_by_source: dict[int, dict[str, list[float]]]) -> list[str]:
    """One bullet per reference number with IPs for enough table rows: the mean, median and range of our mean
    IP minus its IP over those rows, one value per row (the mean of a row's offsets where the source gives
    several IPs for it). A systematic offset, as between HSE06 and another functional, shows as a mean far
    from zero with a narrow range."""
    lines = []
    for number, rows in sorted(offsets_by_source.items()):
        offsets = [statistics.mean(values) for values in rows.values()]
        if len(offsets) >= MIN_FORMULAS_PER_SOURCE:
            lines.append(f"- [{number}]: {len(offsets)} rows, mean {statistics.mean(offsets):+.2f} eV, median "
                         f"{statistics.median(offsets):+.2f} eV, from {min(offsets):+.2f} to {max(offsets):+.2f} eV")
    return lines


def datasheet_markdown(
    title: str,
    docs: list[SurfaceDoc],
    files: dict[str, int],
    method: str,
    timing: list[str] | None = None,
    remaining: list[str] | None = None,
    literature: dict[str, list[PublishedValue]] | None = None,
    isostructural: Sequence[IsostructuralGroup] | None = None,
    isostructural_figure: str | None = None,
) -> str:
    """A dataset's README: what is in it, counts, value ranges, per-formula table, outliers, failures.

    ``files`` maps each data file to its number of documents; ``method`` and ``timing`` are Markdown
    paragraphs/bullets written by the caller (they depend on the campaign); ``literature`` maps a formula
    to published values (:func:`load_literature`), shown in the per-formula table with numbered references
    and our mean IP minus the published one. The section on isostructural bulks shows ``isostructural``
    (:func:`~bandflow.isostructural.isostructural_groups` of ``docs``, found here when not given: a caller
    that plots them passes its own) and ``isostructural_figure``, a figure file beside the datasheet
    (:func:`bandflow.plotting.plot_isostructural_cuts`).
    """
    summary = dataset_summary(docs)
    literature = literature or {}
    lines = [f"# {title}", ""]
    lines += ["| file | surfaces |", "|---|---|"] + [f"| `{name}` | {n} |" for name, n in files.items()] + [""]
    lines += [
        "## Counts and ranges", "",
        f"- successful surfaces: {summary['n_successful']} ({summary['n_binary']} binary-oxide surfaces from "
        f"{summary['n_formulas_binary']} formulas, {summary['n_ternary']} ternary-oxide surfaces from "
        f"{summary['n_formulas_ternary']} formulas); failed: {summary['n_failed']}",
        f"- IP (eV): {_range(summary['ip'])}", f"- EA (eV): {_range(summary['ea'])}",
        f"- bulk gap (eV): {_range(summary['gap'])}",
        f"- protocols: {', '.join(f'{k} ({v})' for k, v in summary['protocols'].items()) or '–'}", "",
    ]
    recorded = recorded_time_lines(docs)
    if timing or recorded:
        lines += ["## Time", "", *(timing or []), *([""] if timing and recorded else []), *recorded, ""]
    if remaining:
        lines += ["## Not yet computed", "", *remaining, ""]
    lines += ["## Method", "", method.strip(), ""]
    lines += ["## Per formula", "",
              "| formula | surfaces | IP min–max (eV) | EA min–max (eV) | bulk gap (eV) | published gap (eV) | "
              "bulk Γ cell: atoms, width (meV/atom) | published IP / EA (eV) | our mean IP − published (eV) |",
              "|---|---|---|---|---|---|---|---|---|"]
    references: dict[str, int] = {}
    offsets_by_source: dict[int, dict[str, list[float]]] = {}  # reference → table row → offsets
    for label, row in summary["per_formula"].items():
        ip, ea, formula = row["ip"], row["ea"], row["formula"]
        gap = "–" if row["gap"] is None else f"{row['gap']:.2f}"
        published, offsets, gaps = [], [], []
        for value in literature.get(formula, []):
            number = references.setdefault(value.source, len(references) + 1)
            note = f" ({value.note})" if value.note else ""
            if value.gap is not None:
                gaps.append(f"{value.gap:.2f}{note} [{number}]")
                if value.ip is None and value.ea is None:
                    continue
            shown = " / ".join("–" if v is None else f"{v:.2f}" for v in (value.ip, value.ea))
            published.append(f"{shown if value.ip is not None or value.ea is not None else ''}{note} [{number}]".strip())
            if value.ip is not None:
                offsets.append(f"{ip['mean'] - value.ip:+.2f}")
                offsets_by_source.setdefault(number, {}).setdefault(label, []).append(ip["mean"] - value.ip)
        lines.append(f"| {label} | {row['n']} | {ip['min']:.2f} – {ip['max']:.2f} | {ea['min']:.2f} – "
                     f"{ea['max']:.2f} | {gap} | {'; '.join(gaps)} | {row['bulk_cell']} | {'; '.join(published)} | "
                     f"{', '.join(offsets)} |")
    lines += ["", "Bulk Γ cell: atoms of the supercell of the bulk hybrid run, its width (shortest distance "
              "between opposite faces; recorded since 2026-12-04) and, in brackets, its PBE Γ-sampling error "
              "|E(Γ) − E(k-mesh)| per atom. A formula with several bulks here (polymorphs) has a row per bulk, "
              "named by the bulk."]
    if references:
        lines += ["", "Published values: " + "; ".join(f"[{n}] {source}" for source, n in references.items()) + "."]
    if summary_lines := source_offset_lines(offsets_by_source):
        lines += ["", "Our mean IP minus the published one, per source with IPs for at least "
                  f"{MIN_FORMULAS_PER_SOURCE} rows of the table:", "", *summary_lines]
    if groups := (isostructural_groups(docs) if isostructural is None else isostructural):
        lines += ["", "## The same cut in isostructural bulks", "",
                  "Bulks of one structure type have the same cuts, each computed on its own (its own bulk hybrid, "
                  "its own slabs). Whether the cuts come in the same order of IP in every bulk of the type tells "
                  "the spread between the terminations of one bulk (several eV) apart from noise: a random "
                  "failure of one calculation breaks the order, a property of the terminations under this "
                  "method keeps it (an artefact shared by a kind of face, of its relaxation say, would keep it "
                  f"too). Cuts are paired by Miller index and by the outermost {FACE_ATOMS} atoms of the "
                  "unrelaxed top face (elements paired by amount and electronegativity, depths alike; "
                  "`bandflow.isostructural`); a type is shown where its bulks share at least "
                  f"{MIN_SHARED_CUTS} cuts.", "",
                  *([f"![The same cut in isostructural bulks]({isostructural_figure})", ""]
                    if isostructural_figure else []),
                  *isostructural_markdown(groups, bulk_labels(d for d in docs if d.state == "successful"))]
        lines.pop()  # the last group's blank line: the next section adds its own
    lines += ["", "## Outliers (flagged, kept)", "",
              f"Flagged: IP outside {IP_RANGE[0]}–{IP_RANGE[1]} eV or EA below {EA_MIN} eV; bulk edges from a Γ cell "
              f"whose PBE energy misses the k-mesh one by more than {1000 * MAX_GAMMA_SAMPLING_ERROR:.0f} meV/atom or "
              f"whose gap the k-point correction moves by more than {MAX_GAP_K_CORRECTION} eV; a slab centre "
              f"without a bulk-like interior; an IP more than {MAX_IP_FROM_MEDIAN} eV from the median of its bulk's "
              f"surfaces (at least {MIN_SURFACES_FOR_MEDIAN}), given with two descriptors of its face "
              "(`bandflow.coordination`) beside the other surfaces': the height of its outermost cation over the "
              "outermost O in the relaxed slab (an outward cation layer lowers the IP, an outward O layer raises "
              "it) and the cation–O bonds its unrelaxed cut breaks per nm² of face (many more than the others "
              "point to a cut through molecular units). An IP or EA out of range says which species ends the "
              "relaxed slab, by the same height (a slab that ends in a cation layer has both its IP and EA "
              "lowered by that layer's dipole).", ""]
    if summary["bulk_flags"]:
        lines += ["Bulks whose band edges are in doubt (every one of their surfaces is flagged for it):", ""]
        lines += [f"- {f['bulk']} ({f['n']} surface{'s' * (f['n'] > 1)}): {f['reason']}" for f in summary["bulk_flags"]]
        lines += ["", "Surfaces flagged for reasons of their own:", ""]
    lines += [f"- `{o['surface_id']}`: {o['reason']}" for o in summary["surface_flags"]] or ["none"]
    lines += ["", "## Failures (not in the files)", ""]
    lines += _failure_lines(summary["failures"]) or ["none"]
    return "\n".join(lines) + "\n"


def _failure_lines(failures: list[dict]) -> list[str]:
    """One line per failed surface, or one per bulk and reason where several surfaces share it (a failed bulk
    job fails all its surfaces with the same reason)."""
    groups: dict[tuple, list[str]] = {}
    for f in failures:
        groups.setdefault((f.get("bulk"), f["reason"]), []).append(f["surface_id"])
    return [f"- `{ids[0]}`: {reason}" if len(ids) == 1 else f"- {bulk}, {len(ids)} surfaces: {reason}"
            for (bulk, reason), ids in groups.items()]
