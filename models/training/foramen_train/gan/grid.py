"""Inspection: a picture grid of (label map, generated image, real frame) rows, then rows
of synthesised label maps and their images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..dataset_spec import DatasetSpec
from .sampling import GanSource, Generator


def colorize(mask: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """A label map in the dataset's class colours (unlabelled pixels white)."""
    palette = np.full((256, 3), 255, dtype=np.uint8)
    for c in spec.classes:
        palette[c.index] = c.color
    return palette[mask]


def save_grid(
    generator: Generator,
    masks: list[np.ndarray],
    images: list[np.ndarray],
    train_masks: list[np.ndarray],
    path: Path,
    rows: int = 6,
    synthetic_rows: int = 3,
    seed: int = 0,
    tile: int = 160,
) -> None:
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
            canvas[r * (tile + gap) : r * (tile + gap) + tile, c * (tile + gap) : c * (tile + gap) + tile] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
