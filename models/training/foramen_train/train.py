"""Train a segmentation model from a TOML config and export the best epoch to ONNX.

CLI::

    python -m foramen_train.train --config configs/lumbar-synth.toml [--out RUN_DIR]
        [--epochs N] [--batch-size N] [--lr X] [--threads N] [--data-root DIR]
        [--set section.key=value ...] [--device auto|cpu|cuda] [--no-progress]

    torchrun --nproc_per_node N -m foramen_train.train --config ...   # data parallel

The run folder receives ``config.toml`` (the effective configuration), ``metrics.csv``
(one row per epoch), ``best.pt`` (the epoch with the best validation mIoU), ``last.pt``
(the last epoch), the exported ONNX model of the best epoch and ``summary.json``.

Under torchrun every process trains a replica wrapped in DistributedDataParallel
(``nccl`` on CUDA, ``gloo`` on the CPU) on its share of each global batch
(``train.batch_size`` / world size), BatchNorm is synchronised over the processes and
the loss is that of the global batch, so the run follows single-process training with
the same global batch. Validation is sharded by batches and the confusion matrix and
loss sums are all-reduced. Only rank 0 writes files and prints.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from . import distributed as D
from . import encoders
from .config import Config, ConfigError, load_config, to_toml
from .data import DataError, DatasetSpec, SegmentationDataset, evenly_spaced, load_dataset_spec, read_list
from .device_augment import DeviceAugmenter
from .export import ExportError, export_checkpoint
from .gan import GanError, GanSource, Generator
from .losses import SegmentationLoss
from .metrics import ConfusionMatrix
from .model import ModelConfig, PPLiteSeg, count_parameters, estimate_flops

RUNS_DIR = Path(__file__).resolve().parents[1] / "runs"
"""Default parent of run folders (``models/training/runs``, ignored by git)."""


def build_datasets(cfg: Config) -> tuple[DatasetSpec, SegmentationDataset, SegmentationDataset]:
    """Dataset spec plus the augmented training and plain validation datasets."""
    root = cfg.data_root()
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found (data.root in {cfg.source})")
    spec = load_dataset_spec(root, cfg.data.classes, cfg.data.ignore_index)
    spec = spec.with_ignored(cfg.data.ignore_classes, f"{cfg.source}: data.ignore_classes")
    train_pairs = evenly_spaced(read_list(root, cfg.data.train_list), cfg.data.train_limit)
    val_pairs = evenly_spaced(read_list(root, cfg.data.val_list), cfg.data.val_limit)
    if len(train_pairs) < cfg.train.batch_size:
        raise DataError(
            f"{root / cfg.data.train_list}: {len(train_pairs)} frames, "
            f"fewer than train.batch_size={cfg.train.batch_size}"
        )
    size = dict(
        width=cfg.model.width,
        height=cfg.model.height,
        cache_max_mb=cfg.data.cache_max_mb,
        normalization=encoders.normalization(cfg.model.encoder),
    )
    train_ds = SegmentationDataset(train_pairs, spec, augment=cfg.data.augment, seed=cfg.train.seed, **size)
    val_ds = SegmentationDataset(val_pairs, spec, augment=None, **size)
    if cfg.data.gan.enabled:
        train_ds.synthetic = gan_source(cfg, spec, train_ds)
        train_ds.synthetic_count = cfg.data.gan.count(len(train_pairs))
    return spec, train_ds, val_ds


def gan_source(cfg: Config, spec: DatasetSpec, train_ds: SegmentationDataset) -> GanSource:
    """The ``[data.gan]`` generator over the training masks, checked against the data set."""
    generator = Generator(Path(cfg.data.gan.generator))
    if generator.dataset.class_names != spec.class_names:
        raise GanError(
            f"{generator.path}: trained on classes {generator.dataset.class_names}, the data set has {spec.class_names}"
        )
    masks = [train_ds.raw(i)[1] for i in range(len(train_ds.pairs))]
    # Label maps at the larger model side: the generator's output is resized to it anyway.
    side = max(cfg.model.width, cfg.model.height)
    return GanSource(generator, masks, side, cfg.data.gan.labels, spec.ignore_index)


def build_model(cfg: Config, spec: DatasetSpec, aux: bool) -> PPLiteSeg:
    """The network: from ``train.init_from``'s weights when set, else with the encoder's
    pretrained weights (none for the scratch encoder)."""
    model_cfg = cfg.model.build(spec.num_classes, aux_heads=aux)
    if not cfg.train.init_from:
        return PPLiteSeg(model_cfg, pretrained=True)
    model = PPLiteSeg(model_cfg)
    load_initial_weights(model, Path(cfg.train.init_from), spec)
    return model


# [model] keys that shape no weight: a checkpoint seeds a run that differs only in these
# (auxiliary heads are left out of the load; a fully convolutional network takes any
# input size, so a model trained small can go on at a larger size: progressive resizing).
WEIGHTLESS_MODEL_KEYS = ("aux_heads", "width", "height", "head_dropout")


def shaping_keys(model_config: dict) -> dict:
    """The ``[model]`` keys of ``model_config`` that shape its weights: those of
    ``WEIGHTLESS_MODEL_KEYS`` and those its encoder or decoder does not read are left out
    (an FPN checkpoint does not care what ``sppm_channels`` its config carried)."""
    unused = set(WEIGHTLESS_MODEL_KEYS)
    if model_config.get("encoder", "stdc-scratch") != "stdc-scratch":
        unused |= {"base_channels", "stage_blocks"}
    unused |= {"decoder_channels", "sppm_channels"} if model_config.get("decoder") == "fpn" else {"fpn_channels"}
    return {k: v for k, v in model_config.items() if k not in unused}


def load_initial_weights(model: PPLiteSeg, path: Path, spec: DatasetSpec) -> None:
    """Copy a checkpoint's weights into ``model``: same architecture and class names
    required (auxiliary heads, input size and head dropout may differ); the error names
    the file and what differs."""
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found (train.init_from)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt or "model_config" not in ckpt:
        raise ConfigError(f"{path}: not a foramen_train checkpoint (train.init_from)")
    names = [c["name"] for c in ckpt["dataset"]["classes"]]
    if names != spec.class_names:
        raise ConfigError(f"{path}: trained on classes {names}, the data set has {spec.class_names}")
    theirs = dict(ckpt["model_config"])
    theirs.setdefault("encoder", "stdc-scratch")
    theirs.setdefault("decoder", "ppliteseg")
    theirs, ours = shaping_keys(theirs), shaping_keys(dataclasses.asdict(model.cfg))
    if theirs != ours:
        diff = sorted(k for k in ours if theirs.get(k) != ours[k])
        raise ConfigError(f"{path}: model differs from [model] in {diff} (train.init_from needs the same network)")
    result = model.load_state_dict(ckpt["state_dict"], strict=False)
    stray = [k for k in (*result.missing_keys, *result.unexpected_keys) if not k.startswith("aux.")]
    if stray:
        raise ConfigError(f"{path}: weights do not fit the model: {stray[:5]}")


def set_encoder_training(model: PPLiteSeg, epoch: int, cfg: Config) -> None:
    """Apply ``train.freeze_encoder_epochs``, ``freeze_stem`` and ``freeze_bn`` for ``epoch`` (after
    ``model.train()``, which would put frozen BatchNorm layers back in training mode)."""
    frozen = epoch <= cfg.train.freeze_encoder_epochs
    for param in model.encoder.parameters():
        param.requires_grad_(not frozen)
    if cfg.train.freeze_stem:
        # Fixed weights and statistics: nothing before the stride-4 feature needs a
        # gradient, so backpropagation stops there (the costly high-resolution layers).
        for module in model.encoder.stem_modules():
            module.eval()
            module.requires_grad_(False)
    if cfg.train.freeze_bn:
        for module in model.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
                module.requires_grad_(False)


def build_optimizer(model: PPLiteSeg, cfg: Config) -> torch.optim.Optimizer:
    """AdamW or SGD; norms and biases get no weight decay; the encoder's groups carry
    ``lr_mult = train.encoder_lr_mult`` (the schedule multiplies every group's rate by it)."""
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    groups = []
    for in_encoder, mult in ((True, cfg.train.encoder_lr_mult), (False, 1.0)):
        params = [p for p in model.parameters() if (id(p) in encoder_ids) == in_encoder]
        for decayed in (True, False):
            chosen = [p for p in params if (p.ndim > 1) == decayed]
            if chosen:
                groups.append(
                    {"params": chosen, "weight_decay": cfg.train.weight_decay if decayed else 0.0, "lr_mult": mult}
                )
    if cfg.train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.train.lr)
    return torch.optim.SGD(groups, lr=cfg.train.lr, momentum=cfg.train.momentum, nesterov=True)


def lr_factor(iteration: int, total: int, warmup: int, cfg: Config) -> float:
    """Learning-rate multiplier: linear warmup, then poly or cosine decay to the end."""
    tcfg = cfg.train
    if iteration < warmup:
        return tcfg.warmup_start + (1.0 - tcfg.warmup_start) * iteration / warmup
    progress = min(1.0, (iteration - warmup) / max(1, total - warmup))
    if tcfg.schedule == "poly":
        return (1.0 - progress) ** tcfg.poly_power
    return tcfg.min_lr_ratio + (1.0 - tcfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def validate(
    model: PPLiteSeg,
    loader: Any,
    loss_fn: SegmentationLoss,
    spec: DatasetSpec,
    progress: bool,
    device: torch.device | None = None,
) -> tuple[float, ConfusionMatrix]:
    """Mean validation loss and the confusion matrix at the model input size.

    ``loader`` yields ``(images, masks)`` batches (a DataLoader, or tensors already on
    the device). Truth pixels of ``spec.ignore_classes`` are left out of the matrix.

    Under a process group each rank passes its own batches (see :func:`val_batches`);
    the loss sums and the confusion matrix are all-reduced, so every rank returns the
    results of the whole validation list.
    """
    device = device or torch.device("cpu")
    model.eval()
    matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
    ignored = torch.tensor(spec.ignored_indices, dtype=torch.int64, device=device)
    total, frames = 0.0, 0
    with torch.no_grad():
        for images, masks in tqdm(loader, desc="  val", leave=False, disable=not progress, dynamic_ncols=True):
            images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            logits = model(images)
            total += loss_fn(logits, masks).item() * images.shape[0]
            frames += images.shape[0]
            if ignored.numel():
                masks = masks.masked_fill(torch.isin(masks, ignored), spec.ignore_index)
            matrix.update(logits.argmax(1), masks)
    if D.active():
        sums = D.all_reduce_detached(torch.tensor([total, frames], dtype=torch.float64, device=device))
        total, frames = float(sums[0]), int(sums[1])
        matrix.matrix = D.all_reduce_detached(torch.from_numpy(matrix.matrix).to(device)).cpu().numpy()
    return total / max(1, frames), matrix


def val_batches(num_frames: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Rank ``rank``'s validation batches: every ``world_size``-th batch of the
    single-process sequence, so that the union over the ranks is exactly that sequence."""
    batches = [list(range(i, min(i + batch_size, num_frames))) for i in range(0, num_frames, batch_size)]
    return batches[rank::world_size]


def local_batch_size(cfg: Config, world_size: int) -> int:
    """Per-process share of the global ``train.batch_size`` (which must divide evenly)."""
    if cfg.train.batch_size % world_size:
        raise ConfigError(
            f"{cfg.source}: train.batch_size: the global batch {cfg.train.batch_size} does not split evenly "
            f"over {world_size} processes"
        )
    return cfg.train.batch_size // world_size


class EpochTaggedSampler(Sampler[int]):
    """A :class:`DistributedSampler` whose indices carry the epoch (``epoch * n + i``).

    Persistent loader workers keep their own copy of the dataset, so the augmentation
    stream of each epoch has to travel with the index (see ``SegmentationDataset``).
    """

    def __init__(self, inner: DistributedSampler, num_frames: int):
        self.inner, self.num_frames, self.epoch = inner, num_frames, 1

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle and augmentation of ``epoch`` (>= 1)."""
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __iter__(self):
        return (self.epoch * self.num_frames + i for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class _TrainForward(nn.Module):
    """The training forward (main and auxiliary logits) as ``forward``, so that
    DistributedDataParallel sees it."""

    def __init__(self, model: PPLiteSeg, aux: bool):
        super().__init__()
        self.model = model
        self.aux = aux

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.aux:
            return self.model.forward_with_aux(x)
        return self.model(x), []


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6f}"


def device_val_batches(
    dataset: SegmentationDataset, batches: list[list[int]], device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation batches, resized and normalised once and held on ``device``."""
    out = []
    for batch in batches:
        items = [dataset[i] for i in batch]
        out.append((torch.stack([x for x, _ in items]).to(device), torch.stack([y for _, y in items]).to(device)))
    return out


def epochs_for_time(planned: int, done: int, elapsed_s: float, epoch_s: float, budget_s: float) -> int:
    """The number of epochs that fits ``budget_s``: ``done`` epochs took ``elapsed_s``,
    each further one ``epoch_s``; never more than ``planned`` nor fewer than ``done``.
    A 3 % margin absorbs jitter, so the last epoch ends inside the budget."""
    more = int(max(0.0, budget_s - elapsed_s) / max(epoch_s, 1e-6) * 0.97)
    return max(done, min(planned, done + more))


def prepare_run_dir(cfg: Config, out: Path | None) -> Path:
    """Create the run folder (refusing a non-empty one)."""
    if out is None:
        stem = Path(cfg.source).stem or "run"
        out = RUNS_DIR / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: run folder exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class Network:
    """The model and what trains it (:func:`build_network`)."""

    model: PPLiteSeg
    model_cfg: ModelConfig
    params: int
    flops: int
    step_net: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: SegmentationLoss
    val_loss_fn: SegmentationLoss


def build_network(cfg: Config, spec: DatasetSpec, info: D.DistInfo) -> Network:
    """The model on the training device (synchronised BatchNorm and DDP under torchrun),
    its optimizer and the training and validation losses."""
    device = info.device
    aux = cfg.train.loss.aux_weight > 0
    if info.distributed and cfg.train.freeze_encoder_epochs > 0:
        raise ConfigError(
            f"{cfg.source}: train.freeze_encoder_epochs: not supported under torchrun (DDP needs "
            "the same trainable parameters in every step); use train.encoder_lr_mult"
        )
    model = build_model(cfg, spec, aux)
    model_cfg = model.cfg
    set_encoder_training(model, 1, cfg)  # frozen BatchNorm before DDP records the trainable parameters
    params = count_parameters(model)
    flops = estimate_flops(model, model_cfg.width, model_cfg.height)
    if info.distributed:
        model = D.convert_sync_batchnorm(model, device)
    model.to(device)
    # The data set's ignored classes are no target of the loss either.
    loss_cfg = dataclasses.replace(
        cfg.train.loss,
        ignore_classes=sorted(set(cfg.train.loss.ignore_classes or []) | set(spec.ignored_indices)) or None,
    )
    loss_fn = SegmentationLoss(spec.num_classes, spec.ignore_index, loss_cfg, sync=info.distributed).to(device)
    val_loss_fn = SegmentationLoss(spec.num_classes, spec.ignore_index, loss_cfg).to(device)
    step_net: nn.Module = _TrainForward(model, aux)
    if info.distributed:
        step_net = DistributedDataParallel(
            step_net,
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,  # BatchNorm statistics are synchronised already
        )
    optimizer = build_optimizer(model, cfg)
    return Network(model, model_cfg, params, flops, step_net, optimizer, loss_fn, val_loss_fn)


@dataclass
class Loaders:
    """This process's training batches (per epoch) and validation batches (:func:`build_loaders`)."""

    tagged: EpochTaggedSampler
    steps: int
    local_batch: int
    val_loader: Any
    train_loader: DataLoader | None = None
    augmenter: DeviceAugmenter | None = None

    def train_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The ``steps`` training batches of ``epoch`` (after ``tagged.set_epoch(epoch)``)."""
        if self.augmenter is None:
            yield from self.train_loader
            return
        order = [i % self.tagged.num_frames for i in self.tagged]
        for step in range(self.steps):
            yield self.augmenter.batch(order[step * self.local_batch : (step + 1) * self.local_batch], epoch)


def build_loaders(
    cfg: Config,
    info: D.DistInfo,
    train_ds: SegmentationDataset,
    val_ds: SegmentationDataset,
    local_batch: int,
    log: Callable[..., None] = print,
) -> Loaders:
    """Loader workers (``data.augment_on = "loader"``) or frames held and augmented on the
    device (``"device"``), over this process's share of each global batch."""
    device = info.device
    # The same shuffled order for any number of processes: step k's global batch is
    # positions [k*B, (k+1)*B) of the epoch's permutation, rank r taking every W-th of them.
    sampler = DistributedSampler(
        train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
    )
    tagged = EpochTaggedSampler(sampler, len(train_ds))
    pin = device.type == "cuda"
    # Persistent workers: forking them again each epoch costs more than a short epoch's work.
    persistent = cfg.data.num_workers > 0
    my_val_batches = val_batches(len(val_ds), cfg.train.val_batch_size, info.rank, info.world_size)
    if cfg.data.augment_on == "device":
        augmenter = DeviceAugmenter.from_dataset(train_ds, device, cfg.data.augment, cfg.train.seed)
        val_loader: Any = device_val_batches(val_ds, my_val_batches, device)
        steps = len(sampler) // local_batch
        log(f"augmentation on {device}: {len(augmenter)} training frames held there")
        return Loaders(tagged, steps, local_batch, val_loader, augmenter=augmenter)
    train_loader = DataLoader(
        train_ds,
        batch_size=local_batch,
        sampler=tagged,
        drop_last=True,
        num_workers=cfg.data.num_workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    val_loader = DataLoader(
        val_ds,
        batch_sampler=my_val_batches,
        num_workers=cfg.data.num_workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    return Loaders(tagged, len(train_loader), local_batch, val_loader, train_loader=train_loader)


def _log_setup(
    cfg: Config,
    info: D.DistInfo,
    spec: DatasetSpec,
    train_ds: SegmentationDataset,
    val_ds: SegmentationDataset,
    net: Network,
    local_batch: int,
    run_dir: Path | None,
    log: Callable[..., None],
) -> None:
    model_cfg = net.model_cfg
    synthetic = f" + {train_ds.synthetic_count} GAN pairs per epoch" if train_ds.synthetic is not None else ""
    log(
        f"dataset {spec.name!r} at {cfg.data_root()}: "
        f"{len(train_ds.pairs)} train{synthetic} / {len(val_ds)} val frames "
        f"({'cached' if train_ds.cached else 'not cached'}), classes {spec.class_names}"
    )
    log(
        f"model {model_cfg.width}x{model_cfg.height}, decoder {model_cfg.decoder}, encoder {model_cfg.encoder}"
        f"{'' if model_cfg.encoder != 'stdc-scratch' else f' base {model_cfg.base_channels}'}"
        f"{f' from {cfg.train.init_from}' if cfg.train.init_from else ''}: "
        f"{net.params:,} params, {net.flops / 1e9:.3f} GFLOPs/frame; run folder {run_dir}"
    )
    where = (
        f"{info.world_size} processes ({info.backend}), {local_batch} frames each" if info.distributed else "1 process"
    )
    log(f"device {info.device}, {where}; global batch {cfg.train.batch_size}")


@dataclass
class _Progress:
    """The state of the epoch loop: the schedule (refitted to ``train.max_minutes``), the
    best epoch so far and the timings."""

    epochs: int
    steps: int
    warmup: int
    started: float
    iteration: int = 0
    best: dict[str, Any] | None = None
    stopped_at: int | None = None
    val_loss: float = math.nan
    step_times: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def total_iters(self) -> int:
        return self.epochs * self.steps


@dataclass
class _Run:
    """One training run's parts, and its steps: an epoch, its validation and logging, the
    checkpoints and, at the end, the export and the summary."""

    cfg: Config
    info: D.DistInfo
    log: Callable[..., None]
    progress: bool
    spec: DatasetSpec
    train_ds: SegmentationDataset
    val_ds: SegmentationDataset
    net: Network
    loaders: Loaders
    ema: AveragedModel | None
    run_dir: Path | None
    state: _Progress | None = None

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.net.model

    @property
    def csv_path(self) -> Path | None:
        return self.run_dir / "metrics.csv" if self.info.is_main else None

    def start(self) -> tuple[float, ConfusionMatrix] | None:
        """Write the metrics header and start the clock. A run that starts from a checkpoint
        records where it started: the checkpoint's validation loss and mIoU on this run's list."""
        cfg, steps = self.cfg, self.loaders.steps
        if self.csv_path is not None:
            with self.csv_path.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(
                    [
                        "epoch",
                        "train_loss",
                        "val_loss",
                        "val_miou",
                        *[f"iou_{n}" for n in self.spec.class_names],
                        "seconds",
                    ]
                )
        self.state = _Progress(cfg.train.epochs, steps, round(cfg.train.warmup_epochs * steps), time.perf_counter())
        if not cfg.train.init_from:
            return None
        initial = self.validate()
        self.log(f"start (train.init_from): val_loss {initial[0]:.4f} val_miou {initial[1].mean_iou():.4f}")
        return initial

    def validate(self) -> tuple[float, ConfusionMatrix]:
        return validate(
            self.eval_model, self.loaders.val_loader, self.net.val_loss_fn, self.spec, self.progress, self.info.device
        )

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training batches; the mean training loss."""
        cfg, net, state, device = self.cfg, self.net, self.state, self.info.device
        self.train_ds.set_epoch(epoch)
        self.loaders.tagged.set_epoch(epoch)
        net.step_net.train()
        set_encoder_training(net.model, epoch, cfg)
        # Summed on the device and read once per epoch: a read-back every step would stall
        # a GPU's kernel queue (see losses._ohem).
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(
            self.loaders.train_batches(epoch),
            total=state.steps,
            desc=f"epoch {epoch}/{state.epochs}",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        for step, (images, masks) in enumerate(bar):
            images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            lr = cfg.train.lr * lr_factor(state.iteration, state.total_iters, state.warmup, cfg)
            for group in net.optimizer.param_groups:
                group["lr"] = lr * group["lr_mult"]
            logits, aux_logits = net.step_net(images)
            # With several processes every term is that of the global batch (see losses.py).
            loss = net.loss_fn(logits, masks)
            if aux_logits:
                loss = loss + cfg.train.loss.aux_weight * sum(net.loss_fn.cross_entropy(a, masks) for a in aux_logits)
            net.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            net.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(net.model)
            loss_sum += loss.detach()
            state.iteration += 1
            if self.progress and step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
        return loss_sum.item() / state.steps

    def end_epoch(self, epoch: int, epoch_start: float, train_loss: float) -> bool:
        """Validate, keep the best epoch, refit the schedule, write the metrics row and the
        checkpoints, log; whether the run stops here (``train.max_minutes`` reached)."""
        cfg, state = self.cfg, self.state
        state.val_loss, matrix = self.validate()
        miou, iou = matrix.mean_iou(), matrix.iou()
        seconds = time.perf_counter() - epoch_start
        score = miou if not math.isnan(miou) else -math.inf
        improved = state.best is None or score > state.best["score"]
        val_iou = {n: float(v) for n, v in zip(self.spec.class_names, iou) if not math.isnan(v)}
        if improved:
            state.best = {
                "score": score,
                "epoch": epoch,
                "val_miou": 0.0 if math.isnan(miou) else miou,
                "val_iou": val_iou,
            }
        # Every rank takes the same decision (rank 0's clock), so none waits for another.
        out_of_time = bool(
            D.broadcast_object(
                cfg.train.max_minutes > 0 and time.perf_counter() - state.started > 60.0 * cfg.train.max_minutes
            )
        )
        state.epoch_seconds.append(seconds)
        self.fit_schedule(epoch)
        last = epoch == state.epochs or out_of_time
        if self.info.is_main:
            with self.csv_path.open("a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(
                    [
                        epoch,
                        _format(train_loss),
                        _format(state.val_loss),
                        _format(miou),
                        *[_format(v) for v in iou],
                        f"{seconds:.1f}",
                    ]
                )
            if improved or last:
                ckpt = self.checkpoint(epoch, miou, val_iou, state.val_loss)
                for name, wanted in (("best.pt", improved), ("last.pt", last)):
                    if wanted:
                        torch.save(ckpt, self.run_dir / name)
        self.log(
            f"epoch {epoch}/{state.epochs}: train_loss {train_loss:.4f} val_loss {state.val_loss:.4f} "
            f"val_miou {miou:.4f}{' (best)' if improved else ''} [{seconds:.1f}s]",
            flush=True,
        )
        if out_of_time and epoch < state.epochs:
            state.stopped_at = epoch
            self.log(
                f"stopped after epoch {epoch} of {state.epochs}: train.max_minutes = {cfg.train.max_minutes} reached"
            )
            return True
        return False

    def fit_schedule(self, epoch: int) -> None:
        """``train.fit_epochs_to_time``: set the epochs so the schedule ends inside the budget."""
        cfg, state = self.cfg, self.state
        if cfg.train.fit_epochs_to_time and epoch >= 2 and epoch < state.epochs:
            # From epoch 2 on (the first pays for start-up: cuDNN autotuning, caches), and
            # again after every epoch: runs sharing a GPU slow each other down as they start.
            recent = float(np.median(state.epoch_seconds[1:][-3:]))
            fitted = int(
                D.broadcast_object(
                    epochs_for_time(
                        cfg.train.epochs,
                        epoch,
                        time.perf_counter() - state.started,
                        recent,
                        60.0 * cfg.train.max_minutes,
                    )
                )
            )
            if fitted != state.epochs:
                self.log(
                    f"train.fit_epochs_to_time: {fitted} of {cfg.train.epochs} epochs fit in "
                    f"{cfg.train.max_minutes} min ({recent:.1f} s per epoch)"
                )
                state.epochs = fitted

    def checkpoint(self, epoch: int, miou: float, val_iou: dict[str, float], val_loss: float) -> dict[str, Any]:
        """The ``best.pt``/``last.pt`` content (the averaged weights under ``train.ema_decay``)."""
        return {
            "format": 1,
            "model_config": dataclasses.asdict(self.net.model_cfg),
            "state_dict": _cpu_state(self.eval_model),
            "dataset": self.spec.to_dict(),
            "config": self.cfg.to_dict(),
            "training": {
                "epoch": epoch,
                "val_miou": 0.0 if math.isnan(miou) else miou,
                "val_iou": val_iou,
                "val_loss": val_loss,
                "params": self.net.params,
                "flops": self.net.flops,
            },
        }

    def finish(self, initial: tuple[float, ConfusionMatrix] | None, export: bool) -> dict[str, Any]:
        """Rank 0 exports the best epoch to ONNX and writes ``summary.json``; every rank
        returns (the summary on rank 0) or raises the export's error."""
        cfg, state, spec, best = self.cfg, self.state, self.spec, self.state.best
        assert best is not None  # epochs >= 1 is validated
        summary: dict[str, Any] = {}
        error = None
        if self.info.is_main:
            onnx_path = self.run_dir / cfg.export.filename
            try:
                if export:
                    export_checkpoint(self.run_dir / "best.pt", onnx_path)
            except ExportError as err:
                error = str(err)
            else:
                summary = {
                    "dataset": spec.name,
                    "encoder": self.net.model_cfg.encoder,
                    "ignore_classes": list(spec.ignore_classes),
                    "init_from": cfg.train.init_from,
                    "data_root": str(cfg.data_root()),
                    "classes": spec.class_names,
                    "train_frames": len(self.train_ds.pairs),
                    "synthetic_frames_per_epoch": self.train_ds.synthetic_count
                    if self.train_ds.synthetic is not None
                    else 0,
                    "steps": state.iteration,
                    "val_frames": len(self.val_ds),
                    "epochs": state.epochs,
                    "epochs_configured": cfg.train.epochs,
                    "stopped_early_at_epoch": state.stopped_at,
                    "best_epoch": best["epoch"],
                    "val_miou": best["val_miou"],
                    "val_iou": best["val_iou"],
                    "initial_val_loss": initial[0] if initial is not None else None,
                    "initial_val_miou": initial[1].mean_iou() if initial is not None else None,
                    "final_val_loss": state.val_loss,
                    "params": self.net.params,
                    "flops": self.net.flops,
                    "device": str(self.info.device),
                    "world_size": self.info.world_size,
                    "seconds": round(time.perf_counter() - state.started, 1),
                    "seconds_per_step": round(float(np.median(state.step_times)), 4),
                    "onnx": str(onnx_path) if export else None,
                }
                (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
                self.log(f"best epoch {best['epoch']}: val mIoU {best['val_miou']:.4f}; wrote {onnx_path}")
        error = D.broadcast_object(error)  # the other ranks wait for the export and share its outcome
        if error is not None:
            raise ExportError(error)
        return summary


def train(
    cfg: Config,
    run_dir: Path | None,
    progress: bool = True,
    overrides: list[str] | None = None,
    dist_info: D.DistInfo | None = None,
    export: bool = True,
) -> dict[str, Any]:
    """Run a whole training; return the summary also written to ``summary.json``.

    ``export=False`` skips the ONNX export (experiments that only score checkpoints).

    ``dist_info`` (from :func:`foramen_train.distributed.setup`) selects the device and,
    under torchrun, this process's rank; without it the run is single-process on the CPU.
    Only rank 0 needs ``run_dir``, writes files and returns the summary (other ranks
    return an empty dict).

    The steps: :func:`build_datasets`, :func:`build_network`, :func:`build_loaders`, then
    per epoch ``_Run.train_epoch`` and ``_Run.end_epoch`` (validation, logging,
    checkpoints), and ``_Run.finish`` (ONNX export, ``summary.json``).
    """
    info = dist_info or D.DistInfo()
    log = print if info.is_main else (lambda *args, **kwargs: None)
    local_batch = local_batch_size(cfg, info.world_size)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    spec, train_ds, val_ds = build_datasets(cfg)
    net = build_network(cfg, spec, info)
    _log_setup(cfg, info, spec, train_ds, val_ds, net, local_batch, run_dir, log)
    if info.is_main:
        assert run_dir is not None, "rank 0 needs a run folder"
        (run_dir / "config.toml").write_text(
            to_toml(
                cfg.to_dict(),
                header=f"Effective configuration of this run.\nSource: {cfg.source}\nOverrides: {overrides or 'none'}",
            ),
            encoding="utf-8",
        )
    loaders = build_loaders(cfg, info, train_ds, val_ds, local_batch, log)
    # The average follows the replica's weights and BatchNorm statistics (use_buffers).
    ema = None
    if cfg.train.ema_decay > 0:
        ema = AveragedModel(net.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay), use_buffers=True)
    run = _Run(cfg, info, log, progress and info.is_main, spec, train_ds, val_ds, net, loaders, ema, run_dir)
    initial = run.start()
    epoch = 0
    while epoch < run.state.epochs:
        epoch += 1
        epoch_start = time.perf_counter()
        train_loss = run.train_epoch(epoch)
        run.state.step_times.append((time.perf_counter() - epoch_start) / loaders.steps)  # batch preparation included
        if run.end_epoch(epoch, epoch_start, train_loss):
            break
    return run.finish(initial, export)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="TOML training config")
    parser.add_argument("--out", type=Path, help="run folder (default: models/training/runs/<config>-<time>)")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--batch-size", type=int, help="override train.batch_size")
    parser.add_argument("--lr", type=float, help="override train.lr")
    parser.add_argument("--threads", type=int, help="override train.threads")
    parser.add_argument("--data-root", type=Path, help="override data.root (relative to the current folder)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key (TOML value), e.g. --set data.augment.hflip=0",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto (default): cuda:LOCAL_RANK when CUDA is available, else the CPU",
    )
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = parser.parse_args(argv)

    overrides = list(args.sets)
    for flag, key in (
        ("epochs", "train.epochs"),
        ("batch_size", "train.batch_size"),
        ("lr", "train.lr"),
        ("threads", "train.threads"),
    ):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.data_root is not None:
        overrides.append(f"data.root={json.dumps(str(args.data_root.resolve()))}")
    try:
        info = D.setup(args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        cfg = load_config(args.config, overrides)
        local_batch_size(cfg, info.world_size)
        run_dir, error = None, None
        if info.is_main:
            try:
                run_dir = prepare_run_dir(cfg, args.out)
            except ConfigError as err:
                error = str(err)
        error = D.broadcast_object(error)
        if error is not None:
            raise ConfigError(error)
        train(cfg, run_dir, progress=not args.no_progress, overrides=overrides, dist_info=info)
    except (ConfigError, DataError, ExportError, GanError) as err:
        prefix = f"[rank {info.rank}] " if info.distributed else ""
        print(f"{prefix}error: {err}", file=sys.stderr)
        return 1
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
