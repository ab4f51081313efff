"""Campaign specs and protocols: validation gives one clear line."""

from pathlib import Path

import pytest

from bandflow.errors import BandflowError
from bandflow.protocols import get_protocol
from bandflow.spec import load_spec, select_bulks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_validate(path):
    spec = load_spec(path)
    assert spec.bulks
    assert spec.protocol_settings.name == spec.protocol


def test_quickstart_is_fast_mgo():
    spec = load_spec(ROOT / "workflows" / "quickstart.yaml")
    assert [b.bulk for b in spec.bulks] == ["MgO"]
    assert spec.protocol == "fast" and spec.engine == "cp2k" and spec.max_index == 1
    # the demo's one shortcut, explained in the spec and docs/quickstart.md: the first bulk Γ cell
    assert spec.engine_settings == {"bulk": {"max_sampling_error": None}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bulks: []", "bulks"),
        ("bulks: [MgO]\nmax_index: 0", "max_index"),
        ("bulks: [MgO]\nprotocol: turbo", "unknown protocol 'turbo'"),
        ("bulks: [MgO]\nengine: gaussian", "engine"),
        ("bulks: [MgO]\ncolour: red", "colour"),
        ("- just\n- a list", "expected a mapping"),
        ("bulks: [MgO\n", "not valid YAML"),
    ],
)
def test_bad_specs_give_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BandflowError) as info:
        load_spec(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(BandflowError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_protocol_lookup():
    assert get_protocol("fast").slab_relax == "chgnet"
    assert get_protocol("accurate", "vasp").slab_functional == "PBEsol"
    with pytest.raises(BandflowError):
        get_protocol("fast", "vasp")


def test_select_bulks_keeps_each_bulks_own_selection():
    spec = load_spec(ROOT / "workflows" / "ternary_oxides.yaml")
    picked = select_bulks(spec, ["LiGaO2", "Mg2SiO4"])
    assert [(b.bulk, b.max_index) for b in picked.bulks] == [("LiGaO2", 2), ("Mg2SiO4", None)]
    assert picked.name == spec.name and select_bulks(spec, []) is spec
    with pytest.raises(BandflowError, match="^ZnO: not a bulk of campaign 'ternary_oxides'"):
        select_bulks(spec, ["ZnO"])
