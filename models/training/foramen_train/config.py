"""Training configuration: a TOML file with ``[data]``, ``[model]``, ``[train]`` and
``[export]`` sections (see the README for every key).

Unknown keys and values of the wrong type are errors that name the file and the field.
A relative ``data.root`` is resolved against the repository root: the nearest ancestor
of the config file that holds a ``Cargo.toml`` or ``.git`` (the config file's folder
when there is none).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .augment import AugmentConfig
from .data import DataSource
from .gan.config import GanAugmentConfig
from .losses import LossConfig
from .model import ModelConfig
from .sections import (
    ConfigError,
    apply_override,
    build_section,
    fields_from,
    read_toml,
    repo_root_for,
    resolve_path,
    to_toml,
)

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "ExportConfig",
    "ModelSection",
    "TrainConfig",
    "apply_override",
    "config_from_dict",
    "load_config",
    "read_toml",
    "repo_root_for",
    "resolve_path",
    "to_toml",
]


@dataclass
class DataConfig(DataSource):
    """The ``[data]`` section: the fields of :class:`foramen_train.data.DataSource`
    (``root``, ``train_list``, ``val_list``, ``classes``, ``ignore_index``, ``train_limit``,
    ``val_limit``), then:

    Attributes:
        cache_max_mb: keep decoded frames in memory when a list's decoded size is below this.
        num_workers: DataLoader worker processes (0 = load in the training process).
        augment_on: ``"loader"`` (PIL in the loader workers) or ``"device"`` (the training
            frames held on the training device and augmented there by tensor operations,
            see :mod:`foramen_train.device_augment`; for GPUs that the workers cannot feed).
        augment: training augmentation (``[data.augment]``).
        gan: synthetic pairs from a label-to-image GAN in every epoch (``[data.gan]``,
            see :mod:`foramen_train.gan`); off by default.
        ignore_classes: class names whose truth pixels are left out of training and
            validation (added to ``dataset.toml``'s own ``ignore_classes``); written into
            the model's contract, so ``foramen eval`` with the model leaves them out too.
    """

    cache_max_mb: float = 2048.0
    num_workers: int = 0
    augment_on: str = "loader"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    gan: GanAugmentConfig = field(default_factory=GanAugmentConfig)
    ignore_classes: list[str] = field(default_factory=list)


@fields_from(ModelConfig, exclude=("num_classes", "aux_heads"))
class ModelSection:
    """The ``[model]`` section: the fields of :class:`ModelConfig` with its defaults, without
    the class count (from the dataset) and ``aux_heads`` (built when
    ``train.loss.aux_weight`` > 0)."""

    def build(self, num_classes: int, aux_heads: bool = False) -> ModelConfig:
        """The full model configuration for ``num_classes`` classes."""
        return ModelConfig(num_classes=num_classes, aux_heads=aux_heads, **dataclasses.asdict(self))


@dataclass
class TrainConfig:
    """The ``[train]`` section.

    Attributes:
        epochs: number of passes over the training list.
        batch_size: training batch size.
        val_batch_size: validation batch size.
        optimizer: ``"adamw"`` or ``"sgd"`` (Nesterov momentum).
        lr: peak learning rate (after warmup).
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay; not applied to norms and biases.
        momentum: SGD momentum.
        schedule: ``"poly"`` or ``"cosine"`` decay after warmup, per iteration.
        poly_power: exponent of the poly schedule.
        min_lr_ratio: final learning rate of the cosine schedule, relative to ``lr``.
        warmup_epochs: linear warmup length in epochs (fractions allowed).
        warmup_start: learning rate at the first iteration, relative to ``lr``.
        seed: seed of torch, numpy and the augmentation streams.
        threads: ``torch.set_num_threads`` value.
        ema_decay: keep an exponential moving average of the weights (per step, e.g.
            0.998); validation, the best checkpoint and the export use the average.
            0 = off.
        fit_epochs_to_time: with ``max_minutes``, time the epochs from the second on
            and set ``epochs`` (at most the configured number) so that the whole schedule
            (warmup and decay) ends inside ``max_minutes``, instead of being cut before the
            learning rate has decayed. Refitted after every epoch (median of the last
            three); the epochs run are recorded in ``summary.json``.
        max_minutes: stop after the first epoch that ends past this wall time and export
            the best checkpoint so far (0 = no limit). A safety net for runs on a lent
            machine; a stopped run says so in ``summary.json``.
        encoder_lr_mult: learning-rate multiplier of the encoder's parameters (a
            pretrained encoder is usually fine-tuned at 0.1 of the decoder's rate).
        freeze_bn: keep the encoder's BatchNorm layers in eval mode with fixed affine
            parameters (pretrained statistics; small batches cannot estimate better ones).
        freeze_encoder_epochs: train only the decoder for this many first epochs, so the
            random decoder does not push large gradients into pretrained weights.
        freeze_stem: keep the encoder's layers up to the stride-4 feature fixed (weights
            and BatchNorm statistics) for the whole run: generic pretrained edge filters,
            and no backward pass through the full-resolution layers (the bulk of a CPU step).
        init_from: start from this checkpoint's weights (a ``best.pt`` of the same
            architecture and classes; the input size and head dropout may differ, so a
            model trained small can go on at a larger size), as a fine-tune does; empty =
            no checkpoint.
        l2sp_decay: decoupled L2-SP: after every step each weight moves back toward its
            value at the start of the run by ``lr * l2sp_decay`` of the distance (as
            AdamW's weight decay pulls toward zero), so a fine-tune on a few frames keeps
            what the starting checkpoint knew. 0 = off.
        loss: loss settings (``[train.loss]``).
    """

    epochs: int = 40
    batch_size: int = 8
    val_batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.01
    momentum: float = 0.9
    schedule: str = "poly"
    poly_power: float = 0.9
    min_lr_ratio: float = 0.01
    warmup_epochs: float = 1.0
    warmup_start: float = 0.1
    seed: int = 0
    threads: int = 2
    max_minutes: float = 0.0
    ema_decay: float = 0.0
    fit_epochs_to_time: bool = False
    encoder_lr_mult: float = 1.0
    freeze_bn: bool = False
    freeze_encoder_epochs: int = 0
    freeze_stem: bool = False
    init_from: str = ""
    l2sp_decay: float = 0.0
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class ExportConfig:
    """The ``[export]`` section.

    Attributes:
        filename: ONNX file name inside the run folder.
        name: model name in the metadata (default: the dataset's name).
        description: free text for the metadata.
        opset: ONNX opset (17 or higher).
        dynamic_batch: export the batch dimension as dynamic.
        parity_frames: validation frames on which ONNX Runtime must match PyTorch.
        parity_tol: largest allowed absolute softmax difference.
    """

    filename: str = "model.onnx"
    name: str = ""
    description: str = ""
    opset: int = 18
    dynamic_batch: bool = True
    parity_frames: int = 4
    parity_tol: float = 1e-4


@dataclass
class Config:
    """A whole training configuration."""

    data: DataConfig
    model: ModelSection
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: str = ""

    def data_root(self) -> Path:
        """The dataset folder (absolute once loaded)."""
        return Path(self.data.root)

    def validate(self) -> None:
        """Check cross-field constraints; raise :class:`ConfigError` naming the field."""
        where = self.source or "config"
        checks = [
            (self.train.epochs >= 1, "train.epochs", "must be >= 1"),
            (self.train.batch_size >= 2, "train.batch_size", "must be >= 2 (BatchNorm of the pooled context)"),
            (self.train.val_batch_size >= 1, "train.val_batch_size", "must be >= 1"),
            (self.train.optimizer in ("adamw", "sgd"), "train.optimizer", "must be 'adamw' or 'sgd'"),
            (self.train.schedule in ("poly", "cosine"), "train.schedule", "must be 'poly' or 'cosine'"),
            (self.train.lr > 0, "train.lr", "must be > 0"),
            (self.train.weight_decay >= 0, "train.weight_decay", "must be >= 0"),
            (self.train.warmup_epochs >= 0, "train.warmup_epochs", "must be >= 0"),
            (0 < self.train.warmup_start <= 1, "train.warmup_start", "must be in (0, 1]"),
            (0 <= self.train.min_lr_ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]"),
            (self.train.threads >= 1, "train.threads", "must be >= 1"),
            (self.train.max_minutes >= 0, "train.max_minutes", "must be >= 0 (0 = no limit)"),
            (self.train.encoder_lr_mult >= 0, "train.encoder_lr_mult", "must be >= 0"),
            (self.train.freeze_encoder_epochs >= 0, "train.freeze_encoder_epochs", "must be >= 0"),
            (
                0 <= self.train.l2sp_decay * self.train.lr < 1,
                "train.l2sp_decay",
                "must be >= 0 with train.lr * train.l2sp_decay < 1 (0 = off)",
            ),
            (self.data.num_workers >= 0, "data.num_workers", "must be >= 0"),
            (self.data.augment_on in ("loader", "device"), "data.augment_on", "must be 'loader' or 'device'"),
            (
                not (self.data.augment_on == "device" and self.data.augment.circle),
                "data.augment_on",
                "'device' cannot keep a circular field of view (data.augment.circle); use 'loader'",
            ),
            (
                not (self.data.augment_on == "device" and self.data.augment.object_classes),
                "data.augment_on",
                "'device' does not recolour single classes (data.augment.object_classes); use 'loader'",
            ),
            (
                not (self.data.augment_on == "device" and self.data.augment.paste_classes),
                "data.augment_on",
                "'device' does not paste objects between frames (data.augment.paste_classes); use 'loader'",
            ),
            (self.data.gan.ratio >= 0, "data.gan.ratio", "must be >= 0 (0 = off)"),
            (
                not (self.data.gan.enabled and self.data.augment_on == "device"),
                "data.augment_on",
                "'device' holds a fixed set of frames; synthetic pairs (data.gan) need 'loader'",
            ),
            (0 <= self.train.ema_decay < 1, "train.ema_decay", "must be in [0, 1) (0 = off)"),
            (
                not self.train.fit_epochs_to_time or self.train.max_minutes > 0,
                "train.fit_epochs_to_time",
                "needs train.max_minutes > 0",
            ),
            (self.export.opset >= 17, "export.opset", "must be >= 17"),
            (self.export.parity_frames >= 1, "export.parity_frames", "must be >= 1"),
            (self.export.parity_tol > 0, "export.parity_tol", "must be > 0"),
            (self.export.filename.endswith(".onnx"), "export.filename", "must end in .onnx"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"{where}: {name}: {message}, got {_lookup(self, name)!r}")
        try:
            self.model.build(num_classes=1).validate()
            self.data.augment.validate()
            if self.data.gan.labels is not None:
                self.data.gan.labels.validate()
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for checkpoints and the run folder)."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


def _lookup(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def load_config(path: Path, overrides: list[str] | None = None) -> Config:
    """Read a config file and apply ``section.key=value`` overrides (TOML values)."""
    cfg = config_from_dict(read_toml(path, overrides), str(path))
    cfg.data.root = resolve_path(path, cfg.data.root)
    if cfg.data.gan.generator:
        cfg.data.gan.generator = resolve_path(path, cfg.data.gan.generator)
    if cfg.train.init_from:
        cfg.train.init_from = resolve_path(path, cfg.train.init_from)
    return cfg


def config_from_dict(doc: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a :class:`Config` from parsed TOML."""
    cfg = build_section(Config, {**doc, "source": source}, source, "")
    cfg.validate()
    return cfg
