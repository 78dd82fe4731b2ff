"""Shared constants and fixtures of the recipe's tests: the tiny synthetic data set, a tiny
``[model]`` section and augmentation settings that switch parts of the augmentation off.
Test modules import the constants and helpers (``from conftest import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def tiny_model(width: int = 64, height: int = 64) -> str:
    """A ``[model]`` section small enough for whole training runs in tests."""
    return f"""[model]
width = {width}
height = {height}
base_channels = 8
stage_blocks = [1, 1, 1]
decoder_channels = [8, 16, 32]
sppm_channels = 16
head_channels = 16
"""


TINY_MODEL = tiny_model()
"""The tiny ``[model]`` section at a 64x64 input."""

CLASSES = [("background", (0, 0, 0)), ("bone", (230, 60, 60)), ("ligament", (60, 180, 75)), ("disc", (70, 130, 230))]
"""The tiny data set's classes: (name, colour) in index order."""

PALETTE = np.array([c for _, c in CLASSES], dtype=np.uint8)
"""The class colours as a ``uint8 (classes, 3)`` lookup table."""

GEOMETRY_OFF = dict(hflip=0.0, vflip=0.0, rotate_prob=0.0, scale_min=1.0, scale_max=1.0)
"""``AugmentConfig`` fields that turn the geometric augmentation off."""

COLOUR_OFF = dict(brightness=0.0, contrast=0.0, saturation=0.0, gamma=0.0, hue=0.0, blur_prob=0.0)
"""``AugmentConfig`` fields that turn colour jitter and blur off (glare is off by default)."""

PHOTOMETRIC_OFF = {**COLOUR_OFF, "glare_prob": 0.0}
"""``AugmentConfig`` fields that turn every photometric change off, glare included."""


def augment_table(**values: float) -> str:
    """A ``[data.augment]`` TOML table with ``values``."""
    return "[data.augment]\n" + "".join(f"{key} = {value!r}\n" for key, value in values.items())


def synthetic_frame(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy frame with a rectangle (bone), an ellipse (disc) and a band (ligament)."""
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=np.uint8)
    x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
    mask[y0 : y0 + height // 3, x0 : x0 + width // 3] = 1
    band = np.abs((xx - rng.integers(0, width)) + 0.5 * (yy - height / 2)) < width / 12
    mask[band] = 2
    cx, cy = rng.integers(width // 4, 3 * width // 4), rng.integers(height // 4, 3 * height // 4)
    mask[((xx - cx) / (width / 6)) ** 2 + ((yy - cy) / (height / 8)) ** 2 < 1] = 3
    image = PALETTE.astype(np.float32)[mask] + rng.normal(0, 12, size=(height, width, 3))
    mask[:2, :] = 255  # an unlabelled strip
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(
    root: Path, n_train: int = 8, n_val: int = 4, width: int = 64, height: int = 64, with_toml: bool = True
) -> Path:
    """Write PNG frames, masks, ``train.txt``/``val.txt`` and (optionally) ``dataset.toml``."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for split, count in (("train", n_train), ("val", n_val)):
        lines = []
        for i in range(count):
            image, mask = synthetic_frame(rng, width, height)
            Image.fromarray(image).save(root / "images" / f"{split}{i:03d}.png")
            Image.fromarray(mask).save(root / "masks" / f"{split}{i:03d}.png")
            lines.append(f"images/{split}{i:03d}.png masks/{split}{i:03d}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    if with_toml:
        entries = "".join(
            f'\n[[classes]]\nindex = {i}\nname = "{n}"\ncolor = [{c[0]}, {c[1]}, {c[2]}]\n'
            for i, (n, c) in enumerate(CLASSES)
        )
        (root / "dataset.toml").write_text(
            f'name = "tiny-synth"\ndescription = "tiny synthetic set"\nignore_index = 255\n{entries}'
        )
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset with dataset.toml: 8 train / 4 val frames of 64x64."""
    return write_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)
