"""New label maps from the training masks: flips, rotation, zoom, elastic deformation
(Simard et al. 2003) and recombination (two masks spliced along a wavy line; the
instruments of one pasted onto another), so that synthetic images show arrangements the
real set does not."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import GanError


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
            raise GanError(
                f"labels.scale_min/scale_max: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}"
            )
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
        img = img.rotate(
            float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)),
            resample=Image.Resampling.NEAREST,
            fillcolor=cfg.fill_class,
        )
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
