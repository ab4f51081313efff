"""tools/relaxation_check.py: what it can do without running CP2K (document and job lookup, errors)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from bandflow.cp2k import Cp2kSlabStaticMaker
from bandflow.errors import BandflowError

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "relaxation_check.py"
TERNARY = ROOT / "data" / "reference" / "ternary_oxides_fast.jsonl.gz"
SURFACE = "MgTiO3-148-001-t1-29dc8518"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("relaxation_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finds_the_document_and_the_campaign_job_that_made_its_potential(tool):
    doc = tool.find_documents([TERNARY], [SURFACE])[SURFACE]
    assert doc.bulk_name == "MgTiO3" and doc.structure_relaxed
    jobs = tool.campaign_jobs(str(ROOT / "workflows" / "ternary_oxides.yaml"), doc)
    maker = jobs["slab_potential"].function.__self__
    assert isinstance(maker, Cp2kSlabStaticMaker) and maker.cutoff == 400.0  # the campaign's own settings
    with pytest.raises(BandflowError, match="MgTiO3: not a bulk of campaign .binary_oxides."):
        tool.campaign_jobs(str(ROOT / "workflows" / "binary_oxides.yaml"), doc)
    with pytest.raises(BandflowError, match="MgO-nothing"):
        tool.find_documents([TERNARY], [SURFACE, "MgO-nothing"])


def test_displacements_use_the_minimum_image(tool):
    a = Structure(Lattice.cubic(10.0), ["O", "O"], [[0.01, 0.5, 0.5], [0.5, 0.5, 0.5]])
    b = Structure(Lattice.cubic(10.0), ["O", "O"], [[0.99, 0.5, 0.5], [0.5, 0.5, 0.6]])
    assert np.allclose(tool.displacements(a, b), [0.2, 1.0])


def test_unknown_surface_is_one_error_line_and_nothing_written(tmp_path):
    result = subprocess.run([sys.executable, str(TOOL), str(ROOT / "workflows" / "ternary_oxides.yaml"),
                             "MgO-nothing", "--work-dir", str(tmp_path / "w")], capture_output=True, text=True)
    assert result.returncode == 2 and not (tmp_path / "w").exists()
    assert result.stderr.strip().splitlines()[-1].startswith("error: not in ")


def test_the_campaign_potential_aligned_again_gives_the_stored_ip(tool):
    """The alignment path of the check: the document's own potential profile and relaxed slab, aligned
    again with the bulk edges it holds, give back its IP and EA."""
    doc = tool.find_documents([TERNARY], [SURFACE])[SURFACE]
    jobs = tool.campaign_jobs(str(ROOT / "workflows" / "ternary_oxides.yaml"), doc)
    profile = doc.extra["profile"]
    potential = {"potential": {"vacuum_level_top": doc.vacuum_level_top, "vacuum_level_bottom": doc.vacuum_level_bottom,
                               "slab_center_average": 0.0, "z": profile["z"], "planar": profile["planar"],
                               "slab_center": profile["slab_center"], "period": None}}
    again = tool.align_again(doc, jobs, Structure.from_dict(doc.structure_relaxed), potential)
    assert again.ip == pytest.approx(doc.ip, abs=1e-6) and again.ea == pytest.approx(doc.ea, abs=1e-6)
    assert again.slab_center_average != 0.0  # re-taken over the ideal slab's period, not the value given
    with pytest.raises(BandflowError, match=SURFACE):
        tool.align_again(doc.model_copy(update={"bulk_vbm": 50.0}), jobs, Structure.from_dict(doc.structure_relaxed),
                         potential)
