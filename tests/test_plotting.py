"""Band-alignment diagram and potential-profile figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bandflow.errors import BandflowError
from bandflow.plotting import formula_label, miller_label, plot_alignment, plot_potential_profile
from bandflow.potential import PotentialAnalysis

ENTRIES = [
    {"formula": "TiO2", "miller_index": (1, 1, 0), "ip": 7.6, "ea": 4.5, "ip_std": 0.15, "ea_std": 0.2},
    {"formula": "MgO", "miller_index": [1, 0, 0], "ip": 7.1, "ea": 2.3},
    {"formula": "ZnO", "miller_index": "1-10", "ip": 7.3, "ea": 4.2, "ip_std": None},
]


def test_labels():
    assert formula_label("SrTiO3") == "SrTiO$_{3}$"
    assert formula_label("Ga2O3") == "Ga$_{2}$O$_{3}$"
    assert miller_label((1, -1, 0)) == r"(1$\bar{1}$0)"
    assert miller_label("1-10") == r"(1$\bar{1}$0)"
    assert miller_label((1, 0, -12)) == r"(1,0,$\bar{12}$)"
    with pytest.raises(BandflowError, match="Miller"):
        miller_label((1, 0))


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_alignment_writes_figure(tmp_path, suffix, magic):
    path = plot_alignment(ENTRIES, tmp_path / f"alignment{suffix}")
    content = path.read_bytes()
    assert content.startswith(magic) and len(content) > 5000
    assert [p.name for p in tmp_path.iterdir()] == [f"alignment{suffix}"]  # no temporary file left
    if suffix == ".svg":
        text = content.decode()  # matplotlib's SVG keeps each text's source as a comment
        assert "O$_2$/H$_2$O" in text
        assert "TiO$_{2}$" in text and r"(1$\bar{1}$0)" in text
        no_redox = plot_alignment(ENTRIES, tmp_path / "plain.svg", water_redox=False).read_text()
        assert "O$_2$/H$_2$O" not in no_redox


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "no surfaces"),
        (None, "no surfaces"),
        ([{"formula": "MgO", "ip": 7.0, "ea": 2.0}], "miller_index"),
        ([{"formula": "MgO", "miller_index": (1, 0, 0), "ip": "x", "ea": 2.0}], "bad ip"),
        ([{"formula": "MgO", "miller_index": (1, 0, 0), "ip": 2.0, "ea": 7.0}], "EA > IP"),
        ([{"formula": "MgO", "miller_index": (1, 0, 0), "ip": 7.0, "ea": 2.0, "ea_std": -1}], "bad ea_std"),
        (["MgO"], "not a dict"),
    ],
)
def test_plot_alignment_rejects_bad_entries(tmp_path, entries, message):
    with pytest.raises(BandflowError, match=message):
        plot_alignment(entries, tmp_path / "alignment.png")
    assert not any(tmp_path.iterdir())


def test_plot_alignment_rejects_bad_path(tmp_path):
    with pytest.raises(BandflowError, match=".png or .svg"):
        plot_alignment(ENTRIES, tmp_path / "alignment.pdf")
    with pytest.raises(BandflowError, match="folder"):
        plot_alignment(ENTRIES, tmp_path / "missing" / "alignment.png")


def make_analysis(n=200, length=30.0):
    z = np.arange(n) * length / n
    planar = np.where(np.abs(z - 15) < 5, -8 + 3 * np.cos(2 * np.pi * z / 2.0), 4.0)
    return PotentialAnalysis(
        vacuum_level_top=4.0, vacuum_level_bottom=4.0, slab_center_average=-8.0, potential_step=12.0,
        period=2.0, axis=2, z=z, planar=planar, macroscopic=np.convolve(planar, np.ones(13) / 13, "same"),
        slab_center=15.0, slab_bounds=(10.0, 20.0), vacuum_top_range=(24.0, 27.0),
        vacuum_bottom_range=(28.5, 2.0), center_variation=0.0, plateau_tolerance=0.02, source="test",
    )


def test_plot_potential_profile(tmp_path):
    path = plot_potential_profile(make_analysis(), tmp_path / "profile.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000


def test_plot_potential_profile_rejects_empty(tmp_path):
    empty = dataclasses.replace(make_analysis(), z=np.array([]), planar=np.array([]), macroscopic=np.array([]))
    with pytest.raises(BandflowError, match="no profile"):
        plot_potential_profile(empty, tmp_path / "profile.png")
    assert not any(tmp_path.iterdir())
