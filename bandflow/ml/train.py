"""Training: split, target scaling, AdamW with early stopping on validation, an ensemble, metrics."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from pymatgen.core import Element

from bandflow.errors import BandflowError
from bandflow.ml.data import SlabFeatures, SlabRecord, split_indices
from bandflow.ml.model import ModelHyperparameters, SlabEnsemble, SlabNet, TargetScaling
from bandflow.ml.runtime import torch_threads

SUBSETS = ("train", "val", "test")


@dataclass(frozen=True)
class TrainConfig:
    """How to split and fit; ``n_members`` networks differ in their random initialisation and batch order.

    ``n_jobs`` members train at once in separate processes with ``n_threads`` threads each (1 is fastest
    for these small matrices).
    """

    split: str = "compound"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    n_members: int = 5
    seed: int = 0
    max_epochs: int = 300
    patience: int = 30
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    n_threads: int = 1
    n_jobs: int = 1

    def __post_init__(self) -> None:
        for name in ("n_members", "max_epochs", "patience", "batch_size", "n_threads", "n_jobs"):
            if getattr(self, name) < 1:
                raise BandflowError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise BandflowError(f"learning rate must be positive, got {self.learning_rate}")


@dataclass
class TrainResult:
    """The trained ensemble, the split (record indices), metrics and the predictions behind them."""

    model: SlabEnsemble
    split: dict[str, np.ndarray]
    metrics: dict[str, dict[str, dict[str, float]]]
    predictions: dict[str, dict[str, np.ndarray]]
    epochs: list[int] = field(default_factory=list)
    seconds: float = 0.0


def regression_metrics(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² (NaN when undefined)."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    if len(true) == 0:
        return {"mae": math.nan, "rmse": math.nan, "r2": math.nan}
    error = predicted - true
    spread = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / spread if spread > 0 else math.nan
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "r2": r2}


def finite_values(obj: object) -> object:
    """A copy of nested dicts/lists with NaN and ±inf replaced by None (valid JSON for undefined metrics)."""
    if isinstance(obj, dict):
        return {k: finite_values(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_values(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


#: A target spread (eV) below this is a constant target (one compound's bulk gap): it is not a scale.
MIN_TARGET_SPREAD = 0.01


def _target_spread(values: np.ndarray) -> float:
    """The standard deviation of ``values`` as a target scale (eV), 1 eV when they are all the same."""
    spread = float(values.std())
    return spread if spread >= MIN_TARGET_SPREAD else 1.0


def _targets(records: Sequence[SlabRecord]) -> tuple[np.ndarray, np.ndarray]:
    for index, record in enumerate(records):
        for name in ("ip", "ea"):
            value = getattr(record, name)
            if value is None or not math.isfinite(value):
                raise BandflowError(f"training record {index} ({record.id or 'no id'}) has no finite {name}")
        if record.ea > record.ip:
            raise BandflowError(f"training record {index} ({record.id or 'no id'}) has EA > IP")
    return np.array([r.ip for r in records], float), np.array([r.ea for r in records], float)


@torch.no_grad()
def predict_features(model: SlabEnsemble, features: SlabFeatures, indices: np.ndarray, batch_size: int = 64) -> dict:
    """Ensemble mean and std of IP and EA for the slabs ``indices`` of ``features``."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"ip": [], "ea": [], "ip_std": [], "ea_std": []}
    with torch_threads(1):
        for start in range(0, len(indices), batch_size):
            output = model(features.batch(indices[start : start + batch_size]))
            for name in parts:
                parts[name].append(getattr(output, name).double().numpy())
    return {name: np.concatenate(values) if values else np.zeros(0) for name, values in parts.items()}


def _scaling_batches(features: SlabFeatures, train: np.ndarray, rng_seed: int, max_atoms: int = 8192) -> list:
    """Small batches of randomly chosen training slabs, about ``max_atoms`` atoms in all."""
    chosen, n_atoms = [], 0
    sizes = np.diff(features.atom_offsets)
    for index in np.random.default_rng(rng_seed).permutation(train):
        if chosen and n_atoms + sizes[index] > max_atoms:
            break
        chosen.append(index)
        n_atoms += sizes[index]
    return [features.batch(chosen[i : i + 8]) for i in range(0, len(chosen), 8)]


def _fit_member(
    member: SlabNet, features: SlabFeatures, targets: torch.Tensor, split: dict[str, np.ndarray],
    config: TrainConfig, rng: np.random.Generator,
) -> int:
    """AdamW on the normalised IP and EA errors; keeps the weights with the lowest validation loss."""
    # population spread, as for ip_std: one training surface (a first transfer point) gives 0 → 1, not NaN
    scale = torch.tensor([member.scaling.ip_std, float(targets[split["train"], 1].std(correction=0)) or 1.0])
    optimizer = torch.optim.AdamW(member.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(config.patience // 3, 1))
    monitor = split["val"] if len(split["val"]) else split["train"]
    monitor_batches = [features.batch(monitor[i : i + 64]) for i in range(0, len(monitor), 64)]
    monitor_targets = targets[monitor]

    def loss_of(output, target: torch.Tensor) -> torch.Tensor:
        predicted = torch.stack([output.ip, output.ea], dim=1)
        return (((predicted - target) / scale) ** 2).mean()

    best_loss, best_state, best_epoch, epoch = math.inf, copy.deepcopy(member.state_dict()), 0, 0
    for epoch in range(1, config.max_epochs + 1):
        member.train()
        order = rng.permutation(split["train"])
        for start in range(0, len(order), config.batch_size):
            chunk = order[start : start + config.batch_size]
            optimizer.zero_grad()
            loss = loss_of(member(features.batch(chunk)), targets[chunk])
            loss.backward()
            optimizer.step()
        member.eval()
        with torch.no_grad():
            outputs = [member(batch) for batch in monitor_batches]
            ip = torch.cat([o.ip for o in outputs])
            ea = torch.cat([o.ea for o in outputs])
            monitor_loss = float((((torch.stack([ip, ea], 1) - monitor_targets) / scale) ** 2).mean())
        scheduler.step(monitor_loss)
        if monitor_loss < best_loss:
            best_loss, best_state, best_epoch = monitor_loss, copy.deepcopy(member.state_dict()), epoch
        elif epoch - best_epoch >= config.patience:
            break
    member.load_state_dict(best_state)
    member.eval()
    return epoch


@dataclass(frozen=True)
class _MemberJob:
    hyperparameters: ModelHyperparameters
    scaling: TargetScaling
    features: SlabFeatures
    targets: torch.Tensor
    split: dict[str, np.ndarray]
    config: TrainConfig
    index: int
    initial_state: dict | None


def _train_member(job: _MemberJob) -> tuple[dict[str, torch.Tensor], int]:
    """Train ensemble member ``job.index`` (seeded by it); returns its weights and the epochs run."""
    if job.config.n_jobs > 1:
        torch.set_num_threads(job.config.n_threads)
    seed = job.config.seed * 1000 + job.index
    torch.manual_seed(seed)
    member = SlabNet(job.hyperparameters, job.scaling).to(job.features.dtype)
    if job.initial_state is not None:
        member.load_state_dict(job.initial_state)
    else:
        member.fit_feature_scaling(_scaling_batches(job.features, job.split["train"], rng_seed=job.config.seed))
    epochs = _fit_member(member, job.features, job.targets, job.split, job.config, np.random.default_rng(seed))
    return {name: tensor.clone() for name, tensor in member.state_dict().items()}, epochs


def train_model(
    records: Sequence[SlabRecord],
    hyperparameters: ModelHyperparameters | None = None,
    config: TrainConfig | None = None,
    features: SlabFeatures | None = None,
    initial: SlabEnsemble | None = None,
    split: dict[str, np.ndarray] | None = None,
) -> TrainResult:
    """Train an ensemble on ``records`` (or fine-tune ``initial``) and report train/val/test metrics.

    ``features`` may be passed to reuse cached descriptor inputs of exactly these records; ``split`` fixes
    the subsets (record indices) instead of drawing them from ``config``.
    """
    started = time.perf_counter()
    config = config or TrainConfig()
    if not records:
        raise BandflowError("no training records")
    ip, ea = _targets(records)
    hp = initial.hyperparameters if initial is not None else (hyperparameters or ModelHyperparameters())
    elements = sorted({z for r in records for z in r.structure.atomic_numbers})
    if hp.descriptor == "soap" and not hp.soap_species:
        hp = replace(hp, soap_species=tuple(elements))
    if features is None:
        features = SlabFeatures.from_structures([r.structure for r in records], hp.soap)
    elif features.settings != hp.soap or len(features) != len(records):
        raise BandflowError("cached features do not belong to these records and descriptor settings")
    if split is None:
        split = split_indices([r.group for r in records], config.split, config.val_fraction, config.test_fraction,
                              seed=config.seed)
    if not len(split["train"]):
        raise BandflowError("the training subset is empty")
    train = split["train"]
    gap = ip[train] - ea[train]
    scaling = initial.scaling if initial is not None else TargetScaling(
        ip_mean=float(ip[train].mean()), ip_std=_target_spread(ip[train]),
        gap_mean=float(gap.mean()), gap_std=_target_spread(gap),
    )
    targets = torch.tensor(np.stack([ip, ea], axis=1), dtype=features.dtype)

    initial_states = [initial.members[i % len(initial.members)].state_dict() if initial is not None else None
                      for i in range(config.n_members)]
    jobs = [_MemberJob(hp, scaling, features, targets, split, config, index, initial_states[index])
            for index in range(config.n_members)]
    n_jobs = min(config.n_jobs, config.n_members)
    if n_jobs > 1:
        # members in separate processes (one thread each): scales with cores, unlike intra-op threads,
        # which stall on small matrices when the machine is shared. The features travel in shared memory.
        features.share_memory()
        context = torch.multiprocessing.get_context("spawn")
        with context.Pool(n_jobs) as pool:
            results = pool.map(_train_member, jobs)
    else:
        with torch_threads(config.n_threads):
            results = [_train_member(job) for job in jobs]
    members, epochs = [], []
    for state, n_epochs in results:
        member = SlabNet(hp, scaling).to(features.dtype)
        member.load_state_dict(state)
        members.append(member.eval())
        epochs.append(n_epochs)

    all_elements = sorted(set(elements) | set(initial.training_elements if initial is not None else ()))
    model = SlabEnsemble(hp, members, all_elements, info={
        "n_records": len(records), "split": config.split, "n_train": int(len(train)), "seed": config.seed,
        "fine_tuned": initial is not None,
    })
    predictions, metrics = {}, {}
    for name in SUBSETS:
        predicted = predict_features(model, features, split[name])
        predictions[name] = {"ip_true": ip[split[name]], "ea_true": ea[split[name]], **predicted}
        metrics[name] = {
            "ip": regression_metrics(ip[split[name]], predicted["ip"]),
            "ea": regression_metrics(ea[split[name]], predicted["ea"]),
        }
    model.info["metrics"] = metrics
    model.info["elements"] = [Element.from_Z(z).symbol for z in all_elements]
    return TrainResult(model=model, split=split, metrics=metrics, predictions=predictions, epochs=epochs,
                       seconds=time.perf_counter() - started)
