"""Build ``bandflow/data/bulk/*.cif`` from published crystallographic data.

Each entry of :data:`ENTRIES` holds what a structure paper (or an ICSD record) gives: space group and
setting, lattice parameters, the asymmetric unit (Wyckoff positions), the density and the reference.
pymatgen expands the asymmetric unit (``Structure.from_spacegroup``); the CIF is then written as text here
because pymatgen's ``CifWriter`` has no items for the source (authors, journal, year) or the published
density, and would store either P1 or an spglib-refined setting instead of the published one.

Run ``python tools/build_bulk_library.py`` from the repository root; it rewrites every library CIF, then
reads each back with pymatgen and checks it against the expanded structure. ``--only MgO ZnO`` limits
the run to some entries.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.cif import CifParser
from pymatgen.symmetry.groups import SpaceGroup
from pymatgen.analysis.structure_matcher import StructureMatcher

LIBRARY_DIR = Path(__file__).resolve().parents[1] / "bandflow" / "data" / "bulk"

Site = tuple[str, tuple[float, float, float]]


@dataclass(frozen=True)
class Reference:
    """Where the structure was published."""

    authors: tuple[str, ...]
    journal: str
    year: int
    volume: str
    first_page: str
    title: str = ""

    def one_line(self) -> str:
        authors = ", ".join(self.authors)
        return f"{authors}, {self.journal} {self.volume} ({self.year}) {self.first_page}"


@dataclass(frozen=True)
class Entry:
    """One library oxide as published: setting, cell, asymmetric unit, density and source.

    ``spacegroup`` is the pymatgen symbol of the setting the coordinates refer to (``:2`` = origin
    choice 2); ``hm_symbol`` is the Hermann-Mauguin symbol written to the CIF; ``density`` is the
    published density in g/cm3, recorded independently of the cell so that the tests can check one
    against the other.
    """

    name: str
    formula: str
    spacegroup: str
    hm_symbol: str
    it_number: int
    cell: tuple[float, float, float, float, float, float]
    sites: tuple[Site, ...]
    density: float
    reference: Reference
    mineral: str = ""
    density_note: str = "X-ray density of the cited study"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def structure(self) -> Structure:
        """The conventional cell, expanded from the asymmetric unit by pymatgen."""
        lattice = Lattice.from_parameters(*self.cell)
        species = [el for el, _ in self.sites]
        coords = [xyz for _, xyz in self.sites]
        return Structure.from_spacegroup(self.spacegroup, lattice, species, coords, tol=1e-3)


def _cubic(a: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, a, 90.0, 90.0, 90.0)


def _tetragonal(a: float, c: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, c, 90.0, 90.0, 90.0)


def _hexagonal(a: float, c: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, c, 90.0, 90.0, 120.0)


ENTRIES: tuple[Entry, ...] = (
    Entry(
        name="MgO", formula="MgO", mineral="periclase",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, cell=_cubic(4.2112),
        sites=(("Mg", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=3.58, density_note="handbook density of periclase",
        reference=Reference(("Hazen, R. M.",), "American Mineralogist", 1976, "61", "266",
                            "Effects of temperature and pressure on the cell dimension and X-ray "
                            "temperature factors of periclase"),
    ),
    Entry(
        name="ZnO", formula="ZnO", mineral="zincite",
        spacegroup="P6_3mc", hm_symbol="P 63 m c", it_number=186, cell=_hexagonal(3.2498, 5.2066),
        sites=(("Zn", (1 / 3, 2 / 3, 0.0)), ("O", (1 / 3, 2 / 3, 0.3819))),
        density=5.61, density_note="handbook density of zincite",
        reference=Reference(("Kisi, E. H.", "Elcombe, M. M."), "Acta Crystallographica C", 1989, "45",
                            "1867", "u parameters for the wurtzite structure of ZnS and ZnO using powder "
                            "neutron diffraction"),
    ),
    Entry(
        name="TiO2-rutile", formula="TiO2", mineral="rutile",
        spacegroup="P4_2/mnm", hm_symbol="P 42/m n m", it_number=136, cell=_tetragonal(4.5937, 2.9587),
        sites=(("Ti", (0.0, 0.0, 0.0)), ("O", (0.30478, 0.30478, 0.0))),
        density=4.25, density_note="handbook density of rutile",
        reference=Reference(("Burdett, J. K.", "Hughbanks, T.", "Miller, G. J.", "Richardson, J. W.",
                             "Smith, J. V."), "Journal of the American Chemical Society", 1987, "109", "3639",
                            "Structural-electronic relationships in inorganic solids: powder neutron "
                            "diffraction studies of the rutile and anatase polymorphs of titanium dioxide "
                            "at 15 and 295 K"),
    ),
)


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != 0 else "0"


def _symmetry_operations(group: SpaceGroup) -> list[str]:
    """The operations of ``group`` as x,y,z strings, identity first (the CIF convention)."""
    ops = sorted(op.as_xyz_str() for op in group.symmetry_ops)
    return ["x, y, z"] + [op for op in ops if op != "x, y, z"]


def _formula_sum(formula: str) -> str:
    """'Mg2 Si O4' style, as CIF writes ``_chemical_formula_sum``."""
    unit = Composition(formula)
    return " ".join(f"{el.symbol}{'' if n == 1 else _fmt(n)}" for el, n in unit.items())


def cif_text(entry: Entry) -> str:
    """The CIF of ``entry``: source, published density, the published setting and its asymmetric unit."""
    structure = entry.structure()
    group = SpaceGroup(entry.spacegroup)
    ref = entry.reference
    a, b, c, alpha, beta, gamma = entry.cell
    unit = Composition(entry.formula)
    z = round(structure.composition.num_atoms / unit.num_atoms)
    lines = [
        f"# bandflow bulk library: {entry.name}" + (f" ({entry.mineral})" if entry.mineral else ""),
        "# Written by tools/build_bulk_library.py from the published structure; edit the table there,",
        "# not this file.",
        f"# Source: {ref.one_line()}",
        f"# Density: {entry.density} g/cm3 ({entry.density_note})",
        *[f"# Note: {note}" for note in entry.notes],
        f"data_{entry.name.replace('-', '_')}",
        f"_chemical_name_systematic '{entry.formula}'",
    ]
    if entry.mineral:
        lines.append(f"_chemical_name_mineral '{entry.mineral}'")
    lines += [
        f"_chemical_formula_sum '{_formula_sum(entry.formula)}'",
        f"_chemical_formula_weight {unit.weight:.2f}",
        "loop_",
        "_publ_author_name",
        *[f"'{author}'" for author in ref.authors],
        f"_journal_name_full '{ref.journal}'",
        f"_journal_year {ref.year}",
        f"_journal_volume {ref.volume}",
        f"_journal_page_first {ref.first_page}",
    ]
    if ref.title:
        lines += ["_publ_section_title", ";", ref.title, ";"]
    lines += [
        f"_symmetry_space_group_name_H-M '{entry.hm_symbol}'",
        f"_space_group_IT_number {entry.it_number}",
        f"_symmetry_Int_Tables_number {entry.it_number}",
        f"_cell_length_a {_fmt(a)}",
        f"_cell_length_b {_fmt(b)}",
        f"_cell_length_c {_fmt(c)}",
        f"_cell_angle_alpha {_fmt(alpha)}",
        f"_cell_angle_beta {_fmt(beta)}",
        f"_cell_angle_gamma {_fmt(gamma)}",
        f"_cell_volume {structure.volume:.3f}",
        f"_cell_formula_units_Z {z}",
        f"_exptl_crystal_density_diffrn {entry.density}",
        "loop_",
        "_symmetry_equiv_pos_site_id",
        "_symmetry_equiv_pos_as_xyz",
        *[f"{i} '{xyz}'" for i, xyz in enumerate(_symmetry_operations(group), start=1)],
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_symmetry_multiplicity",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
    ]
    counts: dict[str, int] = {}
    for element, xyz in entry.sites:
        counts[element] = counts.get(element, 0) + 1
        multiplicity = len(group.get_orbit(list(xyz), tol=1e-3))
        coords = " ".join(f"{x:.6f}" for x in xyz)
        lines.append(f"{element}{counts[element]} {element} {multiplicity} {coords} 1.0")
    return "\n".join(lines) + "\n"


def check_written(entry: Entry, path: Path) -> list[str]:
    """Problems found when pymatgen reads ``path`` back, compared with the expanded structure."""
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_back = CifParser(path).parse_structures(primitive=False)[0]
    problems += [f"warning: {w.message}" for w in caught if "cif" in str(w.filename).lower()]
    expected = entry.structure()
    if len(read_back) != len(expected):
        problems.append(f"{len(read_back)} sites read back, {len(expected)} expected")
    elif not StructureMatcher(primitive_cell=False, scale=False).fit(read_back, expected):
        problems.append("structure read back differs from the expanded one")
    if read_back.composition.reduced_formula != Composition(entry.formula).reduced_formula:
        problems.append(f"formula {read_back.composition.reduced_formula} != {entry.formula}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of the entries to build (default: all)")
    args = parser.parse_args(argv)
    entries = [e for e in ENTRIES if not args.only or e.name in args.only]
    LIBRARY_DIR.mkdir(parents=True, exist_ok=True)
    failed = False
    for entry in entries:
        path = LIBRARY_DIR / f"{entry.name}.cif"
        path.write_text(cif_text(entry))
        problems = check_written(entry, path)
        structure = entry.structure()
        status = "ok" if not problems else "; ".join(problems)
        deviation = 100 * (structure.density / entry.density - 1)
        print(f"{entry.name:<18} {len(structure):>4} atoms  density {structure.density:6.3f} "
              f"(published {entry.density}, {deviation:+.1f} %)  {status}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
