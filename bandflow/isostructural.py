"""The same cut of isostructural bulks side by side: a consistency check of a surface dataset.

Bulks of one structure type (rutile TiO2, SnO2 and GeO2; monoclinic ZrO2 and HfO2) give the same set of
cuts: the same Miller index and termination, up to the lattice constants (not always the same slab
thickness, which is set in Å). Each such cut is computed independently, from its own bulk hybrid and slab
runs, so two things can be read from them at no cost:

- whether the ordering of the cuts by IP (the termination dependence, which spans eV within one bulk) is
  the same in every bulk of the type: a random failure of one calculation breaks it, a property of the
  terminations under the method keeps it;
- how far the same cut moves between bulks (chemistry, and the bulk edges), against how far the cuts of
  one bulk spread.

A reproduced ordering does not prove the method right: an artefact shared by a structure type (the
relaxation of one kind of termination, say) is reproduced too.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition, Structure

from bandflow.schemas import SurfaceDoc

#: Only groups with at least this many cuts in every bulk are compared (fewer say nothing of an ordering).
MIN_SHARED_CUTS = 3
#: A cut is known by this many outermost atoms of its top face ...
FACE_ATOMS = 8
#: ... atoms whose heights differ by less than this (Å) being level (ordered by role) ...
LEVEL = 0.05
#: ... and two cuts are the same only where their depths differ by at most this much (in units of the square
#: root of the in-plane cell's area: 0.1 is 0.5 Å on a 5 Å × 5 Å face).
MAX_DEPTH_DIFFERENCE = 0.1


@dataclass
class IsostructuralGroup:
    """Bulks of one structure type and the cuts found in all of them."""

    spacegroup: str
    prototype: str  # anonymised formula, as pymatgen writes it (AB2)
    bulks: list[str]  # bulk names, the one with most surfaces first
    #: per cut: a label (the first bulk's Miller index and termination) and each bulk's surface document
    cuts: list[tuple[str, dict[str, SurfaceDoc]]] = field(default_factory=list)

    def concordant_pairs(self) -> tuple[int, int]:
        """``(same, compared)``: pairs of cuts that two bulks order the same way by IP, over every pair of
        bulks (a tie counts as different)."""
        same = compared = 0
        for a, b in itertools.combinations(self.bulks, 2):
            for (_, one), (_, two) in itertools.combinations(self.cuts, 2):
                compared += 1
                same += (one[a].ip - two[a].ip) * (one[b].ip - two[b].ip) > 0
        return same, compared

    def spread_between_bulks(self) -> list[float]:
        """Per cut, the range of its IP over the bulks (eV)."""
        return [max(d.ip for d in docs.values()) - min(d.ip for d in docs.values()) for _, docs in self.cuts]

    def spread_between_cuts(self) -> list[float]:
        """Per bulk, the range of IP over the shared cuts (eV)."""
        return [max(docs[b].ip for _, docs in self.cuts) - min(docs[b].ip for _, docs in self.cuts)
                for b in self.bulks]


def _cut_label(doc: SurfaceDoc) -> str:
    return f"({''.join(str(i) for i in doc.miller_index)}) t{doc.termination}"


def species_roles(formula: str) -> list[str]:
    """The elements of ``formula`` in a fixed order of roles: by amount, then electronegativity (MgTiO3: Mg, Ti,
    O; BeAl2O4: Be, Al, O; Mg2SiO4: Si, Mg, O), so that two formulas of one prototype pair their elements by
    position (Mg with Mg, Si with Ti; Be with Si, Al with Mg)."""
    amounts = Composition(formula).reduced_composition
    return [el.symbol for el in sorted(amounts, key=lambda el: (amounts[el], el.X, el.symbol))]


def face_signature(doc: SurfaceDoc, n_atoms: int = FACE_ATOMS) -> tuple[tuple[int, ...], np.ndarray]:
    """The outermost ``n_atoms`` atoms of the unrelaxed slab's top face, highest first: their element roles
    (:func:`species_roles`; atoms level within :data:`LEVEL` Å in role order) and their depths below the
    highest atom along the surface normal, in units of the square root of the in-plane cell's area (so that
    bulks with other lattice constants compare)."""
    slab = Structure.from_dict(doc.structure_unrelaxed)
    a, b = slab.lattice.matrix[:2]
    face = np.cross(a, b)
    heights = slab.cart_coords @ (face / np.linalg.norm(face))
    role = {el: i for i, el in enumerate(species_roles(slab.composition.reduced_formula))}
    roles = np.array([role[site.specie.symbol] for site in slab])
    order = np.argsort(-heights, kind="stable")
    level = np.concatenate([[0], np.cumsum(-np.diff(heights[order]) > LEVEL)])  # runs of level atoms
    order = order[np.lexsort((roles[order], level))][:n_atoms]
    depths = (heights[order[0]] - heights[order]) / np.sqrt(np.linalg.norm(face))
    return tuple(int(r) for r in roles[order]), depths


def _pair_cuts(reference: list[SurfaceDoc], other: list[SurfaceDoc],
               faces: dict[str, tuple[tuple[int, ...], np.ndarray]]) -> dict[str, SurfaceDoc]:
    """Each reference surface's cut among ``other``'s, one to one: same Miller index, same roles of the
    outermost atoms, and of those the closest in depths (the terminations of one index often share their
    outermost roles and differ in depths, as ZrO2 (100) t0 and t1), within :data:`MAX_DEPTH_DIFFERENCE`."""
    candidates = []
    for ref in reference:
        roles, depths = faces[ref.surface_id]
        for doc in other:
            other_roles, other_depths = faces[doc.surface_id]
            if tuple(doc.miller_index) == tuple(ref.miller_index) and other_roles == roles:
                difference = float(np.max(np.abs(other_depths - depths)))
                if difference <= MAX_DEPTH_DIFFERENCE:
                    candidates.append((difference, ref.surface_id, doc))
    pairs: dict[str, SurfaceDoc] = {}
    used: set[str] = set()
    for _, ref_id, doc in sorted(candidates, key=lambda c: c[0]):
        if ref_id not in pairs and doc.surface_id not in used:
            pairs[ref_id] = doc
            used.add(doc.surface_id)
    return pairs


def isostructural_groups(docs: Sequence[SurfaceDoc], min_cuts: int = MIN_SHARED_CUTS) -> list[IsostructuralGroup]:
    """Groups of bulks with the same space group (known) and anonymised formula, with the cuts all of them have.

    A cut of one bulk is the same as one of another when both have the same Miller index and the same
    outermost atoms (:func:`face_signature`, paired one to one by :func:`_pair_cuts`). The slabs themselves
    are not compared: thicknesses are set in Å, so two bulks' slabs of one cut can have different numbers of
    layers, and their termination numbers need not agree. Only successful documents count; groups with
    fewer than ``min_cuts`` shared cuts are left out.
    """
    by_bulk: dict[str, list[SurfaceDoc]] = defaultdict(list)
    for doc in docs:
        if doc.state == "successful":
            by_bulk[doc.bulk_name].append(doc)
    # oxygen's role is part of the type: fluorite CeO2 and antifluorite K2O share space group and AB2 with
    # cations and O on swapped sites
    types: dict[tuple[int, str, int], list[str]] = defaultdict(list)
    for bulk, items in by_bulk.items():
        formula, number = items[0].formula, items[0].spacegroup_number
        if number:  # a bulk of unknown symmetry has no type to share
            types[(number, Composition(formula).anonymized_formula, species_roles(formula).index("O"))].append(bulk)
    groups = []
    for (_, prototype, _), bulks in sorted(types.items()):
        if len(bulks) < 2:
            continue
        bulks = sorted(bulks, key=lambda b: (-len(by_bulk[b]), b))
        faces = {d.surface_id: face_signature(d) for b in bulks for d in by_bulk[b]}
        reference = sorted(by_bulk[bulks[0]], key=lambda d: (tuple(d.miller_index), d.termination))
        pairs = {other: _pair_cuts(reference, by_bulk[other], faces) for other in bulks[1:]}
        group = IsostructuralGroup(spacegroup=reference[0].spacegroup_symbol or "", prototype=prototype, bulks=bulks)
        for doc in reference:
            if all(doc.surface_id in pairs[other] for other in bulks[1:]):
                group.cuts.append((_cut_label(doc), {bulks[0]: doc} | {o: pairs[o][doc.surface_id] for o in bulks[1:]}))
        if len(group.cuts) >= min_cuts:
            groups.append(group)
    return groups


def isostructural_markdown(groups: Sequence[IsostructuralGroup], labels: dict[str, str]) -> list[str]:
    """Datasheet lines: per group, one sentence of the three measures and a table of the shared cuts' IPs.

    ``labels`` names each bulk as the datasheet's per-formula table does.
    """
    lines: list[str] = []
    for group in groups:
        names = [labels.get(b, b) for b in group.bulks]
        same, compared = group.concordant_pairs()
        between_bulks, between_cuts = group.spread_between_bulks(), group.spread_between_cuts()
        lines += [
            f"**{group.spacegroup} {group.prototype}: {', '.join(names)}**, {len(group.cuts)} cuts in all of them. "
            f"The cuts of one bulk span {min(between_cuts):.2f}–{max(between_cuts):.2f} eV in IP; the same cut "
            f"differs between the bulks by {statistics.fmean(between_bulks):.2f} eV on average (at most "
            f"{max(between_bulks):.2f} eV); {same} of {compared} pairs of cuts are in the same IP order in "
            f"{'both bulks' if len(names) == 2 else 'each pair of bulks'}.", "",
            "| cut | " + " | ".join(f"IP {n}" for n in names) + " | range |",
            "|---|" + "---|" * (len(names) + 1),
        ]
        for (label, docs), spread in zip(group.cuts, between_bulks, strict=True):
            lines.append(f"| {label} | " + " | ".join(f"{docs[b].ip:.2f}" for b in group.bulks) + f" | {spread:.2f} |")
        lines.append("")
    return lines
