"""The attention network on (L-)SOAP: per-atom contributions h_i and weights α_i → IP and EA of a slab.

Each atom's input is its power spectrum (L-SOAP or standard SOAP), an embedding of its own element and a
radial-basis expansion of its depth below the nearer surface (SOAP alone cannot tell the vacuum side from
the bulk side). A shared MLP gives per atom an IP contribution, a band-gap contribution and two attention
logits; a softmax over the atoms of each slab turns the logits into weights α, and

    IP = Σ_i α_i^IP IP_i,   gap = Σ_i α_i^gap gap_i,   EA = IP − gap.

The network predicts IP and the gap rather than IP and EA because gap_i = softplus(...) ≥ 0 makes
EA ≤ IP hold by construction (the conduction band lies above the valence band), and because the gap is
mostly a bulk property, which the attention can average over the slab while the IP weights focus on the
surface. Losses and metrics are on IP and EA.

Serialisation: safetensors (tensors only, never pickle) with a JSON header holding the hyperparameters,
the target normalisation and the training elements; a damaged or foreign file raises ``BandflowError``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path

import torch
from pymatgen.core import Element
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from bandflow.errors import BandflowError
from bandflow.ml.data import SlabBatch
from bandflow.ml.descriptor import (
    SoapSettings,
    lsoap_feature_count,
    lsoap_from_pair_spectra,
    soap_from_pair_spectra,
)
from bandflow.ml.elements import MAX_ATOMIC_NUMBER, PROPERTY_NAMES, element_properties

MODEL_FORMAT = "bandflow-slab-attention"
MODEL_FORMAT_VERSION = 1
DESCRIPTORS = ("lsoap", "soap")


@dataclass(frozen=True)
class ModelHyperparameters:
    """Architecture; ``soap_species`` are the element channels of the standard-SOAP baseline (left empty,
    training fills in the elements of its records)."""

    descriptor: str = "lsoap"
    soap: SoapSettings = field(default_factory=SoapSettings)
    n_pseudo_species: int = 4
    element_hidden: int = 16
    center_embedding: int = 8
    hidden: int = 64
    n_hidden_layers: int = 2
    depth_basis: int = 8
    depth_max: float = 7.0
    soap_species: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.descriptor not in DESCRIPTORS:
            raise BandflowError(f"unknown descriptor {self.descriptor!r}; choose one of {', '.join(DESCRIPTORS)}")
        for name in ("n_pseudo_species", "element_hidden", "center_embedding", "hidden", "n_hidden_layers", "depth_basis"):
            if getattr(self, name) < 1:
                raise BandflowError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def n_channels(self) -> int:
        return self.n_pseudo_species if self.descriptor == "lsoap" else len(self.soap_species)

    @property
    def n_descriptor_features(self) -> int:
        return lsoap_feature_count(self.soap, self.n_channels)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["soap_species"] = list(self.soap_species)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ModelHyperparameters:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BandflowError(f"model hyperparameters have unknown fields {sorted(unknown)}")
        values = dict(data)
        values["soap"] = SoapSettings(**values.get("soap", {}))
        values["soap_species"] = tuple(int(z) for z in values.get("soap_species", ()))
        return cls(**values)


@dataclass(frozen=True)
class TargetScaling:
    """Training-set mean and standard deviation of IP and of the gap (eV)."""

    ip_mean: float = 0.0
    ip_std: float = 1.0
    gap_mean: float = 1.0
    gap_std: float = 1.0


class ElementEmbedding(nn.Module):
    """A learnable map of elemental properties to a vector: every element, seen in training or not, has one."""

    def __init__(self, n_out: int, n_hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(len(PROPERTY_NAMES), n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))

    def forward(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        unique, inverse = torch.unique(atomic_numbers, return_inverse=True)
        dtype = self.net[0].weight.dtype
        properties = torch.from_numpy(element_properties(unique.numpy())).to(dtype)
        return self.net(properties)[inverse]


@dataclass
class SlabOutput:
    """Per slab: ``ip``, ``gap``, ``ea`` (eV); per atom: ``attention`` and ``contribution`` (columns IP, gap)."""

    ip: torch.Tensor
    gap: torch.Tensor
    ea: torch.Tensor
    attention: torch.Tensor
    contribution: torch.Tensor


def _inverse_softplus(y: float) -> float:
    """x with softplus(x) = y > 0, without overflow for large y: log(eʸ − 1) = y + log(1 − e⁻ʸ)."""
    return y + math.log(-math.expm1(-y))


def segment_softmax(logits: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Softmax of ``logits`` (atoms, k) over the atoms of each segment (slab)."""
    index = segment[:, None].expand_as(logits)
    maximum = logits.new_full((n_segments, logits.shape[1]), -math.inf).scatter_reduce(
        0, index, logits, reduce="amax", include_self=True
    )
    weights = torch.exp(logits - maximum[segment])
    total = logits.new_zeros(n_segments, logits.shape[1]).index_add_(0, segment, weights)
    return weights / total[segment]


@cache
def _symmetric_layout(n_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every ordered channel pair (c, c'): its upper-triangle feature index, and 1 if c = c' else ½."""
    upper = torch.triu_indices(n_channels, n_channels)
    index = torch.zeros(n_channels, n_channels, dtype=torch.int64)
    index[upper[0], upper[1]] = torch.arange(upper.shape[1])
    index = torch.maximum(index, index.T)
    half = torch.full((n_channels, n_channels), 0.5)
    half.fill_diagonal_(1.0)
    return index.view(-1), half.view(-1)


class SlabNet(nn.Module):
    """One attention network (one ensemble member)."""

    def __init__(self, hyperparameters: ModelHyperparameters, scaling: TargetScaling | None = None) -> None:
        super().__init__()
        hp = hyperparameters
        if hp.descriptor == "soap" and not hp.soap_species:
            raise BandflowError("the standard SOAP descriptor needs its element channels (soap_species)")
        self.hyperparameters = hp
        self.scaling = scaling or TargetScaling()
        if hp.descriptor == "lsoap":
            self.species_embedding = ElementEmbedding(hp.n_pseudo_species, hp.element_hidden)
        self.center_embedding = ElementEmbedding(hp.center_embedding, hp.element_hidden)
        n_features = hp.n_descriptor_features
        self.register_buffer("feature_shift", torch.zeros(n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))
        self.register_buffer("depth_centers", torch.linspace(0.0, hp.depth_max, hp.depth_basis), persistent=False)
        soap_channel = torch.full((MAX_ATOMIC_NUMBER + 1,), -1, dtype=torch.int64)
        soap_channel[list(hp.soap_species)] = torch.arange(len(hp.soap_species))
        self.register_buffer("soap_channel", soap_channel, persistent=False)
        self.input_layer = nn.Linear(n_features + hp.center_embedding + hp.depth_basis, hp.hidden)
        layers: list[nn.Module] = [nn.SiLU()]
        for _ in range(hp.n_hidden_layers - 1):
            layers += [nn.Linear(hp.hidden, hp.hidden), nn.SiLU()]
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(hp.hidden, 4)  # IP contribution, gap contribution, IP logit, gap logit

    def element_weights(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Pseudo-species weights e_κ(Z) of each element (one-hot element channels for standard SOAP)."""
        hp = self.hyperparameters
        if hp.descriptor == "lsoap":
            return self.species_embedding(atomic_numbers)
        return nn.functional.one_hot(self.soap_channels(atomic_numbers), len(hp.soap_species)).to(self.feature_scale.dtype)

    def soap_channels(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Standard SOAP: the channel of each element; one clear error for an element without one."""
        hp = self.hyperparameters
        channel = self.soap_channel[atomic_numbers]
        if (channel < 0).any():
            unknown = sorted({Element.from_Z(int(z)).symbol for z in atomic_numbers[channel < 0].tolist()})
            known = [Element.from_Z(z).symbol for z in hp.soap_species]
            raise BandflowError(
                f"this standard-SOAP model has no channel for {', '.join(unknown)} (trained on {', '.join(known)}); "
                "use an L-SOAP model"
            )
        return channel

    def descriptor(self, batch: SlabBatch) -> torch.Tensor:
        """Raw (unscaled) L-SOAP or standard-SOAP power spectrum of every atom of the batch."""
        hp = self.hyperparameters
        soap = hp.soap
        first, second = batch.row_elements[:, 0], batch.row_elements[:, 1]
        if hp.descriptor == "soap":
            return soap_from_pair_spectra(
                batch.spectra.to(self.feature_scale.dtype), batch.row_atom, self.soap_channels(first),
                self.soap_channels(second), batch.n_atoms, hp.n_channels, soap.n_max, soap.l_max,
            )
        return lsoap_from_pair_spectra(
            batch.spectra.to(self.feature_scale.dtype), batch.row_atom, self.element_weights(first),
            self.element_weights(second), first == second, batch.n_atoms, soap.n_max, soap.l_max,
        )

    def _local_inputs(self, batch: SlabBatch) -> torch.Tensor:
        """The atom's own element embedding and the radial basis of its depth."""
        hp = self.hyperparameters
        width = hp.depth_max / max(hp.depth_basis - 1, 1)
        depth = batch.atom_depth.to(self.feature_scale.dtype)
        depth_features = torch.exp(-0.5 * ((depth[:, None] - self.depth_centers) / width) ** 2)
        return torch.cat([self.center_embedding(batch.atom_element), depth_features], dim=1)

    def atom_inputs(self, batch: SlabBatch) -> torch.Tensor:
        """Per-atom input of the MLP: standardised power spectrum, element embedding, depth features."""
        spectrum = (self.descriptor(batch) - self.feature_shift) / self.feature_scale
        return torch.cat([spectrum, self._local_inputs(batch)], dim=1)

    def _first_layer(self, batch: SlabBatch, contract_one_hot: bool = False) -> torch.Tensor:
        """``input_layer(atom_inputs(batch))`` without forming the power spectrum.

        The layer is linear and L-SOAP is bilinear in the cached element-pair spectra, so the layer's
        weights are contracted with the embeddings of each element pair present (a handful per batch) and
        applied to the pair spectra directly: one matrix product per pair type, about (K n)²/2 (l+1) fewer
        multiplications per atom than the explicit route. Equal to it up to rounding (tested).

        Standard SOAP's element weights are one-hot, so its pair weights are a gather of the layer's weights
        (:meth:`_channel_pair_weights`) rather than a contraction over every channel pair;
        ``contract_one_hot`` takes the contraction anyway (for ``benchmarks/soap_baseline_speed.py``).
        """
        hp = self.hyperparameters
        n_max, n_degrees, n_channels = hp.soap.n_max, hp.soap.l_max + 1, hp.n_channels * hp.soap.n_max
        n_features = self.feature_shift.shape[0]
        weight = self.input_layer.weight[:, :n_features] / self.feature_scale
        bias = self.input_layer.bias - weight @ self.feature_shift
        feature_of_pair, half = _symmetric_layout(n_channels)  # weight of (c, c') and (c', c): half each
        keys = batch.row_elements[:, 0] * 256 + batch.row_elements[:, 1]
        order = None
        if len(keys) > 1 and not bool(torch.all(keys[1:] >= keys[:-1])):  # SlabFeatures.batch sorts them already
            order = torch.argsort(keys, stable=True)
            keys = keys[order]
        keys, counts = torch.unique_consecutive(keys, return_counts=True)
        pair_types = torch.stack([keys // 256, keys % 256], dim=1)
        if hp.descriptor == "soap" and not contract_one_hot:
            pair_weights = self._channel_pair_weights(weight, pair_types)
        else:
            symmetric = (weight.view(hp.hidden, n_degrees, -1)[:, :, feature_of_pair] * half.to(weight.dtype)).view(
                hp.hidden, n_degrees, hp.n_channels, n_max, hp.n_channels, n_max
            )
            pair_weights = torch.einsum(
                "ta,tb,hlanbm->thlnm", self.element_weights(pair_types[:, 0]),
                self.element_weights(pair_types[:, 1]), symmetric,
            ).reshape(len(pair_types), hp.hidden, -1)
        pair_weights = pair_weights * torch.where(pair_types[:, 0] == pair_types[:, 1], 1.0, 2.0).to(weight.dtype)[:, None, None]
        spectra, row_atom = batch.spectra.to(weight.dtype), batch.row_atom
        if order is not None:
            spectra, row_atom = spectra[order], row_atom[order]
        contributions = torch.cat([
            rows @ pair_weights[pair_type].T for pair_type, rows in enumerate(torch.split(spectra, counts.tolist()))
        ])
        hidden = (self._local_inputs(batch) @ self.input_layer.weight[:, n_features:].T) + bias
        return hidden.index_add(0, row_atom, contributions)

    def _channel_pair_weights(self, weight: torch.Tensor, pair_types: torch.Tensor) -> torch.Tensor:
        """Standard SOAP: the first layer's weights on the ``(n, m)`` spectrum block of each element pair
        ``(a, b)`` of ``pair_types``, shape ``(pairs, hidden, (l_max + 1) n_max²)``.

        The weights of the one-hot channels picked out directly: the contraction with one-hot vectors costs
        (number of elements)² times as much and forms the whole symmetric weight tensor on every step.
        """
        hp = self.hyperparameters
        n_max, n_degrees = hp.soap.n_max, hp.soap.l_max + 1
        width = hp.n_channels * n_max
        feature_of_pair, half = _symmetric_layout(width)
        a, b = self.soap_channels(pair_types[:, 0]), self.soap_channels(pair_types[:, 1])
        radial = torch.arange(n_max)
        flat = ((a[:, None, None] * n_max + radial[None, :, None]) * width
                + b[:, None, None] * n_max + radial[None, None, :])  # (pairs, n, m) in the (c, c') grid
        picked = weight.view(hp.hidden, n_degrees, -1)[:, :, feature_of_pair[flat]] * half[flat].to(weight.dtype)
        return picked.permute(2, 0, 1, 3, 4).reshape(len(pair_types), hp.hidden, -1)

    def forward(self, batch: SlabBatch, explicit: bool = False) -> SlabOutput:
        """Predictions for the batch; ``explicit`` forms the power spectrum (slower, same result)."""
        s = self.scaling
        first = self.input_layer(self.atom_inputs(batch)) if explicit else self._first_layer(batch)
        heads = self.heads(self.trunk(first))
        ip_atom = s.ip_mean + s.ip_std * heads[:, 0]
        gap_offset = _inverse_softplus(max(s.gap_mean, 1e-3) / s.gap_std)  # starts at the mean gap
        gap_atom = s.gap_std * nn.functional.softplus(heads[:, 1] + gap_offset)
        attention = segment_softmax(heads[:, 2:], batch.atom_slab, batch.n_slabs)
        contribution = torch.stack([ip_atom, gap_atom], dim=1)
        per_slab = torch.zeros(batch.n_slabs, 2, dtype=heads.dtype).index_add_(0, batch.atom_slab, attention * contribution)
        ip, gap = per_slab[:, 0], per_slab[:, 1]
        return SlabOutput(ip=ip, gap=gap, ea=ip - gap, attention=attention, contribution=contribution)

    @torch.no_grad()
    def fit_feature_scaling(self, batches: Sequence[SlabBatch]) -> None:
        """Standardise the power spectrum with its mean and spread over ``batches`` (training atoms)."""
        spectra = torch.cat([self.descriptor(batch) for batch in batches])
        self.feature_shift.copy_(spectra.mean(0))
        spread = spectra.std(0)
        self.feature_scale.copy_(torch.where(spread > 1e-8 * spread.max().clamp_min(1e-30), spread, 1.0))


@dataclass
class EnsembleOutput:
    """Mean and standard deviation over the members, per slab (eV); per atom the member means of α, h and
    α·h (``weighted``, which sums over a slab's atoms to its IP and gap)."""

    ip: torch.Tensor
    ea: torch.Tensor
    gap: torch.Tensor
    ip_std: torch.Tensor
    ea_std: torch.Tensor
    attention: torch.Tensor
    contribution: torch.Tensor
    weighted: torch.Tensor


class SlabEnsemble(nn.Module):
    """Members trained with different seeds; their spread is the prediction's uncertainty."""

    def __init__(
        self,
        hyperparameters: ModelHyperparameters,
        members: Sequence[SlabNet],
        training_elements: Sequence[int] = (),
        info: dict | None = None,
    ) -> None:
        super().__init__()
        if not members:
            raise BandflowError("an ensemble needs at least one member")
        self.hyperparameters = hyperparameters
        self.members = nn.ModuleList(members)
        self.training_elements = sorted(int(z) for z in training_elements)
        self.info = dict(info or {})

    @property
    def scaling(self) -> TargetScaling:
        return self.members[0].scaling

    def forward(self, batch: SlabBatch) -> EnsembleOutput:
        outputs = [member(batch) for member in self.members]
        ip = torch.stack([o.ip for o in outputs])
        ea = torch.stack([o.ea for o in outputs])
        gap = torch.stack([o.gap for o in outputs])
        spread = {"unbiased": False}
        return EnsembleOutput(
            ip=ip.mean(0), ea=ea.mean(0), gap=gap.mean(0), ip_std=ip.std(0, **spread), ea_std=ea.std(0, **spread),
            attention=torch.stack([o.attention for o in outputs]).mean(0),
            contribution=torch.stack([o.contribution for o in outputs]).mean(0),
            weighted=torch.stack([o.attention * o.contribution for o in outputs]).mean(0),
        )

    def unseen_elements(self, atomic_numbers: Sequence[int]) -> list[str]:
        """Symbols of elements in ``atomic_numbers`` that no training slab contained."""
        return sorted({Element.from_Z(int(z)).symbol for z in atomic_numbers} - {Element.from_Z(z).symbol for z in self.training_elements})

    def header(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "hyperparameters": self.hyperparameters.as_dict(),
            "n_members": len(self.members),
            "target_scaling": asdict(self.scaling),
            "training_elements": [Element.from_Z(z).symbol for z in self.training_elements],
            "element_properties": list(PROPERTY_NAMES),
            "info": self.info,
        }


_METADATA_KEY = "bandflow"


def model_to_bytes(model: SlabEnsemble) -> bytes:
    """safetensors bytes: member weights plus the JSON header in the file's metadata."""
    tensors = {
        f"member{i}.{name}": tensor.detach().contiguous().clone()
        for i, member in enumerate(model.members)
        for name, tensor in member.state_dict().items()
    }
    return save_tensors(tensors, metadata={_METADATA_KEY: json.dumps(model.header(), default=str)})


def _read_header(data: bytes) -> dict:
    """The bandflow header of safetensors bytes (format: u64 little-endian length, then JSON)."""
    if len(data) < 8:
        raise BandflowError("model file is truncated (shorter than a safetensors header)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise BandflowError("model file is truncated or not a safetensors file")
    try:
        metadata = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
        header = json.loads(metadata[_METADATA_KEY])
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise BandflowError("model file has no bandflow header (not a bandflow model)") from exc
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise BandflowError(f"model file is not a {MODEL_FORMAT} model")
    if header.get("version") != MODEL_FORMAT_VERSION:
        raise BandflowError(
            f"model file has format version {header.get('version')}; this bandflow reads version {MODEL_FORMAT_VERSION}"
        )
    return header


def model_from_bytes(data: bytes) -> SlabEnsemble:
    """Rebuild a model from ``model_to_bytes`` output; anything damaged or foreign raises ``BandflowError``."""
    header = _read_header(bytes(data))
    try:
        tensors = load_tensors(bytes(data))
    except SafetensorError as exc:
        raise BandflowError(f"model file is corrupt: {exc}") from exc
    try:
        hyperparameters = ModelHyperparameters.from_dict(header["hyperparameters"])
        scaling = TargetScaling(**header["target_scaling"])
        n_members = int(header["n_members"])
        elements = [Element(symbol).Z for symbol in header["training_elements"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BandflowError(f"model header is incomplete or invalid: {exc}") from exc
    if header.get("element_properties") != list(PROPERTY_NAMES):
        raise BandflowError("model was trained with different elemental properties than this bandflow provides")
    members = []
    for i in range(n_members):
        member = SlabNet(hyperparameters, scaling)
        prefix = f"member{i}."
        state = {name[len(prefix) :]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
        try:
            member.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BandflowError(f"model weights do not match its header (member {i}): {str(exc).splitlines()[0]}") from exc
        members.append(member)
    model = SlabEnsemble(hyperparameters, members, elements, header.get("info"))
    return model.eval()


def save_model(model: SlabEnsemble, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (a .safetensors file) atomically."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(model_to_bytes(model))
    temporary.replace(path)
    return path


def load_model(path: str | Path) -> SlabEnsemble:
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"model file {path} does not exist")
    return model_from_bytes(path.read_bytes())
