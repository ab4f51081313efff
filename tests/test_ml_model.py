"""Attention network: outputs, unseen elements, serialisation, importances."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_tensors

from bandflow.bulk import load_bulk
from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures
from bandflow.ml.descriptor import SoapSettings, _dscribe_columns, lsoap_from_pair_spectra, soap_features
from bandflow.ml.figures import importance_plot
from bandflow.ml.importance import atom_importances, write_importances
from bandflow.ml.model import (
    ModelHyperparameters,
    SlabEnsemble,
    SlabNet,
    load_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
    segment_softmax,
)
from bandflow.ml.neighbours import slab_geometry
from bandflow.ml.predict import predict_bulk, predict_structures
from bandflow.ml.synthetic import synthetic_records
from bandflow.ml.train import TrainConfig, train_model
from bandflow.surfaces import nonpolar_surfaces

SMALL = ModelHyperparameters(soap=SoapSettings(r_cut=4.5, n_max=3, l_max=2), n_pseudo_species=2, hidden=16,
                             center_embedding=4, element_hidden=8)
TRAIN_BULKS = ("MgO", "CaO", "ZnO", "TiO2-rutile", "SnO2")  # no cerium


@pytest.fixture(scope="module")
def records():
    return synthetic_records(TRAIN_BULKS, n_variants=1, seed=3)


@pytest.fixture(scope="module")
def trained(records):
    config = TrainConfig(n_members=2, max_epochs=15, patience=15, split="random", seed=1)
    return train_model(records, SMALL, config).model


@pytest.fixture(scope="module")
def ceria_slab():
    return nonpolar_surfaces(load_bulk("CeO2"), max_index=1, min_thickness=6, vacuum=8)[0].slab


def test_ea_below_ip_attention_normalised(records):
    torch.manual_seed(0)
    net = SlabNet(SMALL)
    features = SlabFeatures.from_structures([r.structure for r in records], SMALL.soap)
    batch = features.batch(np.arange(len(records)))
    with torch.no_grad():
        net.heads.weight.normal_(0, 3.0)  # an untrained, badly scaled network still keeps EA ≤ IP
        output = net(batch)
    assert torch.all(output.ea <= output.ip)
    sums = torch.zeros(batch.n_slabs, 2, dtype=output.attention.dtype).index_add_(0, batch.atom_slab, output.attention)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    weighted = torch.zeros(batch.n_slabs, 2).index_add_(0, batch.atom_slab, output.attention * output.contribution)
    torch.testing.assert_close(weighted[:, 0], output.ip)


def test_segment_softmax_large_logits():
    logits = torch.tensor([[1000.0], [1001.0], [-5.0]])
    weights = segment_softmax(logits, torch.tensor([0, 0, 1]), 2)
    torch.testing.assert_close(weights[:, 0], torch.tensor([1 / (1 + np.e), np.e / (1 + np.e), 1.0]))


def test_unseen_element_predicts_finite(trained, ceria_slab):
    assert 58 not in trained.training_elements
    (prediction,) = predict_structures(trained, [ceria_slab], ["CeO2-test"])
    assert prediction.unseen_elements == ["Ce"]
    assert np.isfinite([prediction.ip, prediction.ea, prediction.ip_std, prediction.ea_std]).all()
    assert prediction.ea <= prediction.ip


def test_standard_soap_model_rejects_unseen_element(records, ceria_slab):
    model = train_model(records, ModelHyperparameters(**{**SMALL.__dict__, "descriptor": "soap"}),
                        TrainConfig(n_members=1, max_epochs=2, split="random")).model
    assert model.hyperparameters.soap_species == (8, 12, 20, 22, 30, 50)
    with pytest.raises(BandflowError, match="no channel for Ce"):
        predict_structures(model, [ceria_slab])


def test_ensemble_std_and_supercell_invariance(trained, records):
    slab = records[0].structure
    supercell = slab.copy()
    supercell.make_supercell([2, 1, 1])
    single, double = predict_structures(trained, [slab, supercell])
    assert single.ip_std > 0 and single.ea_std > 0
    assert single.ip == pytest.approx(double.ip, abs=1e-4)
    assert single.ea == pytest.approx(double.ea, abs=1e-4)


def test_round_trip_bytes_and_file(trained, records, tmp_path):
    structures = [r.structure for r in records[:4]]
    before = predict_structures(trained, structures)
    restored = model_from_bytes(model_to_bytes(trained))
    after = predict_structures(restored, structures)
    assert [p.ip for p in after] == [p.ip for p in before]
    assert [p.ea_std for p in after] == [p.ea_std for p in before]
    assert restored.training_elements == trained.training_elements
    assert restored.hyperparameters == trained.hyperparameters
    path = save_model(trained, tmp_path / "model.safetensors")
    assert [p.ea for p in predict_structures(load_model(path), structures)] == [p.ea for p in before]
    assert not list(tmp_path.glob("*.tmp"))


def _with_header(data: bytes, edit) -> bytes:
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    inner = json.loads(header["__metadata__"]["bandflow"])
    edit(inner)
    header["__metadata__"]["bandflow"] = json.dumps(inner)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + length :]


def test_corrupt_and_foreign_files(trained, tmp_path):
    data = model_to_bytes(trained)
    with pytest.raises(BandflowError, match="truncated"):
        model_from_bytes(data[:5])
    with pytest.raises(BandflowError, match="truncated|corrupt"):
        model_from_bytes(data[: len(data) // 2])
    with pytest.raises(BandflowError):
        model_from_bytes(b"\x00" * 8 + b"not a model at all")
    with pytest.raises(BandflowError, match="no bandflow header"):
        model_from_bytes(save_tensors({"x": torch.zeros(3)}))
    with pytest.raises(BandflowError, match="version 99"):
        model_from_bytes(_with_header(data, lambda h: h.update(version=99)))
    with pytest.raises(BandflowError, match="do not match"):
        model_from_bytes(_with_header(data, lambda h: h["hyperparameters"].update(hidden=17)))
    with pytest.raises(BandflowError, match="unknown fields"):
        model_from_bytes(_with_header(data, lambda h: h["hyperparameters"].update(color="red")))
    with pytest.raises(BandflowError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    pickle_file = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, pickle_file)
    with pytest.raises(BandflowError):
        load_model(pickle_file)


def test_importances_json_and_picture(trained, records, tmp_path):
    record = records[0]
    importances = atom_importances(trained, record.structure, record.id)
    atoms = importances["atoms"]
    assert len(atoms) == len(record.structure)
    assert sum(a["alpha_ip"] for a in atoms) == pytest.approx(1.0, abs=1e-5)
    assert sum(a["alpha_h_ip"] for a in atoms) == pytest.approx(importances["ip"], abs=1e-4)
    assert sum(a["alpha_h_ea"] for a in atoms) == pytest.approx(importances["ea"], abs=1e-4)
    assert min(a["depth"] for a in atoms) == 0.0
    path = write_importances(importances, tmp_path / "importances.json")
    assert json.loads(path.read_text())["atoms"][0]["element"] == atoms[0]["element"]
    picture = importance_plot(importances, tmp_path / "importance.png", "alpha_h_ip")
    assert picture.stat().st_size > 1000
    with pytest.raises(BandflowError, match="unknown importance"):
        importance_plot(importances, tmp_path / "x.png", "nonsense")


def test_predict_bulk_enumerates_surfaces(trained):
    predictions = predict_bulk(trained, "MgO", max_index=1, min_thickness=6, vacuum=8)
    assert {p.miller_index for p in predictions} == {(1, 0, 0), (1, 1, 0)}
    assert all(p.formula == "MgO" and p.unseen_elements == [] for p in predictions)


def test_empty_ensemble_rejected():
    with pytest.raises(BandflowError, match="at least one member"):
        SlabEnsemble(SMALL, [])


SOAP_SPECIES = (8, 12, 20, 22, 30, 50)


def _network_and_batch(records, descriptor: str, seed: int = 1):
    """A float64 network of ``descriptor`` (standard SOAP: channels ``SOAP_SPECIES``) with its feature scaling
    fitted, and one batch of six binary slabs and a ternary one (an extra element pair); also the slabs."""
    hp = ModelHyperparameters(**{**SMALL.__dict__, "descriptor": descriptor, "soap_species": SOAP_SPECIES})
    structures = [r.structure for r in records[:6]]
    ternary = structures[0].copy()
    ternary.replace(0, "Zn")
    structures.append(ternary)
    features = SlabFeatures.from_structures(structures, hp.soap, dtype=torch.float64)
    torch.manual_seed(seed)
    net = SlabNet(hp).double()
    batch = features.batch(np.arange(len(features)))
    net.fit_feature_scaling([batch])
    return net, batch, structures


@pytest.mark.parametrize("descriptor", ["lsoap", "soap"])
def test_fast_first_layer_equals_explicit_power_spectrum(records, descriptor):
    net, batch, _ = _network_and_batch(records, descriptor)
    fast, explicit = net(batch), net(batch, explicit=True)
    torch.testing.assert_close(fast.ip, explicit.ip, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast.attention, explicit.attention, rtol=1e-10, atol=1e-12)


def test_network_soap_descriptor_is_standard_soap(records):
    """The standard-SOAP baseline's features, scattered from the pair spectra, are the DScribe-checked
    standard SOAP (``soap_features``) and what the weighted route gives with one-hot weights."""
    net, batch, structures = _network_and_batch(records, "soap")
    soap = net.hyperparameters.soap
    scattered = net.descriptor(batch)
    first, second = batch.row_elements[:, 0], batch.row_elements[:, 1]
    weighted = lsoap_from_pair_spectra(batch.spectra, batch.row_atom, net.element_weights(first),
                                       net.element_weights(second), first == second, batch.n_atoms,
                                       soap.n_max, soap.l_max)
    torch.testing.assert_close(scattered, weighted, rtol=1e-12, atol=1e-12)
    reference = soap_features([slab_geometry(s)[0] for s in structures], SOAP_SPECIES, soap)
    columns = _dscribe_columns(len(SOAP_SPECIES), soap.n_max, soap.l_max)
    np.testing.assert_allclose(scattered[:, columns].numpy(), reference, rtol=1e-10, atol=1e-12)
    assert np.abs(reference).max() > 0


def test_soap_gathered_pair_weights_equal_one_hot_contraction(records):
    """Standard SOAP's first layer picks its weights per element pair; same values and gradients as the
    contraction with one-hot channels, including a pair type absent from the first channels."""
    net, batch, _ = _network_and_batch(records, "soap", seed=2)
    results = []
    for contract in (False, True):
        net.zero_grad()
        hidden = net._first_layer(batch, contract_one_hot=contract)
        hidden.pow(2).sum().backward()
        results.append((hidden.detach(), net.input_layer.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)
    assert results[0][1].abs().sum() > 0
