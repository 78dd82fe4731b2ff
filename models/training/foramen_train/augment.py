"""Training augmentation on the CPU (numpy + PIL): geometry on image and mask together,
then blur, colour jitter and glare on the image; frames showing the scope's circular field
of view keep it consistent (:func:`detect_circle`). ``foramen_train.device_augment`` does
the same on the training device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter


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
        object_classes: mask classes whose appearance is varied on its own, apart from the
            frame's colour jitter (instruments whose make differs between sites: a black
            or a white tube, a dark or a bright tool); empty = off.
        object_prob: probability, per frame and listed class present, of recolouring it.
        object_gamma_min, object_gamma_max: range of the gamma applied to the class's
            pixels (log-uniform; below 1 brightens dark pixels most, so a dark tube turns
            pale).
        object_saturation: largest relative loss of saturation of the recoloured pixels.
        paste_classes: mask classes cut from a random training frame and pasted onto the
            frame before everything else (copy-paste, :mod:`foramen_train.paste`), so
            objects appear in scenes they were not filmed in; empty = off.
        paste_prob: probability, per frame, of a paste.
        paste_scale_min, paste_scale_max: range of the pasted objects' scale (log-uniform,
            relative to the frame heights' ratio).
        paste_anchor_classes: the pasted object's centroid lands on a random pixel of these
            classes when the frame shows them (a tube in the airway), else anywhere.
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
    object_classes: list[int] = field(default_factory=list)
    object_prob: float = 0.5
    object_gamma_min: float = 0.35
    object_gamma_max: float = 1.5
    object_saturation: float = 0.6
    paste_classes: list[int] = field(default_factory=list)
    paste_prob: float = 0.5
    paste_scale_min: float = 0.7
    paste_scale_max: float = 1.3
    paste_anchor_classes: list[int] = field(default_factory=list)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending ``data.augment.*`` field."""
        probabilities = ("hflip", "vflip", "rotate_prob", "blur_prob", "glare_prob", "object_prob", "paste_prob")
        for name in (*probabilities, "object_saturation"):
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
        for name in ("object_classes", "paste_classes", "paste_anchor_classes"):
            if any(not 0 <= c <= 255 for c in getattr(self, name)):
                raise ValueError(f"data.augment.{name}: must be class indices, got {getattr(self, name)}")
        if not 0 < self.paste_scale_min <= self.paste_scale_max:
            raise ValueError(
                "data.augment.paste_scale_min/paste_scale_max: need 0 < paste_scale_min <= paste_scale_max, "
                f"got {self.paste_scale_min}, {self.paste_scale_max}"
            )
        if not self.object_gamma_min > 0:
            raise ValueError(f"data.augment.object_gamma_min: must be > 0, got {self.object_gamma_min}")
        if not self.object_gamma_max >= self.object_gamma_min:
            raise ValueError(
                f"data.augment.object_gamma_max: must be >= object_gamma_min ({self.object_gamma_min}), "
                f"got {self.object_gamma_max}"
            )
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(
                "data.augment.scale_min/scale_max: need 0 < scale_min <= scale_max, "
                f"got {self.scale_min}, {self.scale_max}"
            )


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
    out_msk = np.asarray(msk)
    return _photometric(recolour_objects(img, out_msk, cfg, rng), cfg, rng), out_msk


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
    out_msk = np.array(msk)
    out_img = _photometric(recolour_objects(img, out_msk, cfg, rng), cfg, rng, fov)
    out_img[~fov] = 0
    out_msk[~fov] = fill
    return out_img, out_msk


def recolour_objects(img: Image.Image, mask: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> Image.Image:
    """Vary the look of each class in ``cfg.object_classes`` on its own (image only).

    With probability ``object_prob`` per listed class present in ``mask``, that class's
    pixels get a gamma drawn log-uniformly in ``[object_gamma_min, object_gamma_max]`` and
    lose up to ``object_saturation`` of their saturation, blended in through the class's
    mask softened by a 1-pixel Gaussian, so no hard seam marks the boundary. Why: the
    classes that differ most between sites are made objects (tubes, instruments), and a
    training set from few sites shows few makes of them (measured on vocalfolds in the
    README, "Is it the tube's look": no gain there). Without listed classes no random
    number is drawn, so other recipes reproduce bit for bit.
    """
    if not cfg.object_classes:
        return img
    rgb = None
    for cls in cfg.object_classes:
        draw = rng.random()
        gamma = float(math.exp(rng.uniform(math.log(cfg.object_gamma_min), math.log(cfg.object_gamma_max))))
        keep = 1.0 - float(rng.uniform(0.0, cfg.object_saturation))
        inside = mask == cls
        if draw >= cfg.object_prob or not inside.any():
            continue
        if rgb is None:
            rgb = np.asarray(img).astype(np.float32) / 255.0
        soft = Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius=1.0))
        alpha = (np.asarray(soft).astype(np.float32) / 255.0)[..., None]
        changed = _scale_saturation(rgb**gamma, keep)
        rgb = rgb + (np.clip(changed, 0.0, 1.0) - rgb) * alpha
    if rgb is None:
        return img
    return Image.fromarray((rgb * 255.0 + 0.5).astype(np.uint8))


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
        x = _scale_saturation(x, rng.uniform(1 - cfg.saturation, 1 + cfg.saturation))
    if cfg.hue > 0:
        x *= rng.uniform(1 - cfg.hue, 1 + cfg.hue, size=3).astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)
    if cfg.gamma > 0:
        x **= rng.uniform(1 - cfg.gamma, 1 + cfg.gamma)
    return (x * 255.0 + 0.5).astype(np.uint8)


def _scale_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    """RGB in [0, 1] with its distance from its luma (ITU-R 601 weights) scaled by ``factor``."""
    gray = x @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    return (x - gray[..., None]) * factor + gray[..., None]
