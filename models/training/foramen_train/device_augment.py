"""Training augmentation on the training device: frames held there, batches built there.

On a lent GPU the loader workers, not the GPU, set the pace: 15 processes augmenting
512x512 frames with PIL fed a small network ~3 s per epoch of 310 frames, while the
network itself needs well under one. With ``data.augment_on = "device"`` the decoded
training frames (uint8) are copied to the device once, and each batch is warped,
jittered, blurred and glared there by tensor operations (:class:`DeviceAugmenter`).

The augmentation follows :func:`foramen_train.augment.augment_pair` (same configuration,
same parameter ranges, same order: flip, rotation about the centre, zoom and crop, then
blur, colour jitter and glare on the image only; areas entering from outside are black
in the image and class 0 in the mask). It is not bit-identical to the PIL path: the
resampling kernels differ at the sub-pixel level. The circular field-of-view mode
(``data.augment.circle``), the recolouring of single classes
(``data.augment.object_classes``) and the pasting of objects between frames
(``data.augment.paste_classes``) are PIL-only, and a config asking for any is refused.

Random parameters are drawn on the CPU by one NumPy generator per sample, seeded by
``(seed, epoch, frame index)`` as the loader path seeds its own: a frame is augmented the
same way whichever batch, process or device it lands in, so a run repeats on any device
and under torchrun N processes see what one process sees. The device does only the
arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .augment import AugmentConfig
from .data import SegmentationDataset
from .dataset_spec import DataError
from .frames import MEAN, STD, Normalization


class DeviceAugmenter:
    """Augmented training batches from frames held on ``device``.

    ``images`` is ``uint8 (N, 3, H, W)`` RGB and ``masks`` ``uint8 (N, H, W)``; every frame
    has the same size (the model input size may differ: the warp resamples to it).
    """

    def __init__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        width: int,
        height: int,
        cfg: AugmentConfig,
        seed: int = 0,
        normalization: Normalization = (MEAN, STD),
    ):
        if cfg.circle:
            raise ValueError('data.augment.circle: the circular field-of-view mode needs data.augment_on = "loader"')
        if cfg.object_classes:
            raise ValueError('data.augment.object_classes: recolouring single classes needs data.augment_on = "loader"')
        if cfg.paste_classes:
            raise ValueError('data.augment.paste_classes: pasting between frames needs data.augment_on = "loader"')
        if images.ndim != 4 or images.shape[1] != 3 or masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not pair up")
        cfg.validate()
        self.images, self.masks = images, masks
        self.width, self.height = width, height
        self.cfg, self.seed = cfg, seed
        self.device = images.device
        mean, std = normalization
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_dataset(
        cls,
        dataset: SegmentationDataset,
        device: torch.device,
        cfg: AugmentConfig,
        seed: int = 0,
    ) -> DeviceAugmenter:
        """Decode every frame of ``dataset`` once and hold it on ``device``."""
        first_image, _ = dataset.raw(0)
        height, width = first_image.shape[:2]
        images = torch.empty((len(dataset), 3, height, width), dtype=torch.uint8)
        masks = torch.empty((len(dataset), height, width), dtype=torch.uint8)
        for i in range(len(dataset)):
            image, mask = dataset.raw(i)
            if image.shape[:2] != (height, width):
                raise DataError(
                    f'{dataset.pairs[i][0]}: {image.shape[1]}x{image.shape[0]}, but data.augment_on = "device" '
                    f"needs frames of one size ({dataset.pairs[0][0]} is {width}x{height})"
                )
            images[i] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            masks[i] = torch.from_numpy(mask)
        return cls(images.to(device), masks.to(device), dataset.width, dataset.height, cfg, seed, dataset.normalization)

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, indices: list[int], epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``float32 (B, 3, h, w)`` images and ``int64 (B, h, w)`` masks of the
        frames ``indices``, as augmented in ``epoch``."""
        rngs = [np.random.default_rng([self.seed, epoch, i]) for i in indices]
        idx = torch.as_tensor(indices, device=self.device)
        src = self.images.index_select(0, idx).float()
        msk = self.masks.index_select(0, idx).float().unsqueeze(1)
        theta = torch.from_numpy(self.draw_geometry(rngs)).to(self.device)
        grid = F.affine_grid(theta, [len(indices), 1, self.height, self.width], align_corners=False)
        image = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        mask = F.grid_sample(msk, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        image = self.photometric(image / 255.0, rngs)
        return (image - self._mean) / self._std, mask.squeeze(1).round().long()

    def draw_geometry(self, rngs: list[np.random.Generator]) -> np.ndarray:
        """Per-sample ``affine_grid`` matrices ``(n, 2, 3)``: output -> source, normalised.

        The chain of :func:`foramen_train.augment.augment_pair`: the crop window (centre
        ``c``, half-size ``1/scale``) is taken from the rotated, flipped frame, so a
        source point is ``flip @ rotation^-1 @ (c + q / scale)`` for an output point
        ``q``. The rotation is done in pixel units (``to_px``), so non-square frames turn
        without shearing.
        """
        cfg = self.cfg
        src_h, src_w = self.images.shape[2:]
        to_px = np.diag([src_w / 2.0, src_h / 2.0])
        from_px = np.diag([2.0 / src_w, 2.0 / src_h])
        theta = np.zeros((len(rngs), 2, 3), dtype=np.float32)
        for i, rng in enumerate(rngs):
            flip = np.diag([-1.0 if rng.random() < cfg.hflip else 1.0, -1.0 if rng.random() < cfg.vflip else 1.0])
            angle = 0.0
            if cfg.rotate_deg > 0 and rng.random() < cfg.rotate_prob:
                angle = math.radians(float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)))
            rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            scale = float(math.exp(rng.uniform(math.log(cfg.scale_min), math.log(cfg.scale_max))))
            half = 1.0 / scale
            span = abs(1.0 - half)
            centre = np.array([rng.uniform(-span, span), rng.uniform(-span, span)])
            a = flip @ from_px @ rot @ to_px
            theta[i, :, :2] = a * half
            theta[i, :, 2] = a @ centre
        return theta

    def photometric(self, x: torch.Tensor, rngs: list[np.random.Generator]) -> torch.Tensor:
        """Blur, colour jitter and glare on ``float (B, 3, h, w)`` in [0, 1]; sample ``i``
        draws its parameters from ``rngs[i]`` (after its geometry)."""
        cfg = self.cfg
        n = x.shape[0]
        g = cfg.glare_max if cfg.glare_prob > 0 else 0
        draws = [self._draw_photometric(rng, g) for rng in rngs]

        def stacked(key: str) -> np.ndarray:
            return np.stack([d[key] for d in draws])

        sigma = stacked("sigma")
        if (sigma > 0).any():
            # One kernel size for every batch, so a frame's blur does not depend on its companions.
            x = _gaussian_blur(x, sigma, max(1, math.ceil(3.0 * max(0.3, cfg.blur_radius))))

        def dev(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=x.device)

        x = x * dev(stacked("brightness")).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * dev(stacked("contrast")).view(n, 1, 1, 1) + mean
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = (x - gray) * dev(stacked("saturation")).view(n, 1, 1, 1) + gray
        x = (x * dev(stacked("gain")).view(n, 3, 1, 1)).clamp(0.0, 1.0)
        x = x.pow(dev(stacked("gamma")).view(n, 1, 1, 1))
        if g > 0 and stacked("strength").any():
            x = _glare(x, {k: dev(stacked(k)) for k in ("cx", "cy", "major", "minor", "theta", "strength", "colour")})
        # The PIL path rounds to uint8 here; keeping the same quantisation keeps both paths alike.
        return torch.floor(x * 255.0 + 0.5) / 255.0

    def _draw_photometric(self, rng: np.random.Generator, g: int) -> dict[str, np.ndarray]:
        """One sample's blur, jitter and up to ``g`` glare parameters (the PIL path's
        ranges; glare centres in unit coordinates, sizes as a fraction of the shorter
        side, strength 0 for a highlight not drawn)."""
        cfg = self.cfg

        def factor(amount: float, size: int = 1) -> np.ndarray:
            return rng.uniform(1 - amount, 1 + amount, size=size) if amount > 0 else np.ones(size)

        sigma = 0.0
        if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
            sigma = float(rng.uniform(0.3, max(0.3, cfg.blur_radius)))
        out = {
            "sigma": np.float64(sigma),
            "brightness": factor(cfg.brightness)[0],
            "contrast": factor(cfg.contrast)[0],
            "saturation": factor(cfg.saturation)[0],
            "gain": factor(cfg.hue, 3),
            "gamma": factor(cfg.gamma)[0],
        }
        if g == 0:
            return out
        count = int(rng.integers(1, g + 1)) if rng.random() < cfg.glare_prob else 0
        major = rng.uniform(0.015, max(0.015, cfg.glare_size), size=g)
        out.update(
            cx=rng.uniform(0, 1, size=g),
            cy=rng.uniform(0, 1, size=g),
            major=major,
            minor=major / rng.uniform(1.0, 4.0, size=g),
            theta=rng.uniform(0.0, math.pi, size=g),
            strength=rng.uniform(0.85, 1.0, size=g) * (np.arange(g) < count),
            colour=np.stack([np.full(g, 255.0), 255.0 - rng.uniform(0, 10, g), 255.0 - rng.uniform(8, 30, g)], axis=-1)
            / 255.0,
        )
        return out


def _glare(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Specular highlights as in :func:`foramen_train.augment.add_glare`, all samples at once:
    ``p`` holds ``(n, g)`` parameters (``colour`` ``(n, g, 3)``)."""
    n, _, h, w = x.shape
    short = min(h, w)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w) + 0.5
    for j in range(p["cx"].shape[1]):
        dx, dy = xs - (p["cx"][:, j] * w).view(n, 1, 1), ys - (p["cy"][:, j] * h).view(n, 1, 1)
        cos, sin = torch.cos(p["theta"][:, j]).view(n, 1, 1), torch.sin(p["theta"][:, j]).view(n, 1, 1)
        u = (dx * cos + dy * sin) / (p["major"][:, j] * short).view(n, 1, 1)
        v = (-dx * sin + dy * cos) / (p["minor"][:, j] * short).view(n, 1, 1)
        alpha = p["strength"][:, j].view(n, 1, 1) * (1.25 * torch.exp(-2.0 * (u * u + v * v))).clamp(0.0, 1.0)
        x = x + (p["colour"][:, j].view(n, 3, 1, 1) - x) * alpha.unsqueeze(1)
    return x.clamp(0.0, 1.0)


def _gaussian_blur(x: torch.Tensor, sigma: np.ndarray, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with one ``sigma`` per sample (0 leaves a sample as is),
    kernels ``2 * radius + 1`` wide."""
    n, c, h, w = x.shape
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernels = np.zeros((n, offsets.size))
    for i, s in enumerate(sigma):
        if s > 0:
            k = np.exp(-0.5 * (offsets / s) ** 2)
            kernels[i] = k / k.sum()
        else:
            kernels[i, radius] = 1.0
    weight = torch.as_tensor(np.repeat(kernels, c, axis=0), dtype=x.dtype, device=x.device)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), weight.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), weight.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)
