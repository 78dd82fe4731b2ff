"""Copy-paste augmentation (Ghiasi et al., "Simple Copy-Paste is a Strong Data
Augmentation Method for Instance Segmentation", CVPR 2021): objects cut from one training
frame, pasted onto another.

Why here: a training set from few sites shows each instrument only in the scenes it was
filmed in. On vocalfolds every tube is patient2's (patient1's training sequences hold
none), so the model has never seen a tube in patient1's airway, nor a tube beside a dark
airway that is not tube. Pasting the tubes of one frame into others, recoloured by
``data.augment.object_classes`` after the paste, shows such combinations
(training README, "Pasting the tubes into other frames").

The paste happens on the frame at its file resolution, before the geometric
augmentation, so the composite is flipped, rotated and zoomed as one frame. It draws
from its own random stream, so the rest of a frame's augmentation is the same with and
without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from .augment import AugmentConfig
from .dataset_spec import DataError

#: A donor needs at least this many object pixels: a few stray pixels are no object.
MIN_OBJECT_PX = 64


class ObjectPaster:
    """Pastes the ``cfg.paste_classes`` pixels of a random donor frame onto a frame.

    ``raw(i)`` returns frame ``i``'s ``(uint8 RGB (H, W, 3), uint8 mask (H, W))``; the
    donors are the frames whose mask holds at least :data:`MIN_OBJECT_PX` pixels of the
    listed classes (found once, here). ``names`` (the list's image paths) name the list in
    errors.
    """

    def __init__(
        self,
        count: int,
        raw: Callable[[int], tuple[np.ndarray, np.ndarray]],
        cfg: AugmentConfig,
        names: Sequence[str] = (),
    ):
        self.cfg = cfg
        self.raw = raw
        classes = np.asarray(cfg.paste_classes, dtype=np.uint8)
        self.classes = classes
        self.donors = [i for i in range(count) if np.isin(raw(i)[1], classes).sum() >= MIN_OBJECT_PX]
        if not self.donors:
            where = f" (first frame {names[0]})" if names else ""
            raise DataError(
                f"data.augment.paste_classes: no frame of the training list{where} shows classes "
                f"{list(cfg.paste_classes)} (at least {MIN_OBJECT_PX} pixels): nothing to paste"
            )

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, skip: int = -1
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(image, mask)`` with a donor's objects pasted in, with probability
        ``paste_prob``; the inputs are not modified. ``skip`` is the frame's own index
        (never its own donor when another exists)."""
        cfg = self.cfg
        draw = rng.random()
        donors = [d for d in self.donors if d != skip] or self.donors
        donor = donors[int(rng.integers(len(donors)))]
        flip = rng.random() < 0.5
        scale = float(np.exp(rng.uniform(np.log(cfg.paste_scale_min), np.log(cfg.paste_scale_max))))
        pick = rng.random(2)
        if draw >= cfg.paste_prob:
            return image, mask
        patch, patch_mask = self._cut(donor, flip, scale, mask.shape[0])
        top, left = self._place(mask, patch_mask, pick)
        return _composite(image, mask, patch, patch_mask, top, left)

    def _cut(self, donor: int, flip: bool, scale: float, height: int) -> tuple[np.ndarray, np.ndarray]:
        """The donor's object pixels in their bounding box, flipped and scaled by ``scale``
        times the ratio of the frame's ``height`` to the donor's; elsewhere the patch's
        mask is 255 (not pasted)."""
        d_image, d_mask = self.raw(donor)
        scale = scale * height / d_mask.shape[0]
        inside = np.isin(d_mask, self.classes)
        ys, xs = np.nonzero(inside)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        patch = Image.fromarray(d_image[y0:y1, x0:x1])
        patch_mask = Image.fromarray(np.where(inside, d_mask, 255).astype(np.uint8)[y0:y1, x0:x1])
        if flip:
            patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            patch_mask = patch_mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if scale != 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            patch = patch.resize(size, Image.Resampling.BILINEAR)
            patch_mask = patch_mask.resize(size, Image.Resampling.NEAREST)
        return np.asarray(patch), np.asarray(patch_mask)

    def _place(self, mask: np.ndarray, patch_mask: np.ndarray, pick: np.ndarray) -> tuple[int, int]:
        """Top-left corner of the patch: its object's centroid on a random pixel of the
        ``paste_anchor_classes`` when the frame shows them (an airway for a tube, say),
        else its centre anywhere in the frame. The patch may stick out of the frame."""
        h, w = mask.shape
        ph, pw = patch_mask.shape
        ys, xs = np.nonzero(patch_mask != 255)
        cy, cx = float(ys.mean()), float(xs.mean())
        anchors = np.flatnonzero(np.isin(mask, self.cfg.paste_anchor_classes)) if self.cfg.paste_anchor_classes else []
        if len(anchors):
            ay, ax = divmod(int(anchors[min(int(pick[0] * len(anchors)), len(anchors) - 1)]), w)
            return round(ay - cy), round(ax - cx)
        return round(pick[0] * h - ph / 2), round(pick[1] * w - pw / 2)


def _composite(
    image: np.ndarray, mask: np.ndarray, patch: np.ndarray, patch_mask: np.ndarray, top: int, left: int
) -> tuple[np.ndarray, np.ndarray]:
    """The patch's object pixels over the frame at ``(top, left)``, clipped to the frame:
    labels exactly, the image through the object's mask softened by a 1-pixel Gaussian so
    no hard seam outlines the pasted object (a seam the model could learn to look for)."""
    h, w = mask.shape
    ph, pw = patch_mask.shape
    fy0, fx0, fy1, fx1 = max(top, 0), max(left, 0), min(top + ph, h), min(left + pw, w)
    if fy0 >= fy1 or fx0 >= fx1:
        return image, mask
    py0, px0 = fy0 - top, fx0 - left
    region = (slice(fy0, fy1), slice(fx0, fx1))
    sub = (slice(py0, py0 + fy1 - fy0), slice(px0, px0 + fx1 - fx0))
    inside = patch_mask[sub] != 255
    out_mask = mask.copy()
    out_mask[region][inside] = patch_mask[sub][inside]
    soft = Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius=1.0))
    alpha = (np.asarray(soft).astype(np.float32) / 255.0)[..., None]
    out_image = image.copy()
    base = out_image[region].astype(np.float32)
    out_image[region] = (base + (patch[sub].astype(np.float32) - base) * alpha + 0.5).astype(np.uint8)
    return out_image, out_mask
