"""The same cut of isostructural bulks, paired by its face (bandflow.isostructural)."""

from __future__ import annotations

import pytest

from bandflow.bulk import load_bulk
from bandflow.dataset import datasheet_markdown
from bandflow.isostructural import isostructural_groups, isostructural_markdown, species_roles
from bandflow.schemas import SurfaceDoc
from bandflow.surfaces import enumerate_surfaces


def cut_docs(bulk: str, ips: dict[tuple, float] | None = None, swap: tuple | None = None) -> list[SurfaceDoc]:
    """One successful document per nonpolar cut of a library bulk (max index 1); IP 5 eV + 0.3 eV per cut in
    enumeration order unless ``ips`` gives it; ``swap`` exchanges the termination labels of one Miller index."""
    oxide = load_bulk(bulk)
    entries = [e for e in enumerate_surfaces(oxide, 1) if e.nonpolar]
    (symbol, number), docs = oxide.spacegroup(), []
    for i, entry in enumerate(entries):
        termination = entry.termination
        if swap is not None and entry.miller_index == swap:
            termination = 1 - termination
        key = (entry.miller_index, entry.termination)
        ip = (ips or {}).get(key, 5.0 + 0.3 * i)
        slab = entry.slab.as_dict()
        formula = entry.slab.composition.reduced_formula
        docs.append(SurfaceDoc(
            surface_id=f"{bulk}-{''.join(map(str, entry.miller_index))}-t{entry.termination}", bulk_name=bulk,
            formula=formula, spacegroup_number=number, spacegroup_symbol=symbol, miller_index=entry.miller_index,
            termination=str(termination), structure_unrelaxed=slab, structure_relaxed=slab, ip=ip, ea=ip - 4.0,
            bulk_vbm=0.0, bulk_cbm=4.0, engine="cp2k", functional_bulk="HSE06", functional_slab="PBE",
            protocol="fast", state="successful"))
    return docs


@pytest.fixture(scope="module")
def zirconia() -> tuple[list[SurfaceDoc], list[SurfaceDoc]]:
    return cut_docs("ZrO2-monoclinic"), cut_docs("HfO2-monoclinic")


def test_elements_are_paired_by_amount_then_electronegativity():
    assert species_roles("MgTiO3") == ["Mg", "Ti", "O"] and species_roles("MgSiO3") == ["Mg", "Si", "O"]
    assert species_roles("BeAl2O4") == ["Be", "Al", "O"] and species_roles("Mg2SiO4") == ["Si", "Mg", "O"]


def test_the_same_cut_is_found_in_both_bulks_whatever_its_thickness_and_label(zirconia):
    zro2, hfo2 = zirconia
    shifted = {d.surface_id: d.ip for d in zro2}
    hfo2 = [d.model_copy(update={"ip": shifted[d.surface_id.replace("HfO2", "ZrO2")] + 0.2})
            if d.surface_id.replace("HfO2", "ZrO2") in shifted else d for d in hfo2]
    (group,) = isostructural_groups([*zro2, *hfo2])
    assert group.bulks == ["HfO2-monoclinic", "ZrO2-monoclinic"]  # the one with more surfaces first
    pairs = {docs["HfO2-monoclinic"].surface_id: docs["ZrO2-monoclinic"].surface_id for _, docs in group.cuts}
    # every ZrO2 cut found, each with the HfO2 cut of its own index and termination; (010) is 24 atoms thick in
    # ZrO2 and 36 in HfO2; HfO2's (011) t1 has no ZrO2 counterpart here
    assert pairs == {h.surface_id: h.surface_id.replace("HfO2", "ZrO2") for h in hfo2
                     if h.surface_id.replace("HfO2", "ZrO2") in shifted}
    assert len(group.cuts) == len(zro2) == 16
    same, compared = group.concordant_pairs()
    assert same == compared == 16 * 15 // 2  # the same order: every IP shifted by 0.2 eV
    assert group.spread_between_bulks() == pytest.approx([0.2] * 16)
    # two cuts exchanged in one bulk: the pairs they form with the 14 others, and with each other, may flip
    ips = {d.surface_id: d.ip for d in hfo2}
    first, last = "HfO2-monoclinic-100-t0", "HfO2-monoclinic-11-1-t1"
    ips[first], ips[last] = ips[last], ips[first]
    (group,) = isostructural_groups([*zro2, *[d.model_copy(update={"ip": ips[d.surface_id]}) for d in hfo2]])
    assert group.concordant_pairs()[0] < compared


def test_terminations_of_one_index_are_told_apart_by_their_faces_not_their_labels(zirconia):
    zro2, _ = zirconia
    relabelled = cut_docs("HfO2-monoclinic", swap=(1, 0, 0))  # HfO2's (100) t0 now says t1 and back
    (group,) = isostructural_groups([*zro2, *reversed(relabelled)])  # and t1's face comes first
    pairs = {docs["ZrO2-monoclinic"].surface_id: docs["HfO2-monoclinic"] for _, docs in group.cuts}
    for termination in (0, 1):
        hfo2 = pairs[f"ZrO2-monoclinic-100-t{termination}"]
        assert hfo2.surface_id == f"HfO2-monoclinic-100-t{termination}"  # the same face
        assert hfo2.termination == str(1 - termination)  # whatever its label


def test_groups_need_two_bulks_and_enough_shared_cuts_and_are_written_as_a_table(zirconia):
    zro2, hfo2 = zirconia
    assert isostructural_groups(zro2) == []  # one bulk of the type
    assert isostructural_groups([*zro2[:2], *hfo2]) == []  # two cuts in common: fewer than MIN_SHARED_CUTS
    assert isostructural_groups([*zro2, *cut_docs("SnO2")]) == []  # another structure type: no group
    fluorite, antifluorite = cut_docs("CeO2"), cut_docs("Li2O")
    assert {d.spacegroup_number for d in [*fluorite, *antifluorite]} == {225}
    assert isostructural_groups([*fluorite, *antifluorite], min_cuts=1) == []  # cations and O on swapped sites
    assert isostructural_groups([*cut_docs("TiO2-rutile"), *cut_docs("SnO2")])[0].bulks == ["SnO2", "TiO2-rutile"]
    lines = isostructural_markdown(isostructural_groups([*zro2, *hfo2]), {"ZrO2-monoclinic": "ZrO2",
                                                                          "HfO2-monoclinic": "HfO2"})
    assert lines[0].startswith("**P2_1/c AB2: HfO2, ZrO2**, 16 cuts in all of them.")
    assert "120 of 120 pairs of cuts are in the same IP order in both bulks" in lines[0]
    assert lines[2] == "| cut | IP HfO2 | IP ZrO2 | range |"
    assert lines[4].startswith("| (001) t0 | ") and len(lines) == 4 + 16 + 1


def test_the_datasheet_has_the_section_only_where_a_type_has_bulks_to_compare(zirconia):
    zro2, hfo2 = zirconia
    sheet = datasheet_markdown("t", [*zro2, *hfo2], {}, "m")
    section = sheet.split("## The same cut in isostructural bulks\n\n")[1].split("\n## ")[0]
    assert "**P2_1/c AB2: HfO2, ZrO2**, 16 cuts in all of them." in section and section.endswith("|\n")
    assert "\n\n## Outliers (flagged, kept)" in sheet
    assert "isostructural" not in datasheet_markdown("t", zro2, {}, "m")


def test_the_figure_has_a_panel_per_type_and_refuses_nothing_to_plot(zirconia, tmp_path):
    from bandflow.errors import BandflowError
    from bandflow.plotting import plot_isostructural_cuts

    groups = isostructural_groups([*zirconia[0], *zirconia[1], *cut_docs("TiO2-rutile"), *cut_docs("SnO2")])
    path = plot_isostructural_cuts(groups, tmp_path / "cuts.png", {"ZrO2-monoclinic": "ZrO2"})
    assert path.read_bytes().startswith(b"\x89PNG") and len(groups) == 2
    with pytest.raises(BandflowError, match="no structure type with shared cuts"):
        plot_isostructural_cuts([], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
