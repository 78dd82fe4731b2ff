"""Segmentation data in the PaddleSeg file-list format, with training augmentation.

A dataset is a folder ``DIR`` holding list files (``train.txt``, ``val.txt``, ...) whose
lines read ``image_path mask_path``, both relative to ``DIR``. Images are RGB (any mode
PIL can convert); masks are 8-bit single-channel PNGs holding one class index per pixel,
``ignore_index`` (255 by default) marking pixels without a label. An optional
``DIR/dataset.toml`` names the data set and its classes (``description`` optional, other
top-level keys ignored)::

    name = "lumbar-synth"
    description = "..."
    ignore_index = 255
    [[classes]]
    index = 0
    name = "background"
    color = [0, 0, 0]

Without it, the class names come from the training config (colours then from
:data:`DEFAULT_PALETTE`).

Only numpy and PIL are used. Decoded frames are cached in memory when the whole list fits
under a size limit, so each file is decoded once per run.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean applied after scaling to [0, 1]."""
STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation applied after scaling to [0, 1]."""

DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 60, 60),
    (60, 180, 75),
    (70, 130, 230),
    (255, 200, 40),
    (180, 80, 220),
    (40, 200, 200),
    (240, 130, 40),
    (250, 120, 190),
    (150, 110, 60),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
    (255, 255, 255),
)
"""Overlay colours for classes when the dataset has no ``dataset.toml`` (index order)."""


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class ClassInfo:
    """One segmentation class: its index in the masks, a name and an overlay colour."""

    index: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class DatasetSpec:
    """Name, classes, ignore index, ignored classes and (optional) description of a dataset.

    ``ignore_classes`` names classes whose truth pixels are left out of training and
    scoring, as Cityscapes and CamVid treat ``void``: the model keeps their output
    channel, but no pixel of theirs is a target or counts in the confusion matrix.
    """

    name: str
    classes: tuple[ClassInfo, ...]
    ignore_index: int = 255
    description: str = ""
    ignore_classes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain-data form (stored in checkpoints)."""
        return {
            "name": self.name,
            "classes": [{"index": c.index, "name": c.name, "color": list(c.color)} for c in self.classes],
            "ignore_index": self.ignore_index,
            "description": self.description,
            "ignore_classes": list(self.ignore_classes),
        }

    @classmethod
    def from_dict(cls, doc: dict) -> DatasetSpec:
        """Inverse of :meth:`to_dict`."""
        classes = tuple(ClassInfo(c["index"], c["name"], tuple(c["color"])) for c in doc["classes"])
        description = doc.get("description", "")
        return cls(
            name=doc["name"],
            classes=classes,
            ignore_index=doc["ignore_index"],
            description=description,
            ignore_classes=tuple(doc.get("ignore_classes", ())),
        )

    def with_ignored(self, names: list[str] | tuple[str, ...], where: str) -> DatasetSpec:
        """This spec with ``names`` added to ``ignore_classes``; unknown names are an
        error naming ``where`` (a file and key), and at least one class must stay scored."""
        unknown = [n for n in names if n not in self.class_names]
        if unknown:
            raise DataError(f"{where}: unknown class(es) {unknown}; the classes are {self.class_names}")
        merged = tuple(n for n in self.class_names if n in set(self.ignore_classes) | set(names))
        if len(merged) >= self.num_classes:
            raise DataError(f"{where}: ignoring {list(merged)} leaves no class to train or score")
        return dataclasses.replace(self, ignore_classes=merged)

    @property
    def ignored_indices(self) -> list[int]:
        """Indices of ``ignore_classes``."""
        return [c.index for c in self.classes if c.name in self.ignore_classes]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        """Class names in index order."""
        return [c.name for c in self.classes]


def load_dataset_spec(root: Path, class_names: list[str] | None = None, ignore_index: int = 255) -> DatasetSpec:
    """Read ``root/dataset.toml``, or build the spec from ``class_names``.

    When both exist, the names in ``dataset.toml`` must equal ``class_names`` (in order);
    a mismatch is an error rather than a silent choice.
    """
    toml_path = root / "dataset.toml"
    if toml_path.is_file():
        spec = _parse_dataset_toml(toml_path)
        if class_names is not None and list(class_names) != spec.class_names:
            raise DataError(
                f"{toml_path}: classes {spec.class_names} differ from the config's data.classes {list(class_names)}"
            )
        return spec
    if not class_names:
        raise DataError(f"{root}: no dataset.toml and no class names given (set data.classes in the config)")
    if len(class_names) > len(DEFAULT_PALETTE):
        raise DataError(
            f"{root}: {len(class_names)} classes but the default palette has {len(DEFAULT_PALETTE)} colours; "
            "add a dataset.toml with colours"
        )
    _check_ignore_index(ignore_index, len(class_names), f"{root}: ignore_index")
    classes = tuple(ClassInfo(i, str(n), DEFAULT_PALETTE[i]) for i, n in enumerate(class_names))
    return DatasetSpec(name=root.resolve().name, classes=classes, ignore_index=ignore_index)


def _parse_dataset_toml(path: Path) -> DatasetSpec:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid TOML: {err}") from err
    name = doc.get("name", path.parent.resolve().name)
    if not isinstance(name, str) or not name:
        raise DataError(f"{path}: name: expected a non-empty string, got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise DataError(f"{path}: description: expected a string, got {description!r}")
    entries = doc.get("classes")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: classes: expected a non-empty array of [[classes]] tables")
    classes = []
    for i, entry in enumerate(entries):
        where = f"{path}: classes[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected a table")
        index, cname, color = entry.get("index"), entry.get("name"), entry.get("color")
        if not isinstance(index, int) or isinstance(index, bool):
            raise DataError(f"{where}.index: expected an integer, got {index!r}")
        if not isinstance(cname, str) or not cname:
            raise DataError(f"{where}.name: expected a non-empty string, got {cname!r}")
        if (
            not isinstance(color, list)
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
        ):
            raise DataError(f"{where}.color: expected 3 integers in 0..255, got {color!r}")
        classes.append(ClassInfo(index, cname, (color[0], color[1], color[2])))
    classes.sort(key=lambda c: c.index)
    indices = [c.index for c in classes]
    if indices != list(range(len(classes))):
        raise DataError(f"{path}: classes: indices must be 0..{len(classes) - 1} without gaps, got {indices}")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: classes: duplicate class names in {names}")
    ignore_index = doc.get("ignore_index", 255)
    _check_ignore_index(ignore_index, len(classes), f"{path}: ignore_index")
    ignored = doc.get("ignore_classes", [])
    if not isinstance(ignored, list) or not all(isinstance(n, str) for n in ignored):
        raise DataError(f"{path}: ignore_classes: expected an array of class names, got {ignored!r}")
    spec = DatasetSpec(name=name, classes=tuple(classes), ignore_index=ignore_index, description=description)
    return spec.with_ignored(ignored, f"{path}: ignore_classes")


def _check_ignore_index(value: object, num_classes: int, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not num_classes <= value <= 255:
        raise DataError(f"{where}: expected an integer in {num_classes}..255, got {value!r}")


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


@dataclass
class DataSource:
    """Where the frames of a config's ``[data]`` section come from; the segmentation
    recipe's :class:`foramen_train.config.DataConfig` and the GAN's ``[data]`` section
    (:class:`foramen_train.gan.config.GanDataSection`) add their own fields to these.

    Attributes:
        root: dataset folder (PaddleSeg lists, optional ``dataset.toml``).
        train_list: training list file, relative to ``root``.
        val_list: validation list file, relative to ``root``.
        classes: class names in index order; required without ``dataset.toml``, and must
            match it when both are given.
        ignore_index: mask value without a label (used only without ``dataset.toml``).
        train_limit: use at most this many training frames, evenly spaced (0 = all).
        val_limit: use at most this many validation frames, evenly spaced (0 = all).
    """

    root: str
    train_list: str = "train.txt"
    val_list: str = "val.txt"
    classes: list[str] | None = None
    ignore_index: int = 255
    train_limit: int = 0
    val_limit: int = 0


@dataclass
class AugmentConfig:
    """Training augmentation (the ``[data.augment]`` section). Probabilities are in [0, 1].

    Attributes:
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        rotate_prob: probability of rotating about the image centre (the scope axis).
        rotate_deg: maximum rotation angle in degrees (uniform in +-rotate_deg).
        scale_min: smallest zoom (< 1 zooms out, padding with black / class 0).
        scale_max: largest zoom (> 1 crops a random window).
        brightness: maximum relative brightness change (factor in 1 +- brightness).
        contrast: maximum relative contrast change around the frame mean.
        saturation: maximum relative saturation change.
        gamma: maximum gamma deviation (gamma in 1 +- gamma).
        hue: maximum per-channel gain deviation (a cheap hue/white-balance shift).
        blur_prob: probability of a Gaussian blur.
        blur_radius: maximum blur radius in pixels of the output frame.
        glare_prob: probability of adding specular highlights (0 = never).
        glare_max: at most this many highlights per frame (1..glare_max).
        glare_size: largest highlight half-length, as a fraction of the frame's shorter side.
        circle: the frames show the scope's circular field of view on black: detect it per
            frame and keep it consistent under the geometric augmentation (frames where no
            circle is found are augmented as without this flag).
        circle_class: mask class of the area outside the circle (with ``circle``).
    """

    hflip: float = 0.5
    vflip: float = 0.5
    rotate_prob: float = 0.5
    rotate_deg: float = 30.0
    scale_min: float = 0.85
    scale_max: float = 1.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.2
    gamma: float = 0.2
    hue: float = 0.06
    blur_prob: float = 0.15
    blur_radius: float = 1.5
    glare_prob: float = 0.0
    glare_max: int = 3
    glare_size: float = 0.08
    circle: bool = False
    circle_class: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending ``data.augment.*`` field."""
        for name in ("hflip", "vflip", "rotate_prob", "blur_prob", "glare_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.augment.{name}: must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rotate_deg", "brightness", "contrast", "saturation", "gamma", "hue", "blur_radius"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.augment.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation", "gamma", "hue"):
            if getattr(self, name) >= 1:
                raise ValueError(f"data.augment.{name}: must be < 1, got {getattr(self, name)}")
        if self.glare_max < 1:
            raise ValueError(f"data.augment.glare_max: must be >= 1, got {self.glare_max}")
        if not 0 < self.glare_size <= 0.5:
            raise ValueError(f"data.augment.glare_size: must be in (0, 0.5], got {self.glare_size}")
        if not 0 <= self.circle_class <= 255:
            raise ValueError(f"data.augment.circle_class: must be a class index, got {self.circle_class}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(
                "data.augment.scale_min/scale_max: need 0 < scale_min <= scale_max, "
                f"got {self.scale_min}, {self.scale_max}"
            )


Normalization = tuple[tuple[float, float, float], tuple[float, float, float]]
"""Per-channel ``(mean, std)`` after scaling to [0, 1] (an encoder's, see ``encoders.normalization``)."""


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


@dataclass(frozen=True)
class Circle:
    """A circular field of view: centre and radius in pixels (continuous coordinates,
    pixel ``(i, j)`` covering ``[i, i+1) x [j, j+1)``)."""

    cx: float
    cy: float
    r: float


def detect_circle(image: np.ndarray, dark: int = 24, min_outside: float = 0.03) -> Circle | None:
    """Find the scope's circular field of view on a black surround, or ``None``.

    Boundary points (first and last pixel brighter than ``dark`` on each row and column,
    frame edges excluded) are fitted with a least-squares circle, refitted without the
    outliers (dark tissue at the rim, instruments). The fit is accepted when at least
    ``min_outside`` of the frame lies outside the circle and 98% of that area is darker
    than ``dark``; a frame filled with tissue or a non-circular view gives ``None``.
    """
    h, w = image.shape[:2]
    lum = image.max(axis=2) if image.ndim == 3 else image
    bright = lum > dark
    xs, ys = [], []
    for axis, length, _other in ((1, w, h), (0, h, w)):
        has = bright.any(axis=axis)
        first = bright.argmax(axis=axis)
        last = length - 1 - np.flip(bright, axis=axis).argmax(axis=axis)
        idx = np.flatnonzero(has)
        for edge, keep in ((first, first > 0), (last + 1, last < length - 1)):
            sel = idx[keep[idx]]
            along, across = edge[sel].astype(np.float64), sel.astype(np.float64) + 0.5
            if axis == 1:  # rows: boundary x at `edge`, y at the row centre
                xs.append(along), ys.append(across)
            else:
                xs.append(across), ys.append(along)
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.size < 12:
        return None
    keep = np.ones(x.size, dtype=bool)
    cx = cy = r = 0.0
    for _ in range(4):
        if keep.sum() < 12:
            return None
        a = np.stack([x[keep], y[keep], np.ones(int(keep.sum()))], axis=1)
        sol, *_ = np.linalg.lstsq(a, -(x[keep] ** 2 + y[keep] ** 2), rcond=None)
        cx, cy = -sol[0] / 2, -sol[1] / 2
        r2 = cx * cx + cy * cy - sol[2]
        if not r2 > 0:
            return None
        r = math.sqrt(r2)
        keep = np.abs(np.hypot(x - cx, y - cy) - r) <= max(1.5, 0.01 * r)
    if keep.mean() < 0.6 or r < 0.2 * min(w, h) or not (0 <= cx <= w and 0 <= cy <= h):
        return None
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    outside = dist > r + max(2.0, 0.01 * r)
    if outside.mean() < min_outside or (lum[outside] <= dark).mean() < 0.98:
        return None
    return Circle(float(cx), float(cy), float(r))


_DETECT = object()


def augment_pair(
    image: np.ndarray,
    mask: np.ndarray,
    width: int,
    height: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    circle: Circle | None | object = _DETECT,
) -> tuple[np.ndarray, np.ndarray]:
    """Geometric and photometric augmentation, ending at ``width x height``.

    Geometry (flips, rotation about the centre, random zoom and crop) is applied to image
    and mask together; the image is resampled bilinearly and the mask by nearest
    neighbour. Areas that enter the frame from outside are black in the image and class 0
    in the mask (the dark surround of an endoscope view), never 'ignore'. Colour jitter,
    blur and glare act on the image only, after resizing.

    With ``cfg.circle`` and a circular field of view (``circle``, detected from ``image``
    when not given), the geometry keeps that view consistent instead (see
    :func:`_augment_circle`).
    """
    if cfg.circle:
        found = detect_circle(image) if circle is _DETECT else circle
        if isinstance(found, Circle):
            return _augment_circle(image, mask, width, height, cfg, rng, found)
    img = Image.fromarray(image)
    msk = Image.fromarray(mask)
    if rng.random() < cfg.hflip:
        img, msk = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), msk.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < cfg.vflip:
        img, msk = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), msk.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if cfg.rotate_deg > 0 and rng.random() < cfg.rotate_prob:
        angle = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        msk = msk.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0)
    scale = float(math.exp(rng.uniform(math.log(cfg.scale_min), math.log(cfg.scale_max))))
    src_w, src_h = img.size
    box_w, box_h = src_w / scale, src_h / scale
    x0 = float(rng.uniform(min(0.0, src_w - box_w), max(0.0, src_w - box_w)))
    y0 = float(rng.uniform(min(0.0, src_h - box_h), max(0.0, src_h - box_h)))
    img, msk, box = _pad_to_box(img, msk, (x0, y0, x0 + box_w, y0 + box_h))
    img = img.resize((width, height), Image.Resampling.BILINEAR, box=box)
    msk = msk.resize((width, height), Image.Resampling.NEAREST, box=box)
    return _photometric(img, cfg, rng), np.asarray(msk)


def _augment_circle(
    image: np.ndarray,
    mask: np.ndarray,
    width: int,
    height: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    circle: Circle,
) -> tuple[np.ndarray, np.ndarray]:
    """Geometry that keeps a circular field of view ``A`` (the disk within the frame).

    Flips mirror about the circle's centre and rotation turns about it (the scope axis),
    so the disk maps onto itself. Zooming in magnifies about a random point of ``A``: the
    circle stays where it is and sees only what was inside it. Zooming out shrinks the
    whole view, circle included, about such a point (a smaller field of view, as another
    scope or capture size gives). Finally everything outside the resulting field of view
    is set to black in the image and ``circle_class`` in the mask, also after the colour
    jitter, so no tissue shows outside the circle. Areas with no source data (only where
    the circle is cut by the frame edge and rotated) are black / ``circle_class``.
    """
    fill = cfg.circle_class
    img = Image.fromarray(image)
    msk = Image.fromarray(mask)
    src_w, src_h = img.size
    cx, cy, r = circle.cx, circle.cy, circle.r
    flip_x, flip_y = rng.random() < cfg.hflip, rng.random() < cfg.vflip
    if flip_x or flip_y:  # mirror about the centre, rounded to half pixels so that it is exact
        matrix = (
            -1.0 if flip_x else 1.0,
            0.0,
            float(round(2 * cx)) if flip_x else 0.0,
            0.0,
            -1.0 if flip_y else 1.0,
            float(round(2 * cy)) if flip_y else 0.0,
        )
        img = img.transform(img.size, Image.Transform.AFFINE, matrix, Image.Resampling.NEAREST, fillcolor=(0, 0, 0))
        msk = msk.transform(msk.size, Image.Transform.AFFINE, matrix, Image.Resampling.NEAREST, fillcolor=fill)
    if cfg.rotate_deg > 0 and rng.random() < cfg.rotate_prob:
        angle = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, center=(cx, cy), fillcolor=(0, 0, 0))
        msk = msk.rotate(angle, resample=Image.Resampling.NEAREST, center=(cx, cy), fillcolor=fill)
    scale = float(math.exp(rng.uniform(math.log(cfg.scale_min), math.log(cfg.scale_max))))
    zx, zy = cx, cy  # fixed point of the zoom: uniform over the field of view
    for _ in range(64):
        px, py = float(rng.uniform(0, src_w)), float(rng.uniform(0, src_h))
        if (px - cx) ** 2 + (py - cy) ** 2 <= r * r:
            zx, zy = px, py
            break
    box = (zx - zx / scale, zy - zy / scale, zx + (src_w - zx) / scale, zy + (src_h - zy) / scale)
    img, msk, box = _pad_to_box(img, msk, box, fill=fill)
    img = img.resize((width, height), Image.Resampling.BILINEAR, box=box)
    msk = msk.resize((width, height), Image.Resampling.NEAREST, box=box)

    # Field of view in output pixels: frame coordinates q of each output pixel centre; for
    # a zoom-in the original disk, for a zoom-out the disk as shrunk about (zx, zy).
    qx = (np.arange(width) + 0.5) * (src_w / width)
    qy = (np.arange(height) + 0.5) * (src_h / height)
    if scale < 1:
        qx, qy = zx + (qx - zx) / scale, zy + (qy - zy) / scale
    fov = (qx[None, :] - cx) ** 2 + (qy[:, None] - cy) ** 2 <= r * r
    fov &= ((qx >= 0) & (qx <= src_w))[None, :] & ((qy >= 0) & (qy <= src_h))[:, None]
    out_img = _photometric(img, cfg, rng, fov)
    out_msk = np.array(msk)
    out_img[~fov] = 0
    out_msk[~fov] = fill
    return out_img, out_msk


def _photometric(
    img: Image.Image, cfg: AugmentConfig, rng: np.random.Generator, fov: np.ndarray | None = None
) -> np.ndarray:
    """Blur, colour jitter and glare (image only) on the resized frame."""
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, max(0.3, cfg.blur_radius)))))
    rgb = _color_jitter(np.asarray(img), cfg, rng)
    if cfg.glare_prob > 0 and rng.random() < cfg.glare_prob:
        rgb = add_glare(rgb, cfg, rng, fov)
    return rgb


def add_glare(
    rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, fov: np.ndarray | None = None
) -> np.ndarray:
    """Specular highlights: 1..``glare_max`` soft-edged, warm near-white blobs or streaks.

    Each highlight is an ellipse (aspect 1..4, random orientation, half-length up to
    ``glare_size`` of the shorter side) with a saturated core and a Gaussian falloff,
    blended over the image in a warm white (red 255, green and blue a little lower). Its
    centre lies in ``fov`` when given (the scope's field of view), and nothing is drawn
    outside ``fov``. The mask is not touched: glare hides tissue, it does not change it.
    """
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float32)
    short = min(h, w)
    candidates = np.flatnonzero(fov) if fov is not None else None
    if candidates is not None and candidates.size == 0:
        return rgb
    for _ in range(int(rng.integers(1, cfg.glare_max + 1))):
        if candidates is not None:
            flat = int(candidates[rng.integers(candidates.size)])
            cy, cx = flat // w + 0.5, flat % w + 0.5
        else:
            cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        major = float(rng.uniform(0.015, max(0.015, cfg.glare_size))) * short
        minor = major / float(rng.uniform(1.0, 4.0))
        theta = float(rng.uniform(0.0, math.pi))
        strength = float(rng.uniform(0.85, 1.0))
        colour = np.array([255.0, 255.0 - rng.uniform(0, 10), 255.0 - rng.uniform(8, 30)], dtype=np.float32)
        reach = int(math.ceil(1.6 * major)) + 1
        x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
        u = (dx * math.cos(theta) + dy * math.sin(theta)) / major
        v = (-dx * math.sin(theta) + dy * math.cos(theta)) / minor
        alpha = strength * np.clip(1.25 * np.exp(-2.0 * (u * u + v * v)), 0.0, 1.0)
        if fov is not None:
            alpha = alpha * fov[y0:y1, x0:x1]
        patch = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = patch + (colour - patch) * alpha[..., None]
    return (np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)


def _pad_to_box(
    img: Image.Image, msk: Image.Image, box: tuple[float, float, float, float], fill: int = 0
) -> tuple[Image.Image, Image.Image, tuple[float, float, float, float]]:
    """Pad image (black) and mask (class ``fill``) so that ``box`` lies inside; shift the box."""
    w, h = img.size
    left = max(0, math.ceil(-box[0]))
    top = max(0, math.ceil(-box[1]))
    right = max(0, math.ceil(box[2] - w))
    bottom = max(0, math.ceil(box[3] - h))
    if left == top == right == bottom == 0:
        return img, msk, box
    size = (w + left + right, h + top + bottom)
    padded_img = Image.new("RGB", size, (0, 0, 0))
    padded_img.paste(img, (left, top))
    padded_msk = Image.new("L", size, fill)
    padded_msk.paste(msk, (left, top))
    return padded_img, padded_msk, (box[0] + left, box[1] + top, box[2] + left, box[3] + top)


def _color_jitter(rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation, gamma and per-channel gain jitter on uint8 RGB."""
    x = rgb.astype(np.float32) / 255.0
    if cfg.brightness > 0:
        x *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if cfg.contrast > 0:
        mean = x.mean()
        x = (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.saturation > 0:
        gray = x @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        x = (x - gray[..., None]) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + gray[..., None]
    if cfg.hue > 0:
        x *= rng.uniform(1 - cfg.hue, 1 + cfg.hue, size=3).astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)
    if cfg.gamma > 0:
        x **= rng.uniform(1 - cfg.gamma, 1 + cfg.gamma)
    return (x * 255.0 + 0.5).astype(np.uint8)


@dataclass
class SegmentationDataset(Dataset):
    """Frames from a list file, resized to the model input and normalised.

    Items are ``(image float32 (3, H, W), mask int64 (H, W))``. With ``augment`` set, each
    item is augmented with a generator seeded by ``(seed, epoch, index)``, so a run is
    reproducible whatever the number of loader workers; call :meth:`set_epoch` before
    each epoch. With ``augment.circle`` each frame's circular field of view is detected
    once (:func:`detect_circle`) and remembered. Decoded frames are cached in memory when
    the list's decoded size is under ``cache_max_mb``.

    With ``synthetic`` (a :class:`foramen_train.gan.GanSource`) the dataset also holds
    ``synthetic_count`` generated pairs after the real frames, drawn anew for every epoch
    and augmented like the real ones. ``normalization`` is the model encoder's.
    """

    pairs: list[tuple[Path, Path]]
    spec: DatasetSpec
    width: int
    height: int
    augment: AugmentConfig | None = None
    seed: int = 0
    cache_max_mb: float = 2048.0
    epoch: int = 0
    synthetic: object | None = None
    synthetic_count: int = 0
    normalization: Normalization = (MEAN, STD)
    _cache: list[tuple[np.ndarray, np.ndarray]] | None = field(default=None, init=False, repr=False)
    _circles: dict[int, Circle | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.augment is not None:
            self.augment.validate()
            if self.augment.circle and self.augment.circle_class >= self.spec.num_classes:
                raise DataError(
                    f"data.augment.circle_class: {self.augment.circle_class} is not a class index "
                    f"(0..{self.spec.num_classes - 1})"
                )
        first_image, first_mask = self._decode(0)
        estimate_mb = len(self.pairs) * (first_image.nbytes + first_mask.nbytes) / 2**20
        if estimate_mb <= self.cache_max_mb:
            self._cache = [(first_image, first_mask)] + [self._decode(i) for i in range(1, len(self.pairs))]

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        image, mask = load_image(image_path), load_mask(mask_path, self.spec)
        if image.shape[:2] != mask.shape:
            raise DataError(
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        return image, mask

    @property
    def cached(self) -> bool:
        """Whether the decoded frames are held in memory."""
        return self._cache is not None

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs) + (self.synthetic_count if self.synthetic is not None else 0)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded ``(uint8 RGB (H, W, 3), uint8 mask (H, W))`` at the file's resolution."""
        return self._cache[index] if self._cache is not None else self._decode(index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # An index past the end carries its epoch (``epoch * len + i``, see
        # train.EpochTaggedSampler): persistent loader workers hold their own copy of this
        # object, so an epoch set in the training process would never reach them.
        epoch = self.epoch
        if index >= len(self):
            epoch, index = divmod(index, len(self))
        real = index < len(self.pairs)
        if real:
            image, mask = self.raw(index)
        else:
            image, mask = self.synthetic.pair(self.seed, epoch, index - len(self.pairs))  # type: ignore[union-attr]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            circle = None
            if self.augment.circle and real:
                if index not in self._circles:
                    self._circles[index] = detect_circle(image)
                circle = self._circles[index]
            image, mask = augment_pair(image, mask, self.width, self.height, self.augment, rng, circle=circle)
        else:
            image, mask = resize_pair(image, mask, self.width, self.height)
        return torch.from_numpy(normalize(image, self.normalization)), torch.from_numpy(mask.astype(np.int64))
