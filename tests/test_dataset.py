"""Reference-dataset export: round trip, datasheet numbers, outliers, CLI errors."""

import gzip
import json
import time
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from bandflow.bulk import load_bulk
from bandflow.cli import app
from bandflow.dataset import (
    PLANAR_PROFILE,
    PublishedValue,
    bulk_cell,
    bulk_edges_issue,
    bulk_labels,
    dataset_summary,
    datasheet_markdown,
    export_surfaces,
    ip_spread_issue,
    k_correction_of_gap,
    load_literature,
    outlier_reason,
    read_surfaces,
    recorded_time_lines,
    recorded_times,
)
from bandflow.errors import BandflowError
from bandflow.plotting import plot_ip_ea_by_formula
from bandflow.schemas import SurfaceDoc
from bandflow.store import BandflowStore
from bandflow.surfaces import enumerate_surfaces

SLAB = Structure(Lattice.tetragonal(2.98, 20.0), ["Mg", "O"], [[0, 0, 0.5], [0.5, 0.5, 0.5]]).as_dict()


def doc(surface_id, formula="MgO", ip=7.5, ea=1.2, n_cations=1, state="successful"):
    good = state == "successful"
    return SurfaceDoc(
        surface_id=surface_id, bulk_name=formula, formula=formula, miller_index=(1, 0, 0), termination="0",
        structure_unrelaxed=SLAB, structure_relaxed=SLAB, ip=ip if good else None, ea=ea if good else None,
        bulk_vbm=1.0, bulk_cbm=1.0 + (ip - ea), engine="cp2k", functional_bulk="HSE06", functional_slab="PBE",
        protocol="fast", state=state, failure_reason=None if good else "SCF did not converge",
        extra={"profile": {"z": [0.0, 1.0], "planar": [1.0, 2.0], "macroscopic": [1.5, 1.5], "slab_center": 0.5}},
    )


def test_round_trip_without_profiles(tmp_path):
    docs = [doc("a"), doc("b", ip=8.0, ea=1.0)]
    path = tmp_path / "ref" / "binary.jsonl.gz"
    assert export_surfaces(docs, path) == 2
    with gzip.open(path, "rt") as handle:
        first = json.loads(handle.readline())
    assert "profile" not in first["extra"] and first["ip"] == 7.5
    back = read_surfaces(path)
    assert [d.surface_id for d in back] == ["a", "b"]
    assert back[0].structure_relaxed == docs[0].structure_relaxed
    assert not list(tmp_path.glob("ref/.*"))  # no temporary file left
    export_surfaces(docs, path, keep_profiles=PLANAR_PROFILE)  # what the reference dataset keeps
    assert read_surfaces(path)[0].extra["profile"] == {"z": [0.0, 1.0], "planar": [1.0, 2.0], "slab_center": 0.5}


def test_export_is_byte_for_byte_reproducible(tmp_path):
    docs = [doc("a"), doc("b")]
    first, second = tmp_path / "a" / "ref.jsonl.gz", tmp_path / "b" / "ref.jsonl.gz"
    export_surfaces(docs, first)
    time.sleep(1.1)  # gzip headers carry a timestamp in seconds by default
    export_surfaces(docs, second)  # another directory, another moment, another temporary name
    assert first.read_bytes() == second.read_bytes()
    export_surfaces(docs[:1], first)  # rewritten in place
    assert [d.surface_id for d in read_surfaces(first)] == ["a"]


def test_summary_and_outliers():
    docs = [doc("a"), doc("b", ip=13.0, ea=6.0), doc("c", ip=6.0, ea=-1.5),
            doc("d", formula="ZnAl2O4", n_cations=2, ip=8.0, ea=3.0), doc("e", state="failed")]
    summary = dataset_summary(docs)
    assert summary["n_successful"] == 4 and summary["n_failed"] == 1
    assert summary["n_binary"] == 3 and summary["n_ternary"] == 1
    assert summary["ip"]["max"] == 13.0 and summary["ea"]["min"] == -1.5
    assert {o["surface_id"] for o in summary["outliers"]} == {"b", "c"}
    assert "IP 13.00" in outlier_reason(docs[1]) and "EA -1.50" in outlier_reason(docs[2])
    # a flagged value says which species ends the slab (SLAB: Mg and O in one plane)
    assert outlier_reason(docs[2]).endswith("; cations and oxygen end the relaxed slab (outermost cation +0.00 Å "
                                            "over the outermost O)")
    assert summary["failures"] == [{"surface_id": "e", "bulk": "MgO", "reason": "SCF did not converge"}]


def test_a_flagged_value_says_which_species_ends_the_slab():
    # Mg 0.6 Å over the top O plane and 0.6 Å under the bottom one: a cation-terminated slab
    slab = Structure(Lattice.tetragonal(3.0, 30.0), ["Mg", "O", "Mg", "O", "O", "Mg"],
                     [[0, 0, 9.4], [0.5, 0.5, 10.0], [0, 0, 12.0], [0.5, 0.5, 12.0], [0.5, 0, 14.0],
                      [0, 0.5, 14.6]], coords_are_cartesian=True).as_dict()
    low = doc("a", ip=6.3, ea=-1.8).model_copy(update={"structure_relaxed": slab})
    assert outlier_reason(low) == ("EA -1.80 eV below -1.0 eV; a cation ends the relaxed slab (outermost cation "
                                   "+0.60 Å over the outermost O)")
    assert outlier_reason(doc("b", ip=7.0, ea=1.0).model_copy(update={"structure_relaxed": slab})) is None
    sunk = Structure(Lattice.tetragonal(3.0, 30.0), ["O", "Mg", "O", "Mg"],
                     [[0, 0, 9.4], [0.5, 0.5, 10.0], [0, 0, 12.0], [0.5, 0.5, 11.4]], coords_are_cartesian=True)
    assert outlier_reason(doc("d", ip=13.0).model_copy(update={"structure_relaxed": sunk.as_dict()})).endswith(
        "; oxygen ends the relaxed slab (outermost cation -0.60 Å over the outermost O)")
    no_oxygen = Structure(Lattice.tetragonal(3.0, 30.0), ["Mg"], [[0, 0, 0.5]]).as_dict()
    assert outlier_reason(doc("c", ea=-1.8).model_copy(update={"structure_relaxed": no_oxygen})) == \
        "EA -1.80 eV below -1.0 eV"


def test_a_large_k_point_correction_of_the_bulk_gap_is_flagged():
    trusted, small_cell = doc("a"), doc("b")  # bulk gap 6.3 eV after the correction
    trusted.extra["bulk"] = {"gap": 6.3, "vbm_gamma": 1.1, "cbm_gamma": 7.1}  # Γ-only gap 6.0: corrected by +0.3
    small_cell.extra["bulk"] = {"gap": 6.3, "vbm_gamma": 1.5, "cbm_gamma": 6.0}  # Γ-only gap 4.5: corrected by +1.8
    assert k_correction_of_gap(trusted) == pytest.approx(0.3) and outlier_reason(trusted) is None
    assert "moved the bulk gap by +1.80 eV" in outlier_reason(small_cell)
    assert k_correction_of_gap(doc("c")) is None  # not recorded (e.g. VASP with k-points)
    both = doc("d", ip=13.0, ea=6.7)
    both.extra["bulk"] = {"gap": 6.3, "vbm_gamma": 1.5, "cbm_gamma": 6.0}
    assert outlier_reason(both).startswith("IP 13.00 eV outside") and "; the PBE k-point" in outlier_reason(both)
    trusted.extra["bulk"]["gamma_sampling_error"] = 0.183  # eV/atom, CaO in 16 atoms
    assert "183.0 meV/atom off the k-mesh one" in outlier_reason(trusted)
    trusted.extra["bulk"]["gamma_sampling_error"] = -0.183
    assert "183.0 meV/atom off" in outlier_reason(trusted)
    trusted.extra["bulk"]["gamma_sampling_error"] = 0.030004  # K2O: its widest cell within 64 atoms
    assert "30.0 meV/atom off the k-mesh one (more than 30)" in outlier_reason(trusted)
    trusted.extra["bulk"]["gamma_sampling_error"] = 0.018
    assert outlier_reason(trusted) is None


def test_a_doubtful_slab_centre_is_flagged():
    aligned = doc("a").model_copy(update={"period": 2.1, "period_source": "ideal slab", "center_variation": 0.1})
    assert outlier_reason(aligned) is None
    assert "varies by 0.86 eV within half a period" in outlier_reason(
        aligned.model_copy(update={"center_variation": 0.86}))
    # an older document, aligned over its relaxed atoms' period: judged against the ideal slab's
    layers = [[0.5, 0.5, z / 30] for z in (10.0, 12.1, 14.2, 16.3, 18.4)]
    ideal = Structure(Lattice.tetragonal(3.0, 30.0), ["Mg"] * 5, layers)
    relaxed = ideal.copy()
    relaxed.translate_sites([0], [0, 0, -0.01], frac_coords=False)
    old = doc("b").model_copy(update={"structure_unrelaxed": ideal.as_dict(), "structure_relaxed": relaxed.as_dict()})
    assert old.period_source is None and outlier_reason(old) is None  # about 2.1 Å from both: nothing to flag
    for i, dz in ((0, -0.25), (4, 0.25)):  # the outer layers moved out: the detected period follows them
        relaxed.translate_sites([i], [0, 0, dz], frac_coords=False)
    old = old.model_copy(update={"structure_relaxed": relaxed.as_dict()})
    assert outlier_reason(old).endswith("the ideal slab's is 2.10 Å")  # it has a profile to re-take from
    old = old.model_copy(update={"extra": {}})
    assert outlier_reason(old).endswith("the ideal slab's is 2.10 Å (not re-taken: the document has no potential profile)")
    given = doc("c").model_copy(update={"period": 2.1, "period_source": "given", "center_variation": 0.9})
    assert "varies by 0.90 eV" in outlier_reason(given)  # whatever the period's source


def test_an_ip_far_from_the_median_of_its_bulk_is_flagged_with_cation_heights_and_broken_bonds():
    cuts = {(e.miller_index, e.termination): e.slab for e in enumerate_surfaces(load_bulk("Sb2O3"), 1) if e.nonpolar}
    ips = {((1, 0, 0), 0): 6.6, ((1, 1, 0), 0): 6.6, ((1, 1, 1), 0): 6.5, ((1, 1, 1), 1): 8.7}
    docs = [doc(f"{hkl}{t}", formula="Sb2O3", ip=ip, ea=2.0).model_copy(update={
        "bulk_name": "Sb2O3", "structure_unrelaxed": cuts[hkl, t].as_dict(), "structure_relaxed": cuts[hkl, t].as_dict()}) for (hkl, t), ip in ips.items()]
    reason = ip_spread_issue(docs[3], docs)
    assert reason.startswith("IP 8.70 eV, 2.10 eV above the median of its bulk's 4 surfaces (6.60 eV")
    assert "breaks 5.6 cation–O bonds per nm² of face, the others 0.0–3.2" in reason  # a cut through Sb4O6 cages
    assert "its outermost cation lies -0.99 Å over the outermost O (relaxed; the others -0.48 to +0.59 Å)" in reason
    assert [o["surface_id"] for o in dataset_summary(docs)["outliers"]] == [docs[3].surface_id]
    assert ip_spread_issue(docs[3], docs[2:]) is None  # two surfaces: no median to stand apart from
    near = docs[3].model_copy(update={"ip": 8.5})
    assert ip_spread_issue(near, [*docs[:3], near]) is None  # 1.9 eV above: within MAX_IP_FROM_MEDIAN
    elsewhere = [d.model_copy(update={"bulk_name": "no-such-file"}) for d in docs]
    assert ip_spread_issue(elsewhere[3], elsewhere).endswith("to +0.59 Å)")  # no bulk: no bonds, still heights
    metal = Structure(Lattice.tetragonal(3.0, 20.0), ["Mg", "Mg"], [[0, 0, 0.4], [0.5, 0.5, 0.5]]).as_dict()
    no_oxygen = [elsewhere[0].model_copy(update={"structure_relaxed": metal}), *elsewhere[1:]]
    assert ip_spread_issue(elsewhere[3], no_oxygen).endswith("a surface dipole of its own")  # no height either
    polymorph = [d.model_copy(update={"bulk_name": "Sb2O3-other"}) for d in docs[:3]]
    assert not dataset_summary([docs[3], *polymorph])["outliers"]  # another bulk of the formula is not a sibling


def test_corrupt_dataset_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(doc("a").model_dump(mode="json")) + "\n{not json}\n")
    with pytest.raises(BandflowError, match="bad.jsonl:2"):
        read_surfaces(path)


def test_export_command(tmp_path, settings_env):
    settings_env(BANDFLOW_DATA_DIR=str(tmp_path / "data"))
    runner = CliRunner()
    empty = runner.invoke(app, ["export", str(tmp_path / "x.jsonl.gz")])
    assert empty.exit_code != 0 and not (tmp_path / "x.jsonl.gz").exists()
    with BandflowStore.from_settings() as store:
        store.upsert_surface(doc("a"))
        store.upsert_surface(doc("f", state="failed"))
    result = runner.invoke(app, ["export", str(tmp_path / "x.jsonl.gz"), "--protocol", "fast"])
    assert result.exit_code == 0, result.output
    assert [d.surface_id for d in read_surfaces(tmp_path / "x.jsonl.gz")] == ["a"]


def test_datasheet_lists_counts_formulas_outliers_and_failures(tmp_path):
    docs = [doc("a"), doc("b", ip=13.0, ea=6.0), doc("d", formula="ZnAl2O4", n_cations=2, ip=8.0, ea=3.0),
            doc("e", state="failed")]
    docs[0].extra["bulk"] = {"n_atoms": 54, "gamma_sampling_error": -0.0183}
    text = datasheet_markdown("Reference", docs, {"binary.jsonl.gz": 2}, "Method text.",
                              timing=["- 40 s per surface"], remaining=["- 7 surfaces"],
                              literature={"MgO": [PublishedValue(ip=7.7, source="Ref A"),
                                                  PublishedValue(note="sign only", source="Ref B"),
                                                  PublishedValue(ea=0.5, note="film", source="Ref A"),
                                                  PublishedValue(gap=7.8, note="optical", source="Ref B")]})
    assert text.startswith("# Reference")
    assert "| `binary.jsonl.gz` | 2 |" in text and "Method text." in text and "- 40 s per surface" in text
    # mean IP (7.5 + 13.0) / 2 = 10.25, 2.55 above the published 7.7; references numbered once each
    assert ("| MgO | 2 | 7.50 – 13.00 | 1.20 – 6.00 | – | 7.80 (optical) [2] | 54 (18) | 7.70 / – [1]; (sign only) [2]; "
            "– / 0.50 (film) [1] | +2.55 |") in text  # a published gap has its own column
    assert "| ZnAl2O4 | 1 | 8.00 – 8.00 | 3.00 – 3.00 | – |  | – |" in text  # no bulk output recorded
    docs[0].extra["bulk"]["gamma_cell_width"] = 8.327
    assert bulk_cell(docs[0]) == "54, 8.33 Å (18)"
    assert "Published values: [1] Ref A; [2] Ref B." in text
    assert "| ZnAl2O4 | 1 |" in text and "Al2ZnO4" not in text  # the bulk name's spelling, not pymatgen's
    assert "`b`: IP 13.00 eV outside" in text and "`e`: SCF did not converge" in text
    # a failed bulk job fails its surfaces with one reason: one line for the bulk, one for a surface of its own
    shared = [doc(f"g{i}", formula="Ga2O3", state="failed") for i in range(3)] + [doc("h", formula="Ga2O3")]
    shared[0].failure_reason = "slab_potential: SCF not converged"
    failures = datasheet_markdown("R", [*shared, *docs], {}, "M").split("## Failures (not in the files)")[1]
    assert failures.strip().splitlines() == ["- `g0`: slab_potential: SCF not converged",
                                             "- Ga2O3, 2 surfaces: SCF did not converge",
                                             "- `e`: SCF did not converge"]
    png = plot_ip_ea_by_formula([d.model_dump() for d in docs if d.state == "successful"], tmp_path / "s.png",
                                published={"MgO": [(7.7, None), (None, 0.5)], "CaO": [(7.5, 0.7)]})
    assert png.stat().st_size > 10_000
    with pytest.raises(BandflowError, match="no surfaces"):
        plot_ip_ea_by_formula([], tmp_path / "t.png")


def test_polymorphs_get_a_row_each_with_their_own_gap():
    rutile = [doc(f"r{i}", formula="TiO2", ip=7.0 + i, ea=4.0).model_copy(update={"bulk_name": "TiO2-rutile", "bulk_gap": 3.0})
              for i in range(2)]
    anatase = doc("a", formula="TiO2", ip=7.5, ea=4.3).model_copy(update={"bulk_name": "TiO2-anatase", "bulk_gap": 3.2})
    rows = dataset_summary([*rutile, anatase, doc("m")])["per_formula"]
    assert list(rows) == ["MgO", "TiO2-anatase", "TiO2-rutile"]  # one bulk of MgO: named by its formula
    assert rows["TiO2-rutile"]["n"] == 2 and rows["TiO2-anatase"]["gap"] == pytest.approx(3.2)
    assert rows["TiO2-rutile"]["gap"] == pytest.approx(3.0) and rows["TiO2-anatase"]["formula"] == "TiO2"
    text = datasheet_markdown("R", [*rutile, anatase], {}, "", literature={"TiO2": [PublishedValue(ip=7.96, source="K")]})
    assert "| TiO2-anatase | 1 | 7.50 – 7.50 |" in text and "| -0.46 |" in text  # the formula's published IP
    assert "per source with IPs" not in text  # two rows from one source: too few to summarise


def test_a_source_with_ips_for_three_rows_gets_its_mean_offset():
    docs = [doc("m", ip=7.0), doc("c", formula="CaO", ip=5.0), doc("s", formula="SrO", ip=4.0)]
    literature = {"MgO": [PublishedValue(ip=8.0, source="K"), PublishedValue(ip=7.5, source="B"),
                          PublishedValue(ip=8.5, source="B")],  # two IPs from B for one row: one row, mean
                  "CaO": [PublishedValue(ip=6.5, source="K")], "SrO": [PublishedValue(ip=4.5, source="K")]}
    text = datasheet_markdown("R", docs, {}, "", literature=literature)
    # K: −1.5 (CaO), −1.0 (MgO), −0.5 (SrO); B has one row only
    assert ("per source with IPs for at least 3 rows of the table:\n\n- [1]: 3 rows, mean -1.00 eV, median -1.00 eV, "
            "from -1.50 to -0.50 eV\n\n") in text
    assert "- [2]:" not in text
    literature["CaO"].append(PublishedValue(ip=5.5, source="B"))
    literature["SrO"].append(PublishedValue(ip=3.0, source="B"))
    text = datasheet_markdown("R", docs, {}, "", literature=literature)
    assert "- [2]: 3 rows, mean -0.17 eV, median -0.50 eV, from -1.00 to +1.00 eV" in text  # MgO: mean of −0.5, −1.5
    unrelaxed = doc("u", ea=-1.8).model_copy(update={"structure_relaxed": None})
    assert "end the unrelaxed slab" in outlier_reason(unrelaxed)


def test_rows_are_labelled_with_the_formula_as_the_bulk_name_spells_it():
    bivo4 = doc("b", formula="VBiO4").model_copy(update={"bulk_name": "BiVO4"})  # pymatgen's order: V before Bi
    alpha = doc("a", formula="Bi2O3").model_copy(update={"bulk_name": "Bi2O3-alpha"})
    other = doc("o", formula="MgO").model_copy(update={"bulk_name": "periclase"})  # a name that is no formula
    assert bulk_labels([bivo4, alpha, other]) == {"BiVO4": "BiVO4", "Bi2O3-alpha": "Bi2O3", "periclase": "MgO"}
    assert list(dataset_summary([bivo4, alpha, other])["per_formula"]) == ["Bi2O3", "MgO", "BiVO4"]


def test_literature_file_is_read_keyed_by_reduced_formula_and_checked(tmp_path):
    path = tmp_path / "literature.yaml"
    path.write_text("sources: {a: 'Author, J. 1, 2 (2020)'}\n"
                    "values:\n  BiVO4: [{ip: 7.2, note: '(010)', source: a}]\n  MgO: [{ea: -0.6, source: a}]\n")
    literature = load_literature(path)
    assert set(literature) == {"VBiO4", "MgO"}  # keyed like the documents
    assert literature["VBiO4"][0] == PublishedValue(ip=7.2, note="(010)", source="Author, J. 1, 2 (2020)")
    path.write_text("sources: {a: x}\nvalues:\n  MgO: [{ip: 7.2, source: b}]\n")
    with pytest.raises(BandflowError, match="MgO: source 'b' is not in 'sources'"):
        load_literature(path)
    path.write_text("sources: {a: x}\nvalues:\n  MgO: [{ip: seven, source: a}]\n")
    with pytest.raises(BandflowError, match="MgO: 1 validation error"):
        load_literature(path)
    path.write_text("MgO: 'IP 7.2'\n")  # the old free-text format
    with pytest.raises(BandflowError, match="expected the keys 'sources' and 'values'"):
        load_literature(path)


def test_the_shipped_literature_file_is_valid():
    literature = load_literature(Path(__file__).parents[1] / "data" / "reference" / "literature.yaml")
    assert len(literature) >= 20 and all(v.source for values in literature.values() for v in values)


def test_recorded_times_spread_each_bulk_job_over_its_surfaces():
    docs = [doc("a"), doc("b"), doc("c"), doc("z", formula="ZnO"), doc("f", state="failed")]
    assert recorded_times(docs) == {} and recorded_time_lines(docs) == []
    for d, slab in zip(docs[:3], (40.0, 60.0, 50.0), strict=True):
        d.extra["wall_time"] = {"bulk_edges": 1800.0, "slab_potential": slab}
    docs[3].extra["wall_time"] = {"bulk_edges": 3600.0}  # no slab time: the bulk is left out
    assert recorded_times(docs) == {"MgO": {"surfaces": 3, "bulk_seconds": 1800.0, "slab_seconds": 50.0,
                                            "seconds_per_surface": 650.0}}
    assert "3 surfaces of 1 bulk, 10.8 min per surface" in recorded_time_lines(docs)[0]
    docs[3].extra["wall_time"]["slab_potential"] = 400.0  # ZnO: 3600 + 400 s for its one surface
    lines = recorded_time_lines(docs)
    assert "4 surfaces of 2 bulks, 24.8 min per surface on average" in lines[0]  # (3 * 650 + 4000) / 4 s
    assert "| MgO | 3 | 30.0 | 50 | 10.8 |" in lines and "| ZnO | 1 | 60.0 | 400 | 66.7 |" in lines
    text = datasheet_markdown("Reference", docs, {"b.jsonl.gz": 4}, "Method.", timing=["- from the job store"])
    assert "## Time\n\n- from the job store\n\nComputing time recorded" in text


def test_datasheet_names_a_bulk_issue_once_and_keeps_each_surface_reason():
    docs = [doc("a"), doc("b", ip=13.0, ea=6.0), doc("c", formula="CaO")]
    for d in docs[:2]:  # the two MgO surfaces share a bulk output from a too small Γ cell
        d.extra["bulk"] = {"gamma_sampling_error": 0.183}
    summary = dataset_summary(docs)
    assert [o["surface_id"] for o in summary["outliers"]] == ["a", "b"]  # each still carries the bulk reason
    assert summary["bulk_flags"] == [{"bulk": "MgO", "n": 2, "reason": bulk_edges_issue(docs[0])}]
    assert summary["surface_flags"] == [{"surface_id": "b", "reason": "IP 13.00 eV outside 3.0–12.0 eV; cations and "
                                         "oxygen end the relaxed slab (outermost cation +0.00 Å over the outermost O)"}]
    text = datasheet_markdown("R", docs, {}, "")
    assert text.count("183.0 meV/atom") == 1 and "- MgO (2 surfaces): the Γ-only PBE energy" in text
    assert "- `b`: IP 13.00 eV outside 3.0–12.0 eV; cations and oxygen end" in text and "`a`" not in text
    assert "Bulks whose band edges" not in datasheet_markdown("R", docs[2:], {}, "")  # nothing to group


def test_a_bad_dataset_line_is_one_error_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"surface_id": "x", "ip": "high"}\n')
    with pytest.raises(BandflowError) as caught:
        read_surfaces(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: not a valid surface document (") and "more)" in message
    assert "\n" not in message
    path.write_text("{not json\n")
    with pytest.raises(BandflowError, match="bad.jsonl:1: not a valid surface document") as caught:
        read_surfaces(path)
    assert "\n" not in str(caught.value)
