"""Frames on disk and as model input: PaddleSeg list files, decoding, resizing, normalising.

A dataset is a folder ``DIR`` holding list files (``train.txt``, ``val.txt``, ...) whose
lines read ``image_path mask_path``, both relative to ``DIR``. Images are RGB (any mode
PIL can convert); masks are 8-bit single-channel PNGs holding one class index per pixel,
``ignore_index`` (255 by default) marking pixels without a label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .dataset_spec import DataError, DatasetSpec

MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean applied after scaling to [0, 1]."""
STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation applied after scaling to [0, 1]."""


Normalization = tuple[tuple[float, float, float], tuple[float, float, float]]
"""Per-channel ``(mean, std)`` after scaling to [0, 1] (an encoder's, see ``encoders.normalization``)."""


def read_list(root: Path, list_name: str) -> list[tuple[Path, Path]]:
    """Parse ``root/list_name`` into ``(image, mask)`` paths.

    Blank lines and lines starting with ``#`` are skipped. A line that is not exactly two
    paths, or that names a file that does not exist, raises :class:`DataError` naming the
    list file and line number.
    """
    list_path = root / list_name
    if not list_path.is_file():
        raise DataError(f"{list_path}: list file not found")
    pairs = []
    for lineno, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        if len(parts) != 2:
            raise DataError(f"{list_path}:{lineno}: expected 'image_path mask_path', got {text!r}")
        image, mask = root / parts[0], root / parts[1]
        for kind, path in (("image", image), ("mask", mask)):
            if not path.is_file():
                raise DataError(f"{list_path}:{lineno}: {kind} file not found: {path}")
        pairs.append((image, mask))
    if not pairs:
        raise DataError(f"{list_path}: the list is empty")
    return pairs


def evenly_spaced(pairs: list[tuple[Path, Path]], limit: int) -> list[tuple[Path, Path]]:
    """At most ``limit`` entries spread evenly over ``pairs`` (all when ``limit`` <= 0)."""
    if limit <= 0 or limit >= len(pairs):
        return pairs
    step = len(pairs) / limit
    return [pairs[int(i * step)] for i in range(limit)]


def load_image(path: Path) -> np.ndarray:
    """Decode an image to ``uint8 (H, W, 3)`` RGB."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except OSError as err:
        raise DataError(f"{path}: cannot decode image: {err}") from err


def read_mask_values(path: Path) -> np.ndarray:
    """Decode a mask to ``uint8 (H, W)`` as stored (no palette conversion, no label check)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise DataError(f"{path}: mask must be an 8-bit single-channel PNG (mode L or P), got mode {img.mode}")
            return np.asarray(img, dtype=np.uint8).copy()
    except OSError as err:
        raise DataError(f"{path}: cannot decode mask: {err}") from err


def load_mask(path: Path, spec: DatasetSpec) -> np.ndarray:
    """Decode a mask to ``uint8 (H, W)`` and check that it holds only known labels."""
    mask = read_mask_values(path)
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    bad = [int(v) for v in present if v >= spec.num_classes and v != spec.ignore_index]
    if bad:
        raise DataError(
            f"{path}: mask values {bad} are neither a class index (0..{spec.num_classes - 1}) "
            f"nor the ignore index {spec.ignore_index}"
        )
    return mask


def normalize(rgb: np.ndarray, normalization: Normalization = (MEAN, STD)) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB -> normalised ``float32 (3, H, W)``."""
    mean, std = normalization
    x = rgb.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_pair(image: np.ndarray, mask: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain (stretch) resize: image bilinear, mask nearest."""
    img = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    msk = Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(img), np.asarray(msk)
