"""GAN configuration: the GAN training config (``[data]``, ``[gan]``, ``[labels]``) and the
segmentation recipe's ``[data.gan]`` section.

The sections reuse the recipe's classes instead of repeating their fields: ``[gan]``
carries :class:`~.networks.GeneratorConfig`'s fields (less the class count) and
``[data]`` those of :class:`foramen_train.data.DataSource`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..augment import AugmentConfig
from ..data import DataSource
from ..sections import ConfigError, build_section, fields_from, read_toml, resolve_path
from .errors import GanError
from .labels import LabelSynthConfig
from .networks import GeneratorConfig


@dataclass
class GanAugmentConfig:
    """The segmentation recipe's ``[data.gan]`` section: synthetic pairs in every epoch.

    Attributes:
        generator: ``generator.pt`` from ``python -m foramen_train.gan train`` (relative
            paths from the repository root); empty = off.
        ratio: synthetic pairs per real training frame in each epoch (0.5 adds half as
            many synthetic pairs as there are real frames; 0 = off).
        labels: label-map synthesis (``[data.gan.labels]``); without it, the generator's
            own ``[labels]`` settings.
    """

    generator: str = ""
    ratio: float = 0.0
    labels: LabelSynthConfig | None = None

    @property
    def enabled(self) -> bool:
        """Whether synthetic pairs are added."""
        return bool(self.generator) and self.ratio > 0

    def count(self, real_frames: int) -> int:
        """Synthetic pairs per epoch for ``real_frames`` real ones."""
        return int(round(self.ratio * real_frames)) if self.enabled else 0


@fields_from(GeneratorConfig, exclude=("num_classes",))
class GanTrainConfig:
    """The ``[gan]`` section of a GAN training config.

    Attributes:
        size, base_channels, depth, dropout: the generator: the fields of
            :class:`GeneratorConfig` with its defaults (the class count comes from the data set).
        disc_channels: first-layer channels of the PatchGAN.
        disc_layers: PatchGAN depth (3 = the 70x70 receptive field).
        epochs: passes over the training pairs (at most; see ``max_minutes``).
        batch_size: pairs per step.
        lr: Adam learning rate of both networks (pix2pix: 2e-4, betas 0.5/0.999).
        l1_weight: weight of the L1 reconstruction term (pix2pix: 100).
        decay_from: fraction of the epochs after which the learning rate decays linearly to 0.
        seed: seed of the weights and the augmentation streams.
        threads: ``torch.set_num_threads``.
        max_minutes: stop after the epoch that ends past this wall time (0 = no limit);
            the learning-rate decay is refitted to the time, as in the segmentation recipe.
    """

    disc_channels: int = 32
    disc_layers: int = 3
    epochs: int = 100
    batch_size: int = 8
    lr: float = 2e-4
    l1_weight: float = 100.0
    decay_from: float = 0.5
    seed: int = 0
    threads: int = 2
    max_minutes: float = 0.0

    def generator_config(self, num_classes: int) -> GeneratorConfig:
        """The generator's shape for ``num_classes`` classes."""
        shape = {f.name: getattr(self, f.name) for f in dataclasses.fields(GeneratorConfig) if f.name != "num_classes"}
        return GeneratorConfig(num_classes=num_classes, **shape)


def _gan_augment() -> AugmentConfig:
    """Geometric augmentation only: the generator learns the frames' own colours."""
    return AugmentConfig(vflip=0.0, brightness=0.0, contrast=0.0, saturation=0.0, gamma=0.0, hue=0.0, blur_prob=0.0)


@dataclass
class GanDataSection(DataSource):
    """The ``[data]`` section of a GAN training config: the segmentation recipe's
    :class:`~foramen_train.data.DataSource` fields and ``augment`` (no colour jitter by default)."""

    augment: AugmentConfig = field(default_factory=_gan_augment)


@dataclass
class GanConfig:
    """A whole GAN training configuration: ``[data]``, ``[gan]`` and ``[labels]``."""

    data: GanDataSection
    gan: GanTrainConfig = field(default_factory=GanTrainConfig)
    labels: LabelSynthConfig = field(default_factory=LabelSynthConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


def load_gan_config(path: Path, overrides: list[str] | None = None) -> GanConfig:
    """Read a GAN config (same rules as the segmentation config: unknown keys are errors)."""
    try:
        cfg = build_section(GanConfig, {**read_toml(path, overrides), "source": str(path)}, str(path), "")
    except ConfigError as err:
        raise GanError(str(err)) from err
    cfg.data.root = resolve_path(path, cfg.data.root)
    try:
        cfg.data.augment.validate()
    except ValueError as err:
        raise GanError(f"{path}: {err}") from err
    cfg.labels.validate()
    if cfg.gan.batch_size < 1 or cfg.gan.epochs < 1 or cfg.gan.lr <= 0 or cfg.gan.l1_weight < 0:
        raise GanError(f"{path}: gan.batch_size, gan.epochs >= 1, gan.lr > 0, gan.l1_weight >= 0 needed")
    if not 0 <= cfg.gan.decay_from <= 1:
        raise GanError(f"{path}: gan.decay_from: must be in [0, 1], got {cfg.gan.decay_from}")
    return cfg
