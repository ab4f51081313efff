"""The bulk oxide library (``bandflow/data/bulk/*.cif``) and loading of user structure files.

Anywhere a library name is accepted, a path to a CIF or POSCAR file is accepted too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pymatgen.core import Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from bandflow.errors import BandflowError

LIBRARY_DIR = Path(__file__).parent / "data" / "bulk"


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
        raise BandflowError(f"cannot read a crystal structure from {path}: {exc}") from None
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
