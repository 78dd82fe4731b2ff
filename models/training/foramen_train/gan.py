"""Label-map-to-image GAN (pix2pix) for training-set augmentation, as the study did.

The study (Jiang et al. 2026) grew its training set with images a generative adversarial
network drew from segmentation label maps. This module is that part of the recipe:

* :class:`UNetGenerator`: the pix2pix generator (Isola et al., CVPR 2017, "Image-to-image
  translation with conditional adversarial networks"): an encoder-decoder with skip
  connections from a one-hot label map to an RGB image. Two departures from the paper,
  both for small CPU runs: the decoder upsamples by nearest neighbour and a 3x3
  convolution instead of a transposed convolution (no checkerboard artefacts, Odena et
  al., Distill 2016), and dropout is only active in training, so sampling is a
  deterministic function of the label map and the variety comes from the label maps.
* :class:`PatchDiscriminator`: the 70x70 PatchGAN: it sees the label map and an image and
  scores overlapping patches real or fake. Least-squares GAN loss (Mao et al. 2017, as the
  pix2pix code offers) plus the paper's L1 term (weight 100).
* :func:`synthesize_label_map`: new layouts from the training masks by flips, rotation,
  scale, elastic deformation (Simard et al. 2003) and recombination (two masks spliced
  along a wavy line; the instruments of one pasted onto another), so that synthetic
  images show arrangements the real set does not.
* :class:`GanSource`: the training recipe's ``[data.gan]`` option: synthetic pairs drawn
  per ``(seed, epoch, index)``, so a run is reproducible.

CLI::

    python -m foramen_train.gan train --config configs/gan-vocalfolds.toml [--out DIR]
    python -m foramen_train.gan grid --generator DIR/generator.pt [--list val.txt] [--out grid.png]
    python -m foramen_train.gan quality --generator DIR/generator.pt --features RUN/best.pt
        [--seg-model ../vocalfolds.onnx] [--out quality.json]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from torch import nn

from .data import AugmentConfig, DataError, DatasetSpec, augment_pair, evenly_spaced, load_dataset_spec, read_list
from .data import load_image, load_mask

GENERATOR_FORMAT = 1
"""Version of the ``generator.pt`` layout."""


class GanError(ValueError):
    """A GAN configuration, checkpoint or input problem; the message names the file or field."""


@dataclass
class LabelSynthConfig:
    """How new label maps are made from the training masks (``[labels]`` / ``[data.gan.labels]``).

    Attributes:
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        rotate_deg: rotation about the centre, uniform in +-rotate_deg (always applied).
        scale_min: smallest zoom (< 1 zooms out; the border is class ``fill_class``).
        scale_max: largest zoom (> 1 crops a random window).
        elastic_prob: probability of an elastic deformation.
        elastic_alpha: displacement amplitude as a fraction of the image side.
        elastic_sigma: smoothness of the displacement field (Gaussian sigma, fraction of the side).
        splice_prob: probability of splicing a second (also transformed) mask in along a
            wavy line through the middle.
        paste_prob: probability of pasting the ``paste_classes`` pixels of a second mask on top.
        paste_classes: classes that are objects in front of the scene (instruments).
        fill_class: class of the area that enters the frame from outside.
    """

    hflip: float = 0.5
    vflip: float = 0.2
    rotate_deg: float = 30.0
    scale_min: float = 0.8
    scale_max: float = 1.4
    elastic_prob: float = 0.7
    elastic_alpha: float = 0.06
    elastic_sigma: float = 0.08
    splice_prob: float = 0.3
    paste_prob: float = 0.3
    paste_classes: list[int] = field(default_factory=list)
    fill_class: int = 0

    def validate(self, num_classes: int | None = None) -> None:
        """Raise :class:`GanError` naming the offending field."""
        for name in ("hflip", "vflip", "elastic_prob", "splice_prob", "paste_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GanError(f"labels.{name}: must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rotate_deg", "elastic_alpha"):
            if getattr(self, name) < 0:
                raise GanError(f"labels.{name}: must be >= 0, got {getattr(self, name)}")
        if self.elastic_sigma <= 0:
            raise GanError(f"labels.elastic_sigma: must be > 0, got {self.elastic_sigma}")
        if not 0 < self.scale_min <= self.scale_max:
            raise GanError(f"labels.scale_min/scale_max: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}")
        if num_classes is not None:
            for c in [*self.paste_classes, self.fill_class]:
                if not 0 <= c < num_classes:
                    raise GanError(f"labels.paste_classes/fill_class: {c} is not a class index (0..{num_classes - 1})")


def _geometry(mask: np.ndarray, size: int, cfg: LabelSynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Flip, rotate, zoom and crop a mask to ``size x size`` (nearest neighbour)."""
    img = Image.fromarray(mask)
    if rng.random() < cfg.hflip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < cfg.vflip:
        img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if cfg.rotate_deg > 0:
        img = img.rotate(float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)), resample=Image.Resampling.NEAREST,
                         fillcolor=cfg.fill_class)
    scale = float(math.exp(rng.uniform(math.log(cfg.scale_min), math.log(cfg.scale_max))))
    w, h = img.size
    bw, bh = w / scale, h / scale
    x0 = float(rng.uniform(min(0.0, w - bw), max(0.0, w - bw)))
    y0 = float(rng.uniform(min(0.0, h - bh), max(0.0, h - bh)))
    # PIL fills a box outside the source with 0; pad with the fill class instead.
    pad = int(math.ceil(max(0.0, -x0, -y0, x0 + bw - w, y0 + bh - h)))
    if pad:
        padded = Image.new("L", (w + 2 * pad, h + 2 * pad), cfg.fill_class)
        padded.paste(img, (pad, pad))
        img, x0, y0 = padded, x0 + pad, y0 + pad
    return np.asarray(img.resize((size, size), Image.Resampling.NEAREST, box=(x0, y0, x0 + bw, y0 + bh)))


def elastic_deform(mask: np.ndarray, alpha: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Warp a label map by a smooth random displacement field (Simard et al. 2003).

    ``alpha`` (largest displacement) and ``sigma`` (field smoothness) are fractions of the
    image side; labels are resampled by nearest neighbour, so no new label values appear.
    """
    h, w = mask.shape
    side = max(h, w)
    fields = []
    for _ in range(2):
        noise = ndimage.gaussian_filter(rng.uniform(-1.0, 1.0, size=(h, w)), sigma * side, mode="reflect")
        peak = np.abs(noise).max()
        fields.append(noise / peak * alpha * side if peak > 0 else noise)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.stack([yy + fields[0], xx + fields[1]])
    return ndimage.map_coordinates(mask, coords, order=0, mode="nearest").astype(np.uint8)


def splice(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``a`` on one side of a wavy line through the middle third, ``b`` on the other."""
    h, w = a.shape
    angle = rng.uniform(0, math.pi)
    cx, cy = rng.uniform(w / 3, 2 * w / 3), rng.uniform(h / 3, 2 * h / 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    along = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    across = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    wave = 0.06 * max(h, w) * np.sin(2 * math.pi * along / (max(h, w) * rng.uniform(0.4, 1.0)) + rng.uniform(0, 6.3))
    return np.where(across + wave < 0, a, b).astype(np.uint8)


def synthesize_label_map(
    masks: list[np.ndarray], size: int, cfg: LabelSynthConfig, rng: np.random.Generator, ignore_index: int = 255
) -> np.ndarray:
    """A new ``uint8 (size, size)`` label map made from the training ``masks``.

    One mask is flipped, rotated, zoomed and cropped; with ``splice_prob`` a second one
    (transformed likewise) replaces it beyond a wavy line; with ``paste_prob`` the
    ``paste_classes`` pixels of another mask are drawn on top; with ``elastic_prob`` the
    result is elastically deformed. Unlabelled (``ignore_index``) pixels stay unlabelled.
    """
    if not masks:
        raise GanError("synthesize_label_map: no training masks")
    pick = lambda: masks[int(rng.integers(len(masks)))]  # noqa: E731
    out = _geometry(pick(), size, cfg, rng)
    if rng.random() < cfg.splice_prob:
        out = splice(out, _geometry(pick(), size, cfg, rng), rng)
    if cfg.paste_classes and rng.random() < cfg.paste_prob:
        other = _geometry(pick(), size, cfg, rng)
        on_top = np.isin(other, cfg.paste_classes)
        out = np.where(on_top, other, out).astype(np.uint8)
    if cfg.elastic_alpha > 0 and rng.random() < cfg.elastic_prob:
        out = elastic_deform(out, cfg.elastic_alpha, cfg.elastic_sigma, rng)
    return out


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``int64 (N, H, W)`` labels -> ``float32 (N, C, H, W)``; out-of-range labels (ignore) are all zero."""
    valid = (labels >= 0) & (labels < num_classes)
    hot = F.one_hot(torch.where(valid, labels, 0), num_classes).permute(0, 3, 1, 2).float()
    return hot * valid.unsqueeze(1)


@dataclass
class GeneratorConfig:
    """Shape of a :class:`UNetGenerator`.

    Attributes:
        num_classes: label map classes (input channels).
        size: square image side in pixels; a multiple of ``2 ** depth``.
        base_channels: channels of the first encoder level (doubling per level, capped at 8x).
        depth: encoder levels (each halves the side).
        dropout: dropout of the three innermost decoder levels in training (pix2pix: 0.5).
    """

    num_classes: int
    size: int = 128
    base_channels: int = 32
    depth: int = 6
    dropout: float = 0.5

    def channels(self) -> list[int]:
        """Output channels of each encoder level."""
        return [self.base_channels * min(2**i, 8) for i in range(self.depth)]

    def validate(self) -> None:
        """Raise :class:`GanError` on an impossible shape."""
        if self.num_classes < 1:
            raise GanError(f"gan.num_classes: must be >= 1, got {self.num_classes}")
        if self.depth < 2 or self.size % (2**self.depth):
            raise GanError(f"gan.size/gan.depth: size {self.size} must be a multiple of 2**depth (depth {self.depth} >= 2)")
        if self.base_channels < 4:
            raise GanError(f"gan.base_channels: must be >= 4, got {self.base_channels}")
        if not 0 <= self.dropout < 1:
            raise GanError(f"gan.dropout: must be in [0, 1), got {self.dropout}")


class UNetGenerator(nn.Module):
    """pix2pix U-Net: one-hot label map ``(N, C, S, S)`` -> RGB in [-1, 1] ``(N, 3, S, S)``."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        chans = cfg.channels()
        self.down = nn.ModuleList()
        cin = cfg.num_classes
        for i, cout in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=i in (0, len(chans) - 1))]
            # No norm on the first level (pix2pix) nor on the innermost, whose 2x2 maps
            # would leave instance statistics meaningless.
            if 0 < i < len(chans) - 1:
                layers.append(nn.InstanceNorm2d(cout, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            cin = cout
        self.up = nn.ModuleList()
        for i in reversed(range(len(chans) - 1)):
            # Input: the level below (after its own up block) joined with this level's skip.
            below = chans[-1] if i == len(chans) - 2 else chans[i + 1] * 2
            layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(below, chans[i], 3, padding=1, bias=False),
                      nn.InstanceNorm2d(chans[i], affine=True), nn.ReLU(inplace=True)]
            if i >= len(chans) - 4 and cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(chans[0] * 2, 3, 3, padding=1), nn.Tanh())

    def forward(self, labels_onehot: torch.Tensor) -> torch.Tensor:
        skips = []
        x = labels_onehot
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.out(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN on ``[one-hot labels, image]``: a map of real/fake scores per patch."""

    def __init__(self, num_classes: int, base_channels: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(num_classes + 3, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        cin = base_channels
        for i in range(1, layers + 1):
            cout = base_channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(cin, cout, 4, stride, 1, bias=False), nn.InstanceNorm2d(cout, affine=True),
                     nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        mods.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, labels_onehot: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([labels_onehot, image], dim=1))


def to_unit(rgb: np.ndarray) -> torch.Tensor:
    """``uint8 (N, H, W, 3)`` -> ``float32 (N, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``uint8 (N, H, W, 3)``."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class Generator:
    """A trained generator loaded from ``generator.pt``, drawing images from label maps."""

    def __init__(self, path: Path, device: torch.device | str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise GanError(f"{path}: generator checkpoint not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
            raise GanError(f"{path}: not a generator checkpoint: {err}") from err
        if not isinstance(state, dict) or state.get("format") != GENERATOR_FORMAT:
            raise GanError(f"{path}: not a generator checkpoint of format {GENERATOR_FORMAT}")
        self.path = path
        self.cfg = GeneratorConfig(**state["generator_config"])
        self.labels = LabelSynthConfig(**state["labels"])
        self.dataset = DatasetSpec.from_dict(state["dataset"])
        self.training = state.get("training", {})
        self.device = torch.device(device)
        self.net = UNetGenerator(self.cfg)
        self.net.load_state_dict(state["state_dict"])
        self.net.to(self.device).eval()

    @torch.no_grad()
    def generate(self, label_maps: np.ndarray, batch: int = 16) -> np.ndarray:
        """``uint8 (N, H, W)`` label maps -> ``uint8 (N, H, W, 3)`` images.

        Label maps of another size are resized (nearest) to the generator's input and the
        images resized back (bilinear), so the result matches the label maps pixel for pixel.
        """
        label_maps = np.asarray(label_maps)
        if label_maps.ndim != 3:
            raise GanError(f"generate: expected label maps (N, H, W), got shape {label_maps.shape}")
        n, h, w = label_maps.shape
        s = self.cfg.size
        out = np.empty((n, h, w, 3), dtype=np.uint8)
        for start in range(0, n, batch):
            chunk = torch.from_numpy(label_maps[start:start + batch].astype(np.int64))
            if (h, w) != (s, s):
                chunk = F.interpolate(chunk[:, None].float(), size=(s, s), mode="nearest")[:, 0].long()
            x = self.net(one_hot(chunk.to(self.device), self.cfg.num_classes))
            if (h, w) != (s, s):
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            out[start:start + len(chunk)] = to_uint8(x)
        return out


class GanSource:
    """Synthetic (image, mask) pairs for segmentation training: the ``[data.gan]`` option.

    Pair ``k`` of an epoch is a label map from :func:`synthesize_label_map` on the training
    masks, seeded by ``(seed, epoch, k)``, and the generator's image of it, at ``size``.
    """

    def __init__(self, generator: Generator, masks: list[np.ndarray], size: int, labels: LabelSynthConfig | None = None,
                 ignore_index: int = 255):
        self.generator = generator
        self.labels = labels or generator.labels
        self.labels.validate(generator.cfg.num_classes)
        self.size = size
        self.ignore_index = ignore_index
        self.masks = [np.asarray(Image.fromarray(m).resize((size, size), Image.Resampling.NEAREST)) for m in masks]

    def pair(self, seed: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(uint8 RGB (size, size, 3), uint8 mask (size, size))`` for one synthetic frame."""
        rng = np.random.default_rng([seed, epoch, index, 0x6A4])  # a stream apart from the real frames'
        mask = synthesize_label_map(self.masks, self.size, self.labels, rng, self.ignore_index)
        image = self.generator.generate(mask[None])[0]
        return image, mask


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


# --- training -------------------------------------------------------------------------------


@dataclass
class GanTrainConfig:
    """The ``[gan]`` section of a GAN training config.

    Attributes:
        size, base_channels, depth, dropout: the generator (:class:`GeneratorConfig`).
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

    size: int = 128
    base_channels: int = 32
    depth: int = 6
    dropout: float = 0.5
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


@dataclass
class GanDataSection:
    """The ``[data]`` section of a GAN training config (as in the segmentation recipe)."""

    root: str
    train_list: str = "train.txt"
    val_list: str = "val.txt"
    classes: list[str] | None = None
    ignore_index: int = 255
    train_limit: int = 0
    val_limit: int = 0
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        vflip=0.0, brightness=0.0, contrast=0.0, saturation=0.0, gamma=0.0, hue=0.0, blur_prob=0.0))


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
    from .config import ConfigError, _build, read_toml, resolve_path

    try:
        cfg = _build(GanConfig, {**read_toml(path, overrides), "source": str(path)}, str(path), "")
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


def _load_pairs(root: Path, list_name: str, limit: int, spec: DatasetSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = evenly_spaced(read_list(root, list_name), limit)
    return [(load_image(i), load_mask(m, spec)) for i, m in pairs]


def _gan_batch(pairs: list[tuple[np.ndarray, np.ndarray]], indices: list[int], size: int, augment: AugmentConfig | None,
               seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, masks = [], []
    for i in indices:
        image, mask = pairs[i]
        if augment is None:
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
            mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))
        else:
            image, mask = augment_pair(image, mask, size, size, augment, np.random.default_rng([seed, epoch, i]))
        images.append(image)
        masks.append(mask)
    return to_unit(np.stack(images)), torch.from_numpy(np.stack(masks).astype(np.int64))


def train_gan(cfg: GanConfig, out: Path, log=print) -> dict[str, Any]:
    """Train generator and discriminator; write ``generator.pt``, ``log.csv``, ``grid.png``
    and ``summary.json`` to ``out``; return the summary."""
    g = cfg.gan
    torch.set_num_threads(g.threads)
    torch.manual_seed(g.seed)
    root = Path(cfg.data.root)
    if not root.is_dir():
        raise GanError(f"{root}: dataset folder not found (data.root in {cfg.source})")
    spec = load_dataset_spec(root, cfg.data.classes, cfg.data.ignore_index)
    cfg.labels.validate(spec.num_classes)
    train_pairs = _load_pairs(root, cfg.data.train_list, cfg.data.train_limit, spec)
    val_pairs = _load_pairs(root, cfg.data.val_list, cfg.data.val_limit, spec)
    if len(train_pairs) < g.batch_size:
        raise GanError(f"{root / cfg.data.train_list}: {len(train_pairs)} frames, fewer than gan.batch_size={g.batch_size}")
    gen_cfg = GeneratorConfig(spec.num_classes, g.size, g.base_channels, g.depth, g.dropout)
    gen, disc = UNetGenerator(gen_cfg), PatchDiscriminator(spec.num_classes, g.disc_channels, g.disc_layers)
    opt_g = torch.optim.Adam(gen.parameters(), lr=g.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=g.lr, betas=(0.5, 0.999))
    steps = len(train_pairs) // g.batch_size
    out.mkdir(parents=True, exist_ok=True)
    from .config import to_toml

    (out / "config.toml").write_text(to_toml(cfg.to_dict(), header=f"Effective GAN configuration.\nSource: {cfg.source}"),
                                     encoding="utf-8")
    log(f"GAN on {root}: {len(train_pairs)} train / {len(val_pairs)} val pairs, {spec.num_classes} classes, "
        f"{g.size}x{g.size}; generator {sum(p.numel() for p in gen.parameters()):,} params, "
        f"discriminator {sum(p.numel() for p in disc.parameters()):,}")
    val_x, val_y = _gan_batch(val_pairs, list(range(len(val_pairs))), g.size, None, 0, 0)
    epochs, started, epoch_s = g.epochs, time.perf_counter(), []
    with (out / "log.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["epoch", "d_loss", "g_gan", "g_l1", "val_l1", "lr", "seconds"])
    epoch = 0
    while epoch < epochs:
        epoch += 1
        t0 = time.perf_counter()
        decay_start = g.decay_from * epochs
        lr = g.lr * (1.0 if epoch <= decay_start else max(0.0, 1 - (epoch - decay_start) / (epochs - decay_start + 1)))
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        order = np.random.default_rng([g.seed, epoch]).permutation(len(train_pairs))
        gen.train()
        disc.train()
        sums = np.zeros(3)
        for step in range(steps):
            real, labels = _gan_batch(train_pairs, order[step * g.batch_size:(step + 1) * g.batch_size].tolist(),
                                      g.size, cfg.data.augment, g.seed, epoch)
            cond = one_hot(labels, spec.num_classes)
            fake = gen(cond)
            # Discriminator: real patches -> 1, generated -> 0 (least squares).
            d_real, d_fake = disc(cond, real), disc(cond, fake.detach())
            d_loss = 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake)))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # Generator: fool the discriminator and stay close to the real image.
            d_fake = disc(cond, fake)
            g_gan = F.mse_loss(d_fake, torch.ones_like(d_fake))
            g_l1 = F.l1_loss(fake, real)
            opt_g.zero_grad(set_to_none=True)
            (g_gan + g.l1_weight * g_l1).backward()
            opt_g.step()
            sums += [d_loss.item(), g_gan.item(), g_l1.item()]
        gen.eval()
        with torch.no_grad():
            val_l1 = float(np.mean([F.l1_loss(gen(one_hot(val_y[i:i + 16], spec.num_classes)), val_x[i:i + 16]).item()
                                    for i in range(0, len(val_y), 16)]))
        seconds = time.perf_counter() - t0
        epoch_s.append(seconds)
        d_mean, gan_mean, l1_mean = sums / steps
        with (out / "log.csv").open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([epoch, f"{d_mean:.4f}", f"{gan_mean:.4f}", f"{l1_mean:.4f}", f"{val_l1:.4f}",
                                     f"{lr:.2e}", f"{seconds:.1f}"])
        log(f"epoch {epoch}/{epochs}: d {d_mean:.3f} g_gan {gan_mean:.3f} g_l1 {l1_mean:.4f} val_l1 {val_l1:.4f} "
            f"lr {lr:.1e} [{seconds:.1f}s]", flush=True)
        if g.max_minutes > 0 and epoch >= 2:
            # Fit the whole schedule (constant, then linear decay) into the time budget.
            per_epoch = float(np.median(epoch_s[1:][-3:]))
            left = 60.0 * g.max_minutes - (time.perf_counter() - started)
            epochs = max(epoch, min(g.epochs, epoch + int(left // per_epoch)))
    state = {
        "format": GENERATOR_FORMAT,
        "generator_config": dataclasses.asdict(gen_cfg),
        "labels": dataclasses.asdict(cfg.labels),
        "dataset": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
        "training": {"epochs": epoch, "val_l1": val_l1, "config": cfg.to_dict()},
    }
    torch.save(state, out / "generator.pt")
    summary = {"epochs": epoch, "epochs_configured": g.epochs, "steps": epoch * steps,
               "seconds": round(time.perf_counter() - started, 1), "val_l1": val_l1,
               "train_pairs": len(train_pairs), "val_pairs": len(val_pairs), "size": g.size}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    generator = Generator(out / "generator.pt")
    save_grid(generator, [m for _, m in val_pairs], [i for i, _ in val_pairs], [m for _, m in train_pairs],
              out / "grid.png", rows=6, synthetic_rows=3, seed=g.seed)
    log(f"wrote {out / 'generator.pt'} after {epoch} epochs ({summary['seconds']:.0f} s), val L1 {summary['val_l1']:.4f}")
    return summary


# --- inspection ------------------------------------------------------------------------------


def colorize(mask: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """A label map in the dataset's class colours (unlabelled pixels white)."""
    palette = np.full((256, 3), 255, dtype=np.uint8)
    for c in spec.classes:
        palette[c.index] = c.color
    return palette[mask]


def save_grid(generator: Generator, masks: list[np.ndarray], images: list[np.ndarray], train_masks: list[np.ndarray],
              path: Path, rows: int = 6, synthetic_rows: int = 3, seed: int = 0, tile: int = 160) -> None:
    """Write a PNG grid: rows of (label map, generated, real) for evenly spaced frames of
    ``masks``/``images``, then ``synthetic_rows`` rows of (new label map, generated, blank)."""
    spec = generator.dataset
    picks = [int(i * len(masks) / rows) for i in range(min(rows, len(masks)))]
    tiles: list[list[np.ndarray]] = []

    def fit(a: np.ndarray, nearest: bool) -> np.ndarray:
        resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
        return np.asarray(Image.fromarray(a).resize((tile, tile), resample))

    for i in picks:
        gen = generator.generate(masks[i][None])[0]
        tiles.append([fit(colorize(masks[i], spec), True), fit(gen, False), fit(images[i], False)])
    source = GanSource(generator, train_masks, generator.cfg.size)
    for k in range(synthetic_rows):
        image, mask = source.pair(seed, 0, k)
        tiles.append([fit(colorize(mask, spec), True), fit(image, False), np.full((tile, tile, 3), 255, np.uint8)])
    gap = 4
    canvas = np.full((len(tiles) * (tile + gap) - gap, 3 * (tile + gap) - gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            canvas[r * (tile + gap):r * (tile + gap) + tile, c * (tile + gap):c * (tile + gap) + tile] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)


# --- image quality ---------------------------------------------------------------------------


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 50, subset_size: int | None = None, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al., ICLR 2018) between feature sets.

    The unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged over
    ``subsets`` random subsets of ``subset_size`` rows of each set (all rows of the
    smaller set by default); returns (mean, standard deviation) over the subsets.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GanError(f"kid: need (n, d) and (m, d) features, got {x.shape} and {y.shape}")
    m = subset_size or min(len(x), len(y))
    if m < 2 or m > min(len(x), len(y)):
        raise GanError(f"kid: subset size {m} needs 2 <= size <= {min(len(x), len(y))}")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


class SegFeatures:
    """Image features from a segmentation checkpoint trained here (``best.pt``): the
    globally average- and max-pooled outputs of the encoder's last two stages.

    KID is usually computed on Inception features; no such network can be downloaded
    here, so the features come from the recipe's own encoder, trained on the real
    training frames of the same data set.
    """

    def __init__(self, checkpoint: Path):
        from .export import load_checkpoint

        try:
            self.model, _ = load_checkpoint(Path(checkpoint))
        except (FileNotFoundError, RuntimeError) as err:
            raise GanError(f"{checkpoint}: {err}") from err
        self.width, self.height = self.model.cfg.width, self.model.cfg.height

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch: int = 16) -> np.ndarray:
        from .data import normalize
        from .encoders import normalization

        norm = normalization(self.model.cfg.encoder)
        feats = []
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([
                normalize(np.asarray(Image.fromarray(im).resize((self.width, self.height), Image.Resampling.BILINEAR)),
                          norm)
                for im in images[start:start + batch]]))
            stages = self.model.encoder(x)[-2:]
            feats.append(torch.cat([torch.cat([s.mean((2, 3)), s.amax((2, 3))], 1) for s in stages], 1).numpy())
        return np.concatenate(feats)


def class_mean_painting(masks: list[np.ndarray], train_pairs: list[tuple[np.ndarray, np.ndarray]], num_classes: int,
                        blur: float = 2.0) -> list[np.ndarray]:
    """The trivial label-to-image baseline: each class painted in its mean training colour, blurred."""
    sums, counts = np.zeros((num_classes, 3)), np.zeros(num_classes)
    for image, mask in train_pairs:
        valid = mask < num_classes
        np.add.at(sums, mask[valid], image[valid].astype(np.float64))
        counts += np.bincount(mask[valid], minlength=num_classes)[:num_classes]
    colors = np.vstack([sums / np.maximum(counts, 1)[:, None], np.zeros((256 - num_classes, 3))]).astype(np.float32)
    return [np.clip(ndimage.gaussian_filter(colors[m], (blur, blur, 0)), 0, 255).astype(np.uint8) for m in masks]


def seg_miou(predict, meta: dict[str, Any], images: list[np.ndarray], masks: list[np.ndarray], num_classes: int,
             ignore_index: int) -> dict:
    """mIoU of a predictor (see :mod:`foramen_train.evaluate`) on images against label maps."""
    from .evaluate import preprocess
    from .metrics import ConfusionMatrix

    matrix = ConfusionMatrix(num_classes, ignore_index)
    for image, mask in zip(images, masks):
        logits = predict(preprocess(image, meta))
        h, w = mask.shape
        logits = F.interpolate(torch.from_numpy(logits), size=(h, w), mode="bilinear", align_corners=False)
        matrix.update(logits.argmax(1)[0], torch.from_numpy(mask.astype(np.int64)))
    return {"miou": matrix.mean_iou(), "iou": [None if math.isnan(v) else float(v) for v in matrix.iou()]}


def quality(generator: Generator, features: Path, data_root: Path, val_list: str, train_list: str,
            seg_model: Path | None, threads: int = 2) -> dict[str, Any]:
    """Image-quality numbers of a generator on the validation label maps (see the README)."""
    torch.set_num_threads(threads)
    spec = generator.dataset
    s = generator.cfg.size
    val = _load_pairs(data_root, val_list, 0, spec)
    train = _load_pairs(data_root, train_list, 0, spec)

    def small(im: np.ndarray, nearest: bool = False) -> np.ndarray:
        return np.asarray(Image.fromarray(im).resize((s, s), Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC))

    val_masks = [small(m, True) for _, m in val]
    # Every image at the generator's resolution, so that KID compares content, not sharpness.
    real_val = [small(i) for i, _ in val]
    real_train = [small(i) for i, _ in train]
    generated = list(generator.generate(np.stack(val_masks)))
    painted = class_mean_painting(val_masks, [(im, small(m, True)) for im, (_, m) in zip(real_train, train)],
                                  spec.num_classes)
    feat = SegFeatures(features)
    f_val = feat(np.stack(real_val))
    result: dict[str, Any] = {"generator": str(generator.path), "features": str(features), "size": s,
                              "val_frames": len(val), "train_frames": len(train), "kid": {}}
    for name, images in (("generated", generated), ("class_mean_painting", painted), ("real_train", real_train)):
        mean, std = kid(feat(np.stack(images)), f_val)
        result["kid"][name] = {"mean": mean, "std": std}
    result["l1_to_real"] = {
        "generated": float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(generated, real_val)])),
        "class_mean_painting": float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(painted, real_val)])),
    }
    if seg_model is not None:
        from .evaluate import onnx_predictor

        predict, meta = onnx_predictor(seg_model, threads)
        result["seg_model"] = str(seg_model)
        result["seg_miou"] = {name: seg_miou(predict, meta, images, val_masks, spec.num_classes, spec.ignore_index)
                              for name, images in (("real", real_val), ("generated", generated),
                                                   ("class_mean_painting", painted))}
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.gan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train the label-to-image GAN")
    p_train.add_argument("--config", type=Path, required=True)
    p_train.add_argument("--out", type=Path, help="output folder (default: models/training/runs/gan-<config>)")
    p_train.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p_grid = sub.add_parser("grid", help="PNG grid of (label, generated, real) rows")
    p_grid.add_argument("--generator", type=Path, required=True)
    p_grid.add_argument("--data-root", type=Path, help="default: the generator's training data")
    p_grid.add_argument("--list", default="val.txt")
    p_grid.add_argument("--rows", type=int, default=6)
    p_grid.add_argument("--synthetic-rows", type=int, default=3)
    p_grid.add_argument("--out", type=Path, required=True)
    p_q = sub.add_parser("quality", help="KID and segmentation mIoU of generated validation images")
    p_q.add_argument("--generator", type=Path, required=True)
    p_q.add_argument("--features", type=Path, required=True, help="segmentation checkpoint (best.pt) for KID features")
    p_q.add_argument("--seg-model", type=Path, help="ONNX segmentation model for the mIoU check")
    p_q.add_argument("--data-root", type=Path, help="default: the generator's training data")
    p_q.add_argument("--list", default="val.txt")
    p_q.add_argument("--train-list", default="train.txt")
    p_q.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            cfg = load_gan_config(args.config, args.sets)
            out = args.out or Path(__file__).resolve().parents[1] / "runs" / f"gan-{args.config.stem}"
            train_gan(cfg, out)
            return 0
        generator = Generator(args.generator)
        root = args.data_root or Path(generator.training["config"]["data"]["root"])
        if args.command == "grid":
            spec = generator.dataset
            pairs = _load_pairs(root, args.list, 0, spec)
            train_masks = [load_mask(m, spec) for _, m in read_list(root, generator.training["config"]["data"]["train_list"])]
            save_grid(generator, [m for _, m in pairs], [i for i, _ in pairs], train_masks, args.out, args.rows,
                      args.synthetic_rows)
            print(f"wrote {args.out}")
            return 0
        result = quality(generator, args.features, root, args.list, args.train_list, args.seg_model)
        text = json.dumps(result, indent=2)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    except (GanError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
