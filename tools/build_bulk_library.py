"""Build ``bandflow/data/bulk/*.cif`` from published crystallographic data.

Each entry of :data:`ENTRIES` holds what a structure paper (or an ICSD record) gives: space group and
setting, lattice parameters, the asymmetric unit (Wyckoff positions), the density and the reference.
pymatgen expands the asymmetric unit (``Structure.from_spacegroup``); the CIF is then written as text here
because pymatgen's ``CifWriter`` has no items for the source (authors, journal, year) or the published
density, and would store either P1 or an spglib-refined setting instead of the published one.

The table was entered by hand from the literature (no database access on the build machine); the later
entries BeAl2O4, MgSiO3-ilmenite (akimotoite) and Al2SiO5 (sillimanite) were copied from published CIFs
read through a search of public sources (addresses in ``docs/bulk-library.md``). Each entry was checked
when added: bond-valence sums and bond lengths against the published ones, spglib space group, density
against an independent value (``tests/test_bulk.py`` repeats all but the bond valences).

Run ``python tools/build_bulk_library.py`` from the repository root; it rewrites every library CIF, then
reads each back with pymatgen and checks it against the expanded structure. ``--only MgO ZnO`` limits
the run to some entries.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.cif import CifParser
from pymatgen.symmetry.groups import SpaceGroup
from scipy.constants import Avogadro

from bandflow.errors import exit_from_script
from bandflow.files import replaced_atomically

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
        page = f" {self.first_page}" if self.first_page else ""
        return f"{authors}, {self.journal} {self.volume} ({self.year}){page}"


@dataclass(frozen=True)
class Entry:
    """One library oxide as published: setting, cell, asymmetric unit, Z, density and source.

    ``spacegroup`` is the pymatgen symbol of the setting the coordinates refer to (``:2`` = origin
    choice 2); ``hm_symbol`` is the Hermann-Mauguin symbol written to the CIF; ``z`` is the published
    number of formula units per cell. ``density`` (g/cm3) is a literature value entered independently of
    the cell, so the tests can check one against the other; where none was at hand (or the handbook value
    is a measured bulk density of porous material), ``density`` is None and the X-ray density is computed
    from the published cell and ``z`` alone, which still checks the expanded atoms against Z.
    """

    name: str
    formula: str
    spacegroup: str
    hm_symbol: str
    it_number: int
    z: int
    cell: tuple[float, float, float, float, float, float]
    sites: tuple[Site, ...]
    density: float | None
    reference: Reference
    mineral: str = ""
    density_note: str = "literature value"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def xray_density(self) -> float:
        """Z * M / (N_A * V) from the published cell and Z, in g/cm3."""
        volume = Lattice.from_parameters(*self.cell).volume
        return self.z * Composition(self.formula).weight / (Avogadro * volume * 1e-24)

    def recorded_density(self) -> float:
        return self.density if self.density is not None else round(self.xray_density(), 3)

    def structure(self) -> Structure:
        """The conventional cell, expanded from the asymmetric unit by pymatgen."""
        lattice = Lattice.from_parameters(*self.cell)
        species = [el for el, _ in self.sites]
        coords = [xyz for _, xyz in self.sites]
        with warnings.catch_warnings():  # pymatgen notes it lacks full symbols of non-standard settings
            warnings.filterwarnings("ignore", message="Full symbol not available")
            return Structure.from_spacegroup(self.spacegroup, lattice, species, coords, tol=1e-3)


def _cubic(a: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, a, 90.0, 90.0, 90.0)


def _tetragonal(a: float, c: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, c, 90.0, 90.0, 90.0)


def _hexagonal(a: float, c: float) -> tuple[float, float, float, float, float, float]:
    return (a, a, c, 90.0, 90.0, 120.0)


def _orthorhombic(a: float, b: float, c: float) -> tuple[float, float, float, float, float, float]:
    return (a, b, c, 90.0, 90.0, 90.0)


def _monoclinic_b(a: float, b: float, c: float, beta: float) -> tuple[float, float, float, float, float, float]:
    return (a, b, c, 90.0, beta, 90.0)


# Compilations cited for structures fixed by the lattice parameter alone (rock salt, fluorite, cuprite,
# cubic perovskite), where any refinement reproduces the same structure.
WYCKOFF_1963 = Reference(("Wyckoff, R. W. G.",), "Crystal Structures, 2nd ed. (Interscience, New York)", 1963,
                         "1", "")
WYCKOFF_1964 = Reference(("Wyckoff, R. W. G.",), "Crystal Structures, 2nd ed. (Interscience, New York)", 1964,
                         "2", "")


ENTRIES: tuple[Entry, ...] = (
    Entry(
        name="MgO", formula="MgO", mineral="periclase",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(4.2112),
        sites=(("Mg", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=3.58, density_note="handbook density of periclase",
        reference=Reference(("Hazen, R. M.",), "American Mineralogist", 1976, "61", "266",
                            "Effects of temperature and pressure on the cell dimension and X-ray "
                            "temperature factors of periclase"),
    ),
    Entry(
        name="ZnO", formula="ZnO", mineral="zincite",
        spacegroup="P6_3mc", hm_symbol="P 63 m c", it_number=186, z=2, cell=_hexagonal(3.2498, 5.2066),
        sites=(("Zn", (1 / 3, 2 / 3, 0.0)), ("O", (1 / 3, 2 / 3, 0.3819))),
        density=5.61, density_note="handbook density of zincite",
        reference=Reference(("Kisi, E. H.", "Elcombe, M. M."), "Acta Crystallographica C", 1989, "45",
                            "1867", "u parameters for the wurtzite structure of ZnS and ZnO using powder "
                            "neutron diffraction"),
    ),
    Entry(
        name="TiO2-rutile", formula="TiO2", mineral="rutile",
        spacegroup="P4_2/mnm", hm_symbol="P 42/m n m", it_number=136, z=2, cell=_tetragonal(4.5937, 2.9587),
        sites=(("Ti", (0.0, 0.0, 0.0)), ("O", (0.30478, 0.30478, 0.0))),
        density=4.25, density_note="handbook density of rutile",
        reference=Reference(("Burdett, J. K.", "Hughbanks, T.", "Miller, G. J.", "Richardson, J. W.",
                             "Smith, J. V."), "Journal of the American Chemical Society", 1987, "109", "3639",
                            "Structural-electronic relationships in inorganic solids: powder neutron "
                            "diffraction studies of the rutile and anatase polymorphs of titanium dioxide "
                            "at 15 and 295 K"),
    ),
    Entry(
        name="CaO", formula="CaO", mineral="lime",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(4.8105),
        sites=(("Ca", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=3.34, density_note="handbook density of lime",
        reference=Reference(("Smith, D. K.", "Leider, H. R."), "Journal of Applied Crystallography", 1968, "1",
                            "246", "Low-temperature thermal expansion of LiH, MgO and CaO"),
    ),
    Entry(
        name="SrO", formula="SrO",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(5.1602),
        sites=(("Sr", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=None, density_note="X-ray density from the published cell and Z; the handbook value 4.70 is a measured bulk density", reference=WYCKOFF_1963,
    ),
    Entry(
        name="BaO", formula="BaO",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(5.5234),
        sites=(("Ba", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=None, density_note="X-ray density from the published cell and Z; the handbook value 5.72 is a measured bulk density", reference=WYCKOFF_1963,
    ),
    Entry(
        name="CdO", formula="CdO", mineral="monteponite",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(4.6953),
        sites=(("Cd", (0.0, 0.0, 0.0)), ("O", (0.5, 0.5, 0.5))),
        density=8.15, density_note="handbook density", reference=WYCKOFF_1963,
    ),
    Entry(
        name="BeO", formula="BeO", mineral="bromellite",
        spacegroup="P6_3mc", hm_symbol="P 63 m c", it_number=186, z=2, cell=_hexagonal(2.6979, 4.3772),
        sites=(("Be", (1 / 3, 2 / 3, 0.0)), ("O", (1 / 3, 2 / 3, 0.3786))),
        density=3.01, density_note="handbook density of bromellite",
        reference=Reference(("Hazen, R. M.", "Finger, L. W."), "Journal of Applied Physics", 1986, "59", "3728",
                            "High-pressure and high-temperature crystal chemistry of beryllium oxide"),
    ),
    Entry(
        name="Li2O", formula="Li2O",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(4.6114),
        sites=(("O", (0.0, 0.0, 0.0)), ("Li", (0.25, 0.25, 0.25))),
        density=2.013, density_note="handbook density",
        reference=Reference(("Farley, T. W. D.", "Hayes, W.", "Hull, S.", "Hutchings, M. T.", "Vrtis, M."),
                            "Journal of Physics: Condensed Matter", 1991, "3", "4761",
                            "Investigation of thermally induced Li+ ion disorder in Li2O using neutron "
                            "diffraction"),
    ),
    Entry(
        name="Na2O", formula="Na2O",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(5.55),
        sites=(("O", (0.0, 0.0, 0.0)), ("Na", (0.25, 0.25, 0.25))),
        density=None, density_note="X-ray density from the published cell and Z; the handbook value 2.27 is a measured bulk density",
        reference=Reference(("Zintl, E.", "Harder, A.", "Dauth, B."), "Zeitschrift fuer Elektrochemie", 1934, "40",
                            "588", "Gitterstruktur der Oxyde, Sulfide, Selenide und Telluride des Lithiums, "
                            "Natriums und Kaliums"),
    ),
    Entry(
        name="K2O", formula="K2O",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(6.436),
        sites=(("O", (0.0, 0.0, 0.0)), ("K", (0.25, 0.25, 0.25))),
        density=2.35, density_note="handbook density",
        reference=Reference(("Zintl, E.", "Harder, A.", "Dauth, B."), "Zeitschrift fuer Elektrochemie", 1934, "40",
                            "588", "Gitterstruktur der Oxyde, Sulfide, Selenide und Telluride des Lithiums, "
                            "Natriums und Kaliums"),
    ),
    Entry(
        name="Rb2O", formula="Rb2O",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(6.755),
        sites=(("O", (0.0, 0.0, 0.0)), ("Rb", (0.25, 0.25, 0.25))),
        density=4.0, density_note="handbook density",
        reference=Reference(("Helms, A.", "Klemm, W."), "Zeitschrift fuer anorganische und allgemeine Chemie", 1939,
                            "242", "33", "Ueber die Kristallstrukturen der Rubidium- und Caesiumchalkogenide"),
    ),
    Entry(
        name="Cs2O", formula="Cs2O",
        spacegroup="R-3m", hm_symbol="R -3 m", it_number=166, z=3, cell=_hexagonal(4.256, 18.99),
        sites=(("O", (0.0, 0.0, 0.0)), ("Cs", (0.0, 0.0, 0.2553))),
        density=4.65, density_note="handbook density",
        reference=Reference(("Tsai, K.-R.", "Harris, P. M.", "Lassettre, E. N."), "Journal of Physical Chemistry",
                            1956, "60", "338", "The crystal structure of cesium monoxide"),
        notes=("hexagonal axes",
               "Cs z from a PBE scan at the published cell (bandflow's fast settings; minimum at 0.2553, "
               "Cs-O 2.870 A): the published value was not at hand"),
    ),
    Entry(
        name="Cu2O", formula="Cu2O", mineral="cuprite",
        spacegroup="Pn-3m:2", hm_symbol="P n -3 m", it_number=224, z=2, cell=_cubic(4.2685),
        sites=(("Cu", (0.0, 0.0, 0.0)), ("O", (0.25, 0.25, 0.25))),
        density=6.14, density_note="handbook density of cuprite",
        reference=Reference(("Restori, R.", "Schwarzenbach, D."), "Acta Crystallographica B", 1986, "42", "201",
                            "Charge density in cuprite, Cu2O"),
        notes=("origin choice 2",),
    ),
    Entry(
        name="Ag2O", formula="Ag2O",
        spacegroup="Pn-3m:2", hm_symbol="P n -3 m", it_number=224, z=2, cell=_cubic(4.72),
        sites=(("Ag", (0.0, 0.0, 0.0)), ("O", (0.25, 0.25, 0.25))),
        density=7.14, density_note="handbook density", reference=WYCKOFF_1963,
        notes=("origin choice 2",),
    ),
    Entry(
        name="Al2O3", formula="Al2O3", mineral="corundum",
        spacegroup="R-3c", hm_symbol="R -3 c", it_number=167, z=6, cell=_hexagonal(4.7602, 12.9933),
        sites=(("Al", (0.0, 0.0, 0.35216)), ("O", (0.30624, 0.0, 0.25))),
        density=3.99, density_note="handbook density of corundum",
        reference=Reference(("Lewis, J.", "Schwarzenbach, D.", "Flack, H. D."), "Acta Crystallographica A",
                            1982, "38", "733", "Electric field gradients and charge density in corundum, "
                            "alpha-Al2O3"),
        notes=("hexagonal axes",),
    ),
    Entry(
        name="Ga2O3-beta", formula="Ga2O3",
        spacegroup="C2/m", hm_symbol="C 1 2/m 1", it_number=12, z=4, cell=_monoclinic_b(12.214, 3.0371, 5.7981, 103.83),
        sites=(("Ga", (0.09050, 0.0, 0.79460)), ("Ga", (0.34140, 0.0, 0.68570)), ("O", (0.16740, 0.0, 0.10110)),
               ("O", (0.49570, 0.0, 0.25530)), ("O", (0.82790, 0.0, 0.43650))),
        density=5.88, density_note="handbook density",
        reference=Reference(("Ahman, J.", "Svensson, G.", "Albertsson, J."), "Acta Crystallographica C", 1996,
                            "52", "1336", "A reinvestigation of beta-gallium oxide"),
    ),
    Entry(
        name="In2O3", formula="In2O3",
        spacegroup="Ia-3", hm_symbol="I a -3", it_number=206, z=16, cell=_cubic(10.117),
        sites=(("In", (0.25, 0.25, 0.25)), ("In", (0.46650, 0.0, 0.25)), ("O", (0.3905, 0.1529, 0.3832))),
        density=7.18, density_note="handbook density",
        reference=Reference(("Marezio, M.",), "Acta Crystallographica", 1966, "20", "723",
                            "Refinement of the crystal structure of In2O3 at two wavelengths"),
    ),
    Entry(
        name="Sc2O3", formula="Sc2O3",
        spacegroup="Ia-3", hm_symbol="I a -3", it_number=206, z=16, cell=_cubic(9.845),
        sites=(("Sc", (0.25, 0.25, 0.25)), ("Sc", (0.46454, 0.0, 0.25)), ("O", (0.3912, 0.1546, 0.3799))),
        density=3.86, density_note="handbook density",
        reference=Reference(("Knop, O.", "Hartley, J. M."), "Canadian Journal of Chemistry", 1968, "46", "1446",
                            "Refinement of the crystal structure of scandium oxide"),
    ),
    Entry(
        name="Y2O3", formula="Y2O3",
        spacegroup="Ia-3", hm_symbol="I a -3", it_number=206, z=16, cell=_cubic(10.604),
        sites=(("Y", (0.25, 0.25, 0.25)), ("Y", (0.4674, 0.0, 0.25)), ("O", (0.3911, 0.1519, 0.3806))),
        density=5.01, density_note="handbook density",
        reference=Reference(("Paton, M. G.", "Maslen, E. N."), "Acta Crystallographica", 1965, "19", "307",
                            "A refinement of the crystal structure of yttria"),
    ),
    Entry(
        name="La2O3", formula="La2O3",
        spacegroup="P-3m1", hm_symbol="P -3 m 1", it_number=164, z=1, cell=_hexagonal(3.9373, 6.1299),
        sites=(("La", (1 / 3, 2 / 3, 0.2467)), ("O", (0.0, 0.0, 0.0)), ("O", (1 / 3, 2 / 3, 0.6470))),
        density=6.51, density_note="handbook density",
        reference=Reference(("Aldebert, P.", "Traverse, J. P."), "Materials Research Bulletin", 1979, "14", "303",
                            "Etude par diffraction neutronique des structures de haute temperature de La2O3 "
                            "et Nd2O3"),
        notes=("hexagonal A-type",),
    ),
    Entry(
        name="SiO2-quartz", formula="SiO2", mineral="alpha-quartz",
        spacegroup="P3_221", hm_symbol="P 32 2 1", it_number=154, z=3, cell=_hexagonal(4.9160, 5.4054),
        sites=(("Si", (0.4697, 0.0, 1 / 6)), ("O", (0.4135, 0.2669, 0.1191 + 1 / 6))),
        density=2.646, density_note="density reported with the structure",
        reference=Reference(("Levien, L.", "Prewitt, C. T.", "Weidner, D. J."), "American Mineralogist", 1980,
                            "65", "920", "Structure and elastic properties of quartz at pressure"),
        notes=("origin shifted by (0, 0, 1/6) from the published setting to that of International Tables",),
    ),
    Entry(
        name="SiO2-cristobalite", formula="SiO2", mineral="alpha-cristobalite",
        spacegroup="P4_12_12", hm_symbol="P 41 21 2", it_number=92, z=4, cell=_tetragonal(4.9717, 6.9223),
        sites=(("Si", (0.3004, 0.3004, 0.0)), ("O", (0.2392, 0.1044, 0.1787))),
        density=2.33, density_note="handbook density of cristobalite",
        reference=Reference(("Downs, R. T.", "Palmer, D. C."), "American Mineralogist", 1994, "79", "9",
                            "The pressure behavior of alpha cristobalite"),
        notes=("ambient-pressure structure; entered without database access, the cell and coordinates as "
               "commonly tabulated for alpha-cristobalite; Si-O 1.602 and 1.604 A, Si-O-Si 146.5 deg",),
    ),
    Entry(
        name="GeO2", formula="GeO2", mineral="argutite",
        spacegroup="P4_2/mnm", hm_symbol="P 42/m n m", it_number=136, z=2, cell=_tetragonal(4.3966, 2.8619),
        sites=(("Ge", (0.0, 0.0, 0.0)), ("O", (0.3061, 0.3061, 0.0))),
        density=6.28, density_note="handbook density of rutile-type GeO2",
        reference=Reference(("Baur, W. H.", "Khan, A. A."), "Acta Crystallographica B", 1971, "27", "2133",
                            "Rutile-type compounds. IV. SiO2, GeO2 and a comparison with other rutile-type "
                            "structures"),
        notes=("rutile-type polymorph, the stable one at ambient conditions",),
    ),
    Entry(
        name="SnO2", formula="SnO2", mineral="cassiterite",
        spacegroup="P4_2/mnm", hm_symbol="P 42/m n m", it_number=136, z=2, cell=_tetragonal(4.7374, 3.1864),
        sites=(("Sn", (0.0, 0.0, 0.0)), ("O", (0.3056, 0.3056, 0.0))),
        density=6.99, density_note="handbook density of cassiterite",
        reference=Reference(("Bolzan, A. A.", "Fong, C.", "Kennedy, B. J.", "Howard, C. J."),
                            "Acta Crystallographica B", 1997, "53", "373",
                            "Structural studies of rutile-type metal dioxides"),
    ),
    Entry(
        name="TiO2-anatase", formula="TiO2", mineral="anatase",
        spacegroup="I4_1/amd", hm_symbol="I 41/a m d", it_number=141, z=4, cell=_tetragonal(3.7842, 9.5146),
        sites=(("Ti", (0.0, 0.0, 0.0)), ("O", (0.0, 0.0, 0.20806))),
        density=3.89, density_note="handbook density of anatase",
        reference=Reference(("Burdett, J. K.", "Hughbanks, T.", "Miller, G. J.", "Richardson, J. W.",
                             "Smith, J. V."), "Journal of the American Chemical Society", 1987, "109", "3639",
                            "Structural-electronic relationships in inorganic solids: powder neutron "
                            "diffraction studies of the rutile and anatase polymorphs of titanium dioxide "
                            "at 15 and 295 K"),
        notes=("origin choice 1",),
    ),
    Entry(
        name="ZrO2-monoclinic", formula="ZrO2", mineral="baddeleyite",
        spacegroup="P2_1/c", hm_symbol="P 1 21/c 1", it_number=14, z=4,
        cell=_monoclinic_b(5.1505, 5.2116, 5.3173, 99.230),
        sites=(("Zr", (0.2754, 0.0395, 0.2083)), ("O", (0.0700, 0.3317, 0.3447)), ("O", (0.4496, 0.7569, 0.4792))),
        density=5.83, density_note="handbook density of baddeleyite",
        reference=Reference(("Howard, C. J.", "Hill, R. J.", "Reichert, B. E."), "Acta Crystallographica B", 1988,
                            "44", "116", "Structures of ZrO2 polymorphs at room temperature by "
                            "high-resolution neutron powder diffraction"),
    ),
    Entry(
        name="HfO2-monoclinic", formula="HfO2",
        spacegroup="P2_1/c", hm_symbol="P 1 21/c 1", it_number=14, z=4,
        cell=_monoclinic_b(5.1156, 5.1722, 5.2948, 99.18),
        sites=(("Hf", (0.2759, 0.0412, 0.2078)), ("O", (0.0744, 0.3316, 0.3467)), ("O", (0.4476, 0.7582, 0.4793))),
        density=None, density_note="X-ray density from the published cell and Z; the handbook value 9.68 is a measured bulk density",
        reference=Reference(("Ruh, R.", "Corfield, P. W. R."), "Journal of the American Ceramic Society", 1970,
                            "53", "126", "Crystal structure of monoclinic hafnia and comparison with "
                            "monoclinic zirconia"),
    ),
    Entry(
        name="CeO2", formula="CeO2", mineral="cerianite",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(5.4113),
        sites=(("Ce", (0.0, 0.0, 0.0)), ("O", (0.25, 0.25, 0.25))),
        density=7.22, density_note="handbook density", reference=WYCKOFF_1963,
    ),
    Entry(
        name="ThO2", formula="ThO2", mineral="thorianite",
        spacegroup="Fm-3m", hm_symbol="F m -3 m", it_number=225, z=4, cell=_cubic(5.5975),
        sites=(("Th", (0.0, 0.0, 0.0)), ("O", (0.25, 0.25, 0.25))),
        density=10.0, density_note="handbook density", reference=WYCKOFF_1963,
    ),
    Entry(
        name="PbO", formula="PbO", mineral="litharge",
        spacegroup="P4/nmm:2", hm_symbol="P 4/n m m", it_number=129, z=2, cell=_tetragonal(3.9759, 5.0229),
        sites=(("O", (0.75, 0.25, 0.0)), ("Pb", (0.25, 0.25, 0.2385))),
        density=9.35, density_note="handbook density of litharge",
        reference=Reference(("Boher, P.", "Garnier, P.", "Gavarri, J. R.", "Hewat, A. W."),
                            "Journal of Solid State Chemistry", 1985, "57", "343",
                            "Monoxyde quadratique PbO alpha (I): description de la transition structurale "
                            "ferroelastique"),
        notes=("origin choice 2",),
    ),
    Entry(
        name="PbO-massicot", formula="PbO", mineral="massicot",
        spacegroup="Pbcm", hm_symbol="P b c m", it_number=57, z=4, cell=_orthorhombic(5.8931, 5.4904, 4.7528),
        sites=(("Pb", (0.2297, -0.0116, 0.25)), ("O", (-0.1347, 0.0917, 0.25))),
        density=9.64, density_note="handbook density of massicot",
        reference=Reference(("Hill, R. J.",), "Acta Crystallographica C", 1985, "41", "1281",
                            "Refinement of the structure of orthorhombic PbO (massicot) by Rietveld analysis of "
                            "neutron powder diffraction data"),
        notes=("beta-PbO, metastable at room temperature; entered without database access, the cell and "
               "coordinates as commonly tabulated; Pb-O 2.221, 2.249 and 2.481 A (2x)",),
    ),
    Entry(
        name="SnO", formula="SnO", mineral="romarchite",
        spacegroup="P4/nmm:2", hm_symbol="P 4/n m m", it_number=129, z=2, cell=_tetragonal(3.8029, 4.8382),
        sites=(("O", (0.75, 0.25, 0.0)), ("Sn", (0.25, 0.25, 0.2383))),
        density=6.45, density_note="handbook density",
        reference=Reference(("Pannetier, J.", "Denes, G."), "Acta Crystallographica B", 1980, "36", "2763",
                            "Tin(II) oxide: structure refinement and thermal expansion"),
        notes=("origin choice 2",),
    ),
    Entry(
        name="Bi2O3-alpha", formula="Bi2O3", mineral="bismite",
        spacegroup="P2_1/c", hm_symbol="P 1 21/c 1", it_number=14, z=4,
        cell=_monoclinic_b(5.8486, 8.1661, 7.5097, 112.977),
        sites=(("Bi", (0.5242, 0.1843, 0.3615)), ("Bi", (0.0409, 0.0425, 0.7767)), ("O", (0.7783, 0.3017, 0.7109)),
               ("O", (0.2404, 0.0467, 0.1355)), ("O", (0.2710, 0.0285, 0.4875))),
        density=None, density_note="X-ray density from the published cell and Z; the handbook value 8.9 is a measured bulk density",
        reference=Reference(("Harwig, H. A.",), "Zeitschrift fuer anorganische und allgemeine Chemie", 1978,
                            "444", "151", "On the structure of bismuthsesquioxide: the alpha, beta, gamma, and "
                            "delta-phase"),
    ),
    Entry(
        name="Sb2O3", formula="Sb2O3", mineral="senarmontite",
        spacegroup="Fd-3m", hm_symbol="F d -3 m", it_number=227, z=16, cell=_cubic(11.1519),
        sites=(("Sb", (0.88577, 0.88577, 0.88577)), ("O", (0.18912, 0.0, 0.0))),
        density=5.50, density_note="measured density of senarmontite (mineral data)",
        reference=Reference(("Svensson, C.",), "Acta Crystallographica B", 1975, "31", "2016",
                            "Refinement of the crystal structure of cubic antimony trioxide, Sb2O3"),
        notes=("origin choice 1; molecular Sb4O6 crystal",),
    ),
    Entry(
        name="TeO2", formula="TeO2", mineral="paratellurite",
        spacegroup="P4_12_12", hm_symbol="P 41 21 2", it_number=92, z=4, cell=_tetragonal(4.8122, 7.6157),
        sites=(("Te", (0.0268, 0.0268, 0.0)), ("O", (0.1368, 0.2576, 0.1862))),
        density=5.99, density_note="measured density of Czochralski-grown paratellurite (crystal supplier's data)",
        reference=Reference(("Thomas, P. A.",), "Journal of Physics C: Solid State Physics", 1988, "21", "4611",
                            "The crystal structure and absolute optical chirality of paratellurite, alpha-TeO2"),
        notes=("alpha-TeO2; entered without database access: the cell as published, the coordinates as commonly "
               "tabulated for alpha-TeO2; checked against the Te-O bonds of Barney, Hannon & Holland, J. Phys. "
               "Chem. C 116, 3707 (2012): 1.882 and 2.117 A by neutron total scattering, here 1.877 (2x) and "
               "2.130 A (2x)",),
    ),
    Entry(
        name="MoO3", formula="MoO3", mineral="molybdite",
        spacegroup="Pbnm", hm_symbol="P b n m", it_number=62, z=4, cell=_orthorhombic(3.9628, 13.855, 3.6964),
        sites=(("Mo", (0.0867, 0.1016, 0.25)), ("O", (0.5212, 0.0866, 0.25)), ("O", (0.4994, 0.4351, 0.25)),
               ("O", (0.0373, 0.2214, 0.25))),
        density=4.69, density_note="handbook density",
        reference=Reference(("Kihlborg, L.",), "Arkiv foer Kemi", 1963, "21", "357",
                            "Least squares refinement of the crystal structure of molybdenum trioxide"),
        notes=("Mo-O distances 1.67, 1.73, 1.95 (2x), 2.25, 2.33 A as published",),
    ),
    Entry(
        name="V2O5", formula="V2O5", mineral="shcherbinaite",
        spacegroup="Pmmn:2", hm_symbol="P m m n", it_number=59, z=2, cell=_orthorhombic(11.512, 3.564, 4.368),
        sites=(("V", (0.10118, 0.25, 0.89167)), ("O", (0.1043, 0.25, 0.5310)), ("O", (0.9311, 0.25, 0.9972)),
               ("O", (0.25, 0.25, 0.001))),
        density=3.36, density_note="handbook density",
        reference=Reference(("Enjalbert, R.", "Galy, J."), "Acta Crystallographica C", 1986, "42", "1467",
                            "A refinement of the structure of V2O5"),
        notes=("origin choice 2; V-O distances 1.58, 1.78, 1.88 (2x), 2.02, 2.79 A as published",),
    ),
    Entry(
        name="SrTiO3", formula="SrTiO3", mineral="tausonite",
        spacegroup="Pm-3m", hm_symbol="P m -3 m", it_number=221, z=1, cell=_cubic(3.905),
        sites=(("Sr", (0.0, 0.0, 0.0)), ("Ti", (0.5, 0.5, 0.5)), ("O", (0.5, 0.5, 0.0))),
        density=5.12, density_note="handbook density",
        reference=Reference(("Abramov, Yu. A.", "Tsirelson, V. G.", "Zavodnik, V. E.", "Ivanov, S. A.",
                             "Brown, I. D."), "Acta Crystallographica B", 1995, "51", "942",
                            "The chemical bond and atomic displacements in SrTiO3 from X-ray diffraction "
                            "analysis"),
    ),
    Entry(
        name="BaTiO3", formula="BaTiO3",
        spacegroup="Pm-3m", hm_symbol="P m -3 m", it_number=221, z=1, cell=_cubic(4.0118),
        sites=(("Ba", (0.0, 0.0, 0.0)), ("Ti", (0.5, 0.5, 0.5)), ("O", (0.5, 0.5, 0.0))),
        density=6.02, density_note="handbook density",
        reference=Reference(("Edwards, J. W.", "Speiser, R.", "Johnston, H. L."),
                            "Journal of the American Chemical Society", 1951, "73", "2934",
                            "Structure of barium titanate at elevated temperatures"),
        notes=("cubic paraelectric phase (above 393 K); the ambient phase is tetragonal P4mm",),
    ),
    Entry(
        name="KTaO3", formula="KTaO3",
        spacegroup="Pm-3m", hm_symbol="P m -3 m", it_number=221, z=1, cell=_cubic(3.9885),
        sites=(("K", (0.0, 0.0, 0.0)), ("Ta", (0.5, 0.5, 0.5)), ("O", (0.5, 0.5, 0.0))),
        density=7.02, density_note="handbook density", reference=WYCKOFF_1964,
    ),
    Entry(
        name="BaSnO3", formula="BaSnO3",
        spacegroup="Pm-3m", hm_symbol="P m -3 m", it_number=221, z=1, cell=_cubic(4.1163),
        sites=(("Ba", (0.0, 0.0, 0.0)), ("Sn", (0.5, 0.5, 0.5)), ("O", (0.5, 0.5, 0.0))),
        density=7.24, density_note="handbook density",
        reference=Reference(("Smith, A. J.", "Welch, A. J. E."), "Acta Crystallographica", 1960, "13", "653",
                            "Some mixed metal oxides of perovskite structure"),
    ),
    Entry(
        name="BaZrO3", formula="BaZrO3",
        spacegroup="Pm-3m", hm_symbol="P m -3 m", it_number=221, z=1, cell=_cubic(4.1930),
        sites=(("Ba", (0.0, 0.0, 0.0)), ("Zr", (0.5, 0.5, 0.5)), ("O", (0.5, 0.5, 0.0))),
        density=6.23, density_note="handbook density", reference=WYCKOFF_1964,
    ),
    Entry(
        name="CaTiO3", formula="CaTiO3", mineral="perovskite",
        spacegroup="Pbnm", hm_symbol="P b n m", it_number=62, z=4, cell=_orthorhombic(5.3796, 5.4423, 7.6401),
        sites=(("Ca", (0.9934, 0.0349, 0.25)), ("Ti", (0.0, 0.5, 0.0)), ("O", (0.0707, 0.4842, 0.25)),
               ("O", (0.7109, 0.2884, 0.0371))),
        density=4.04, density_note="handbook density of perovskite",
        reference=Reference(("Sasaki, S.", "Prewitt, C. T.", "Bass, J. D.", "Schulze, W. A."),
                            "Acta Crystallographica C", 1987, "43", "1668",
                            "Orthorhombic perovskite CaTiO3 and CdTiO3: structure and space group"),
    ),
    Entry(
        name="LaAlO3", formula="LaAlO3",
        spacegroup="R-3c", hm_symbol="R -3 c", it_number=167, z=6, cell=_hexagonal(5.3647, 13.1114),
        sites=(("La", (0.0, 0.0, 0.25)), ("Al", (0.0, 0.0, 0.0)), ("O", (0.5245, 0.0, 0.25))),
        density=6.52, density_note="handbook density",
        reference=Reference(("Hayward, S. A.", "Morrison, F. D.", "Redfern, S. A. T.", "Salje, E. K. H.",
                             "Scott, J. F.", "Knight, K. S.", "Tarantino, S.", "Glazer, A. M.", "Shuvaeva, V.",
                             "Daniel, P.", "Zhang, M.", "Carpenter, M. A."), "Physical Review B", 2005, "72",
                            "054110", "Transformation processes in LaAlO3: neutron diffraction, dielectric, "
                            "thermal, optical, and Raman studies"),
        notes=("hexagonal axes",),
    ),
    Entry(
        name="LiNbO3", formula="LiNbO3",
        spacegroup="R3c", hm_symbol="R 3 c", it_number=161, z=6, cell=_hexagonal(5.14829, 13.8631),
        sites=(("Nb", (0.0, 0.0, 0.0)), ("Li", (0.0, 0.0, 0.2829)), ("O", (0.0492, 0.3446, 0.0647))),
        density=4.64, density_note="handbook density",
        reference=Reference(("Abrahams, S. C.", "Reddy, J. M.", "Bernstein, J. L."),
                            "Journal of Physics and Chemistry of Solids", 1966, "27", "997",
                            "Ferroelectric lithium niobate. 3. Single crystal X-ray diffraction study at 24 C"),
        notes=("hexagonal axes",),
    ),
    Entry(
        name="LiTaO3", formula="LiTaO3",
        spacegroup="R3c", hm_symbol="R 3 c", it_number=161, z=6, cell=_hexagonal(5.15428, 13.7835),
        sites=(("Ta", (0.0, 0.0, 0.0)), ("Li", (0.0, 0.0, 0.2790)), ("O", (0.0534, 0.3457, 0.0728))),
        density=7.46, density_note="handbook density",
        reference=Reference(("Abrahams, S. C.", "Bernstein, J. L."), "Journal of Physics and Chemistry of Solids",
                            1967, "28", "1685", "Ferroelectric lithium tantalate. 1. Single crystal X-ray "
                            "diffraction study at 24 C"),
        notes=("hexagonal axes",),
    ),
    Entry(
        name="MgAl2O4", formula="MgAl2O4", mineral="spinel",
        spacegroup="Fd-3m:2", hm_symbol="F d -3 m", it_number=227, z=8, cell=_cubic(8.0832),
        sites=(("Mg", (0.125, 0.125, 0.125)), ("Al", (0.5, 0.5, 0.5)), ("O", (0.2624, 0.2624, 0.2624))),
        density=3.58, density_note="handbook density of spinel",
        reference=Reference(("Yamanaka, T.", "Takeuchi, Y."), "Zeitschrift fuer Kristallographie", 1983, "165", "65",
                            "Order-disorder transition in MgAl2O4 spinel at high temperatures up to 1700 C"),
        notes=("origin choice 2; normal spinel, cation inversion neglected",),
    ),
    Entry(
        name="ZnAl2O4", formula="ZnAl2O4", mineral="gahnite",
        spacegroup="Fd-3m:2", hm_symbol="F d -3 m", it_number=227, z=8, cell=_cubic(8.0848),
        sites=(("Zn", (0.125, 0.125, 0.125)), ("Al", (0.5, 0.5, 0.5)), ("O", (0.2636, 0.2636, 0.2636))),
        density=4.61, density_note="handbook density of gahnite",
        reference=Reference(("O'Neill, H. St. C.", "Dollase, W. A."), "Physics and Chemistry of Minerals", 1994,
                            "20", "541", "Crystal structures and cation distributions in simple spinels from "
                            "powder XRD structural refinements: MgCr2O4, ZnCr2O4, Fe3O4 and the temperature "
                            "dependence of the cation distribution in ZnAl2O4"),
        notes=("origin choice 2; normal spinel",),
    ),
    Entry(
        name="ZnGa2O4", formula="ZnGa2O4",
        spacegroup="Fd-3m:2", hm_symbol="F d -3 m", it_number=227, z=8, cell=_cubic(8.3349),
        sites=(("Zn", (0.125, 0.125, 0.125)), ("Ga", (0.5, 0.5, 0.5)), ("O", (0.2617, 0.2617, 0.2617))),
        density=None, density_note="X-ray density from the published cell and Z", reference=WYCKOFF_1964,
        notes=("origin choice 2; normal spinel",),
    ),
    Entry(
        name="CuAlO2", formula="CuAlO2",
        spacegroup="R-3m", hm_symbol="R -3 m", it_number=166, z=3, cell=_hexagonal(2.8567, 16.943),
        sites=(("Cu", (0.0, 0.0, 0.0)), ("Al", (0.0, 0.0, 0.5)), ("O", (0.0, 0.0, 0.1101))),
        density=5.10, density_note="handbook density",
        reference=Reference(("Ishiguro, T.", "Kitazawa, A.", "Mizutani, N.", "Kato, M."),
                            "Journal of Solid State Chemistry", 1981, "40", "170",
                            "Single-crystal growth and crystal structure refinement of CuAlO2"),
        notes=("delafossite 3R, hexagonal axes",),
    ),
    Entry(
        name="CuGaO2", formula="CuGaO2",
        spacegroup="R-3m", hm_symbol="R -3 m", it_number=166, z=3, cell=_hexagonal(2.9770, 17.171),
        sites=(("Cu", (0.0, 0.0, 0.0)), ("Ga", (0.0, 0.0, 0.5)), ("O", (0.0, 0.0, 0.1075))),
        density=None, density_note="X-ray density from the published cell and Z",
        reference=Reference(("Koehler, B. U.", "Jansen, M."), "Zeitschrift fuer anorganische und allgemeine Chemie",
                            1986, "543", "73", "Darstellung und Struktur der Delafossite CuMO2 (M = Al, Ga, Sc, Y)"),
        notes=("delafossite 3R, hexagonal axes",),
    ),
    Entry(
        name="LiGaO2", formula="LiGaO2",
        spacegroup="Pna2_1", hm_symbol="P n a 21", it_number=33, z=4, cell=_orthorhombic(5.402, 6.372, 5.007),
        sites=(("Li", (0.4207, 0.1267, 0.4936)), ("Ga", (0.0821, 0.1263, 0.0)), ("O", (0.4066, 0.1388, 0.8927)),
               ("O", (0.0697, 0.1121, 0.3708))),
        density=4.18, density_note="handbook density",
        reference=Reference(("Marezio, M.",), "Acta Crystallographica", 1965, "18", "481",
                            "The crystal structure of LiGaO2"),
    ),
    Entry(
        name="Mg2SiO4", formula="Mg2SiO4", mineral="forsterite",
        spacegroup="Pbnm", hm_symbol="P b n m", it_number=62, z=4, cell=_orthorhombic(4.7534, 10.1902, 5.9783),
        sites=(("Mg", (0.0, 0.0, 0.0)), ("Mg", (0.99150, 0.27740, 0.25)), ("Si", (0.42620, 0.09400, 0.25)),
               ("O", (0.76570, 0.09150, 0.25)), ("O", (0.22150, 0.44740, 0.25)), ("O", (0.27770, 0.16280, 0.03310))),
        density=3.22, density_note="handbook density of forsterite",
        reference=Reference(("Fujino, K.", "Sasaki, S.", "Takeuchi, Y.", "Sadanaga, R."),
                            "Acta Crystallographica B", 1981, "37", "513",
                            "X-ray determination of electron distributions in forsterite, fayalite and "
                            "tephroite"),
    ),
    Entry(
        name="MgTiO3", formula="MgTiO3", mineral="geikielite",
        spacegroup="R-3", hm_symbol="R -3", it_number=148, z=6, cell=_hexagonal(5.0548, 13.8992),
        sites=(("Mg", (0.0, 0.0, 0.35570)), ("Ti", (0.0, 0.0, 0.14510)), ("O", (0.31591, 0.02146, 0.24681))),
        density=3.89, density_note="handbook density of geikielite",
        reference=Reference(("Wechsler, B. A.", "Von Dreele, R. B."), "Acta Crystallographica B", 1989, "45", "542",
                            "Structure refinements of Mg2TiO4, MgTiO3 and MgTi2O5 by time-of-flight neutron "
                            "powder diffraction"),
        notes=("ilmenite type, hexagonal axes",),
    ),
    # The next three were taken from published CIFs read through a search of public sources (AMCSD records
    # and the MINCRYST database; the addresses are in docs/bulk-library.md), not typed from memory.
    Entry(
        name="BeAl2O4", formula="BeAl2O4", mineral="chrysoberyl",
        spacegroup="Pbnm", hm_symbol="P b n m", it_number=62, z=4, cell=_orthorhombic(4.428, 9.415, 5.481),
        sites=(("Al", (0.0, 0.0, 0.0)), ("Al", (0.9942, 0.2729, 0.25)), ("Be", (0.4328, 0.093, 0.25)),
               ("O", (0.7899, 0.0905, 0.25)), ("O", (0.2419, 0.433, 0.25)), ("O", (0.2569, 0.1628, 0.0154))),
        density=3.75, density_note="measured density of natural (Fe-bearing) chrysoberyl, Handbook of Mineralogy",
        reference=Reference(("Hazen, R. M.",), "Physics and Chemistry of Minerals", 1987, "14", "13"),
        notes=("olivine type; Pbnm setting as published; sample at 1 bar",),
    ),
    Entry(
        name="MgSiO3-ilmenite", formula="MgSiO3", mineral="akimotoite",
        spacegroup="R-3", hm_symbol="R -3", it_number=148, z=6, cell=_hexagonal(4.7284, 13.5591),
        sites=(("Si", (0.0, 0.0, 0.15768)), ("Mg", (0.0, 0.0, 0.35970)), ("O", (0.32140, 0.03610, 0.24077))),
        density=None, density_note="X-ray density from the published cell and Z; no measured density of the "
                                   "pure phase (natural akimotoite is Fe-bearing and micrometre-sized)",
        reference=Reference(("Horiuchi, H.", "Hirano, M.", "Ito, E.", "Matsui, Y."), "American Mineralogist", 1982,
                            "67", "788", "MgSiO3 (ilmenite-type): single crystal X-ray diffraction study"),
        notes=("ilmenite type, hexagonal axes; high-pressure phase, synthetic crystal studied at ambient conditions",),
    ),
    Entry(
        name="Al2SiO5", formula="Al2SiO5", mineral="sillimanite",
        spacegroup="Pbnm", hm_symbol="P b n m", it_number=62, z=4, cell=_orthorhombic(7.48388, 7.6726, 5.76807),
        sites=(("Al", (0.0, 0.0, 0.0)), ("Al", (0.14181, 0.34510, 0.25)), ("Si", (0.15318, 0.34070, 0.75)),
               ("O", (0.36070, 0.40750, 0.75)), ("O", (0.35720, 0.43480, 0.25)), ("O", (0.47620, 0.00220, 0.75)),
               ("O", (0.12580, 0.22280, 0.51510))),
        density=3.239, density_note="X-ray density of the independent refinement of Winter and Ghose, "
                                    "American Mineralogist 64 (1979) 573",
        reference=Reference(("Burt, J. B.", "Ross, N. L.", "Angel, R. J.", "Koch, M."), "American Mineralogist",
                            2006, "91", "319", "Equations of state and structures of andalusite to 9.8 GPa and "
                            "sillimanite to 8.5 GPa"),
        notes=("Pbnm setting as published; structure at 0.0001 GPa",),
    ),
    Entry(
        name="Sr2TiO4", formula="Sr2TiO4",
        spacegroup="I4/mmm", hm_symbol="I 4/m m m", it_number=139, z=2, cell=_tetragonal(3.884, 12.60),
        sites=(("Sr", (0.0, 0.0, 0.355)), ("Ti", (0.0, 0.0, 0.0)), ("O", (0.0, 0.5, 0.0)), ("O", (0.0, 0.0, 0.152))),
        density=None, density_note="X-ray density from the published cell and Z",
        reference=Reference(("Ruddlesden, S. N.", "Popper, P."), "Acta Crystallographica", 1957, "10", "538",
                            "New compounds of the K2NiF4 type"),
    ),
    Entry(
        name="BiVO4", formula="BiVO4", mineral="clinobisvanite",
        spacegroup="I112/b", hm_symbol="I 1 1 2/b", it_number=15, z=4,
        cell=(5.1935, 5.0898, 11.6972, 90.0, 90.0, 90.387),
        sites=(("Bi", (0.0, 0.25, 0.6335)), ("V", (0.0, 0.25, 0.1297)), ("O", (0.1474, 0.5077, 0.2085)),
               ("O", (0.2607, 0.3809, 0.4500))),
        density=6.95, density_note="handbook density",
        reference=Reference(("Sleight, A. W.", "Chen, H.-y.", "Ferretti, A.", "Cox, D. E."),
                            "Materials Research Bulletin", 1979, "14", "1571",
                            "Crystal growth and structure of BiVO4"),
        notes=("monoclinic scheelite type, unique axis c",),
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
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full symbol not available")
        group = SpaceGroup(entry.spacegroup)
    ref = entry.reference
    a, b, c, alpha, beta, gamma = entry.cell
    unit = Composition(entry.formula)
    lines = [
        f"# bandflow bulk library: {entry.name}" + (f" ({entry.mineral})" if entry.mineral else ""),
        "# Written by tools/build_bulk_library.py from the published structure; edit the table there,",
        "# not this file.",
        f"# Source: {ref.one_line()}",
        f"# Density: {entry.recorded_density()} g/cm3 ({entry.density_note})",
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
    ]
    if ref.first_page:
        lines.append(f"_journal_page_first {ref.first_page}")
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
        f"_cell_formula_units_Z {entry.z}",
        f"_exptl_crystal_density_diffrn {entry.recorded_density()}",
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
    if expected.composition != Composition(entry.formula) * entry.z:
        problems.append(f"cell holds {expected.composition.formula}, not Z={entry.z} x {entry.formula}")
    if len(read_back) != len(expected):
        problems.append(f"{len(read_back)} sites read back, {len(expected)} expected")
    elif not StructureMatcher(primitive_cell=False, scale=False).fit(read_back, expected):
        problems.append("structure read back differs from the expanded one")
    if read_back.composition.reduced_formula != Composition(entry.formula).reduced_formula:
        problems.append(f"formula {read_back.composition.reduced_formula} != {entry.formula}")
    return problems


def markdown_table(entries: list[Entry]) -> str:
    """The library table of ``docs/bulk-library.md``."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    rows = ["| name | formula | space group | atoms/primitive | density (g/cm3) | source |",
            "|---|---|---|---|---|---|"]
    for entry in sorted(entries, key=lambda e: e.name):
        structure = entry.structure()
        n_primitive = len(SpacegroupAnalyzer(structure, symprec=1e-3).find_primitive())
        density = f"{entry.recorded_density()}" + ("" if entry.density is not None else " (X-ray)")
        rows.append(f"| {entry.name} | {structure.composition.reduced_formula} | {entry.hm_symbol} "
                    f"({entry.it_number}) | {n_primitive} | {density} | {entry.reference.one_line()} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of the entries to build (default: all)")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of docs/bulk-library.md")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.only or ()) - {e.name for e in ENTRIES}):
        print(f"error: no library entry named {', '.join(unknown)}", file=sys.stderr)
        return 2
    entries = [e for e in ENTRIES if not args.only or e.name in args.only]
    if args.table:
        print(markdown_table(entries))
        return 0
    LIBRARY_DIR.mkdir(parents=True, exist_ok=True)
    failed = False
    for entry in entries:
        path = LIBRARY_DIR / f"{entry.name}.cif"
        text = cif_text(entry)
        with tempfile.TemporaryDirectory() as scratch:  # checked before it replaces the library's file
            candidate = Path(scratch) / path.name
            candidate.write_text(text)
            problems = check_written(entry, candidate)
        if not problems:
            with replaced_atomically(path) as written:
                written.write_text(text)
        structure = entry.structure()
        status = "ok" if not problems else "; ".join(problems)
        deviation = 100 * (structure.density / entry.recorded_density() - 1)
        print(f"{entry.name:<18} {len(structure):>4} atoms  density {structure.density:6.3f} "
              f"(recorded {entry.recorded_density()}, {deviation:+.1f} %)  {status}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    exit_from_script(main)
