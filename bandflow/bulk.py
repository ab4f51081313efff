"""The bulk oxide library (``bandflow/data/bulk/*.cif``) and loading of user structure files.

Anywhere a library name is accepted, a path to a CIF or POSCAR file is accepted too. The library CIFs are
written by ``tools/build_bulk_library.py`` from published structures; each records its source, the
published space group and density (see :func:`library_source`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import spglib
from pymatgen.core import Element, Structure
from pymatgen.io.cif import CifFile
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.errors import BandflowError
from bandflow.files import replaced_atomically

LIBRARY_DIR = Path(__file__).parent / "data" / "bulk"
SUMMARY_CACHE_VERSION = 1


@dataclass(frozen=True)
class BulkOxide:
    """A bulk oxide: its name (library key or file stem), structure and where it came from."""

    name: str
    structure: Structure
    source: str

    @property
    def formula(self) -> str:
        return self.structure.composition.reduced_formula

    @property
    def n_cation_species(self) -> int:
        return sum(1 for el in self.structure.composition.elements if el.symbol != "O")

    def spacegroup(self, symprec: float = 1e-3) -> tuple[str, int]:
        sga = SpacegroupAnalyzer(self.structure, symprec=symprec)
        return sga.get_space_group_symbol(), sga.get_space_group_number()

    def primitive(self, symprec: float = 1e-3) -> Structure:
        return SpacegroupAnalyzer(self.structure, symprec=symprec).get_primitive_standard_structure()


def library_names() -> list[str]:
    """Names of the library entries (file stems of ``data/bulk/*.cif``), sorted."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.cif"))


def _read_structure(path: Path) -> Structure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for unreadable files
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BandflowError(f"cannot read a crystal structure from {path}: {reason}") from None
    return structure


def validate_oxide(structure: Structure, label: str) -> Structure:
    """Check that ``structure`` is an ordered oxide; raise a one-line BandflowError otherwise."""
    if not structure.is_ordered:
        raise BandflowError(f"{label}: partial occupancies are not supported; give an ordered structure")
    if Element("O") not in structure.composition:
        raise BandflowError(f"{label}: {structure.composition.reduced_formula} contains no oxygen; not an oxide")
    if len(structure.composition.elements) < 2:
        raise BandflowError(f"{label}: {structure.composition.reduced_formula} has no cation")
    return structure


@cache
def _load_library_entry(name: str) -> BulkOxide:
    path = LIBRARY_DIR / f"{name}.cif"
    return BulkOxide(name=name, structure=validate_oxide(_read_structure(path), name), source=str(path))


def load_bulk(name_or_path: str | Path) -> BulkOxide:
    """Load a library oxide by name (case-insensitive) or a CIF/POSCAR file by path."""
    key = str(name_or_path)
    names = {n.lower(): n for n in library_names()}
    if key.lower() in names:
        entry = _load_library_entry(names[key.lower()])
        return BulkOxide(entry.name, entry.structure.copy(), entry.source)
    path = Path(key).expanduser()
    if path.exists():
        if not path.is_file():
            raise BandflowError(f"{path} is not a file")
        structure = validate_oxide(_read_structure(path), str(path))
        return BulkOxide(name=path.stem, structure=structure, source=str(path.resolve()))
    if any(ch in key for ch in "/\\.") or key.upper().startswith("POSCAR"):
        raise BandflowError(f"file not found: {key}")
    raise BandflowError(f"unknown bulk '{key}': not a library name (see `bandflow bulk list`) and not a file")


def oxidation_states(structure: Structure) -> dict[str, float]:
    """Formal oxidation states per element (O = −2), from the most likely charge-balanced assignment."""
    guesses = structure.composition.oxi_state_guesses(max_sites=-50)
    guesses = [g for g in guesses if g.get("O") == -2]
    if not guesses:
        raise BandflowError(
            f"{structure.composition.reduced_formula}: no charge-balanced formal oxidation states with O2-"
        )
    return dict(guesses[0])


@dataclass(frozen=True)
class LibrarySource:
    """What a library CIF records about its published structure."""

    spacegroup_symbol: str
    spacegroup_number: int
    density: float
    reference: str


def library_source(name: str) -> LibrarySource:
    """The published space group, density (g/cm3) and reference recorded in library entry ``name``."""
    names = {n.lower(): n for n in library_names()}
    if name.lower() not in names:
        raise BandflowError(f"unknown bulk '{name}': not a library name (see `bandflow bulk list`)")
    block = next(iter(CifFile.from_file(LIBRARY_DIR / f"{names[name.lower()]}.cif").data.values())).data
    authors = block["_publ_author_name"]
    authors = [authors] if isinstance(authors, str) else list(authors)
    page = f" {block['_journal_page_first']}" if "_journal_page_first" in block else ""
    reference = (f"{'; '.join(authors)}, {block['_journal_name_full']} {block['_journal_volume']} "
                 f"({block['_journal_year']}){page}")
    return LibrarySource(
        spacegroup_symbol=block["_symmetry_space_group_name_H-M"],
        spacegroup_number=int(block["_space_group_IT_number"]),
        density=float(block["_exptl_crystal_density_diffrn"]),
        reference=reference,
    )


@dataclass(frozen=True)
class BulkSummary:
    """One line of ``bandflow bulk list``: formula, space group found by spglib, atoms per primitive cell."""

    name: str
    formula: str
    spacegroup_symbol: str
    spacegroup_number: int
    n_atoms_primitive: int


def summarize(bulk: BulkOxide, symprec: float = 1e-3) -> BulkSummary:
    """Space group and primitive-cell size of ``bulk`` from one spglib analysis."""
    sga = SpacegroupAnalyzer(bulk.structure, symprec=symprec)
    return BulkSummary(bulk.name, bulk.formula, sga.get_space_group_symbol(), sga.get_space_group_number(),
                       len(sga.find_primitive()))


def _summary_cache_path() -> Path:
    from bandflow.settings import get_settings

    return get_settings().data_dir / "cache" / "bulk_summaries.json"


def library_summaries(symprec: float = 1e-3) -> list[BulkSummary]:
    """Summaries of every library entry, sorted by name.

    Parsing 50 CIFs and running spglib on each takes seconds, so results are cached in
    ``data_dir/cache/bulk_summaries.json``, keyed by each file's SHA-256, ``symprec`` and the spglib
    version; a missing, unreadable or stale cache is recomputed, and an unwritable one is skipped.
    """
    cache_path = _summary_cache_path()
    key = f"v{SUMMARY_CACHE_VERSION} spglib {spglib.__version__} symprec {symprec}"
    try:
        cached = json.loads(cache_path.read_text())
        entries = cached["entries"] if cached.get("key") == key else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = {}
    summaries, fresh, changed = [], {}, False
    for name in library_names():
        digest = hashlib.sha256((LIBRARY_DIR / f"{name}.cif").read_bytes()).hexdigest()
        hit = entries.get(name)
        try:
            summary = BulkSummary(**hit["summary"]) if hit and hit.get("sha256") == digest else None
        except (TypeError, KeyError):
            summary = None
        if summary is None:
            summary, changed = summarize(load_bulk(name), symprec), True
        summaries.append(summary)
        fresh[name] = {"sha256": digest, "summary": asdict(summary)}
    if changed or set(fresh) != set(entries):
        _write_atomically(cache_path, json.dumps({"key": key, "entries": fresh}, indent=1))
    return summaries


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; silently skip when the folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as temporary:
            temporary.write_text(text)
    except OSError:
        pass


def describe_bulk(name_or_path: str | Path, symprec: float = 1e-3) -> dict[str, object]:
    """Formula, space group, primitive size, cell, formal oxidation states and source of a bulk oxide."""
    bulk = load_bulk(name_or_path)
    summary = summarize(bulk, symprec)
    lattice = bulk.structure.lattice
    info: dict[str, object] = {
        "name": bulk.name,
        "formula": bulk.formula,
        "spacegroup": f"{summary.spacegroup_symbol} ({summary.spacegroup_number})",
        "atoms_cell": len(bulk.structure),
        "atoms_primitive": summary.n_atoms_primitive,
        "abc": " ".join(f"{x:.4f}" for x in lattice.abc),
        "angles": " ".join(f"{x:.3f}" for x in lattice.angles),
        "density": round(bulk.structure.density, 3),
        "oxidation_states": " ".join(f"{el}{ox:+g}" for el, ox in oxidation_states(bulk.structure).items()),
        "file": bulk.source,
    }
    if Path(bulk.source).parent == LIBRARY_DIR:
        info["reference"] = library_source(bulk.name).reference
    return info
