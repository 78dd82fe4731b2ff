"""Training augmentation on the training device: frames held there, batches built there.

On a lent GPU the loader workers, not the GPU, set the pace: 15 processes augmenting
512x512 frames with PIL fed a small network ~3 s per epoch of 310 frames, while the
network itself needs well under one. With ``data.augment_on = "device"`` the decoded
training frames (uint8) are copied to the device once, and each batch is warped,
jittered, blurred and glared there by tensor operations (:class:`DeviceAugmenter`).

The augmentation follows :func:`foramen_train.data.augment_pair` (same configuration,
same parameter ranges, same order: flip, rotation about the centre, zoom and crop, then
blur, colour jitter and glare on the image only; areas entering from outside are black
in the image and class 0 in the mask). It is not bit-identical to the PIL path: the
resampling kernels differ at the sub-pixel level. The circular field-of-view mode
(``data.augment.circle``) is PIL-only, and a config asking for both is refused.

Random parameters are drawn on the CPU by a NumPy generator seeded by
``(seed, epoch, rank, step)``, so a run repeats on any device and the device does only
the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .data import MEAN, STD, AugmentConfig, DataError, SegmentationDataset

AUGMENT_ON = ("loader", "device")
"""Values of ``data.augment_on``: PIL in the loader workers, or tensors on the device."""


class DeviceAugmenter:
    """Augmented training batches from frames held on ``device``.

    ``images`` is ``uint8 (N, 3, H, W)`` RGB and ``masks`` ``uint8 (N, H, W)``; every frame
    has the same size (the model input size may differ: the warp resamples to it).
    """

    def __init__(
        self, images: torch.Tensor, masks: torch.Tensor, width: int, height: int, cfg: AugmentConfig,
        seed: int = 0, rank: int = 0,
    ):
        if cfg.circle:
            raise ValueError("data.augment.circle: the circular field-of-view mode needs data.augment_on = \"loader\"")
        if images.ndim != 4 or images.shape[1] != 3 or masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not pair up")
        cfg.validate()
        self.images, self.masks = images, masks
        self.width, self.height = width, height
        self.cfg, self.seed, self.rank = cfg, seed, rank
        self.device = images.device
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_dataset(
        cls, dataset: SegmentationDataset, device: torch.device, cfg: AugmentConfig, seed: int = 0, rank: int = 0,
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
                    f"{dataset.pairs[i][0]}: {image.shape[1]}x{image.shape[0]}, but data.augment_on = \"device\" "
                    f"needs frames of one size ({dataset.pairs[0][0]} is {width}x{height})"
                )
            images[i] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            masks[i] = torch.from_numpy(mask)
        return cls(images.to(device), masks.to(device), dataset.width, dataset.height, cfg, seed, rank)

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, indices: list[int], epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``float32 (B, 3, h, w)`` images and ``int64 (B, h, w)`` masks."""
        rng = np.random.default_rng([self.seed, epoch, self.rank, step])
        idx = torch.as_tensor(indices, device=self.device)
        src = self.images.index_select(0, idx).float()
        msk = self.masks.index_select(0, idx).float().unsqueeze(1)
        theta = torch.from_numpy(self.draw_geometry(rng, len(indices))).to(self.device)
        grid = F.affine_grid(theta, [len(indices), 1, self.height, self.width], align_corners=False)
        image = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        mask = F.grid_sample(msk, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        image = self.photometric(image / 255.0, rng)
        return (image - self._mean) / self._std, mask.squeeze(1).round().long()

    def draw_geometry(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Per-sample ``affine_grid`` matrices ``(n, 2, 3)``: output -> source, normalised.

        The chain of :func:`foramen_train.data.augment_pair`: the crop window (centre
        ``c``, half-size ``1/scale``) is taken from the rotated, flipped frame, so a
        source point is ``flip @ rotation^-1 @ (c + q / scale)`` for an output point
        ``q``. The rotation is done in pixel units (``to_px``), so non-square frames turn
        without shearing.
        """
        cfg = self.cfg
        src_h, src_w = self.images.shape[2:]
        to_px = np.diag([src_w / 2.0, src_h / 2.0])
        from_px = np.diag([2.0 / src_w, 2.0 / src_h])
        theta = np.zeros((n, 2, 3), dtype=np.float32)
        for i in range(n):
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

    def photometric(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Blur, colour jitter and glare on ``float (B, 3, h, w)`` in [0, 1]."""
        cfg = self.cfg
        n = x.shape[0]
        if cfg.blur_prob > 0:
            blur = rng.random(n) < cfg.blur_prob
            sigma = rng.uniform(0.3, max(0.3, cfg.blur_radius), size=n)
            if blur.any():
                x = _gaussian_blur(x, np.where(blur, sigma, 0.0))

        def factors(amount: float, size: tuple[int, ...] = ()) -> torch.Tensor:
            values = rng.uniform(1 - amount, 1 + amount, size=(n, *size)) if amount > 0 else np.ones((n, *size))
            return torch.as_tensor(values, dtype=torch.float32, device=x.device)

        brightness, contrast = factors(cfg.brightness), factors(cfg.contrast)
        saturation, gain, gamma = factors(cfg.saturation), factors(cfg.hue, (3,)), factors(cfg.gamma)
        x = x * brightness.view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast.view(n, 1, 1, 1) + mean
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = (x - gray) * saturation.view(n, 1, 1, 1) + gray
        x = (x * gain.view(n, 3, 1, 1)).clamp(0.0, 1.0)
        x = x.pow(gamma.view(n, 1, 1, 1))
        if cfg.glare_prob > 0:
            x = self._glare(x, rng)
        # The PIL path rounds to uint8 here; keeping the same quantisation keeps both paths alike.
        return torch.floor(x * 255.0 + 0.5) / 255.0

    def _glare(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Specular highlights as in :func:`foramen_train.data.add_glare`, all samples at once."""
        cfg = self.cfg
        n, _, h, w = x.shape
        short = min(h, w)
        count = np.where(rng.random(n) < cfg.glare_prob, rng.integers(1, cfg.glare_max + 1, size=n), 0)
        if not count.any():
            return x
        g = int(count.max())
        cx, cy = rng.uniform(0, w, size=(n, g)), rng.uniform(0, h, size=(n, g))
        major = rng.uniform(0.015, max(0.015, cfg.glare_size), size=(n, g)) * short
        minor = major / rng.uniform(1.0, 4.0, size=(n, g))
        theta = rng.uniform(0.0, math.pi, size=(n, g))
        strength = rng.uniform(0.85, 1.0, size=(n, g)) * (np.arange(g)[None, :] < count[:, None])
        colour = np.stack([np.full((n, g), 255.0), 255.0 - rng.uniform(0, 10, (n, g)),
                           255.0 - rng.uniform(8, 30, (n, g))], axis=-1) / 255.0

        def dev(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=x.device)

        ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1) + 0.5
        xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w) + 0.5
        for j in range(g):
            dx, dy = xs - dev(cx[:, j]).view(n, 1, 1), ys - dev(cy[:, j]).view(n, 1, 1)
            cos, sin = dev(np.cos(theta[:, j])).view(n, 1, 1), dev(np.sin(theta[:, j])).view(n, 1, 1)
            u = (dx * cos + dy * sin) / dev(major[:, j]).view(n, 1, 1)
            v = (-dx * sin + dy * cos) / dev(minor[:, j]).view(n, 1, 1)
            alpha = dev(strength[:, j]).view(n, 1, 1) * (1.25 * torch.exp(-2.0 * (u * u + v * v))).clamp(0.0, 1.0)
            x = x + (dev(colour[:, j]).view(n, 3, 1, 1) - x) * alpha.unsqueeze(1)
        return x.clamp(0.0, 1.0)


def _gaussian_blur(x: torch.Tensor, sigma: np.ndarray) -> torch.Tensor:
    """Separable Gaussian blur with one ``sigma`` per sample (0 leaves a sample as is)."""
    n, c, h, w = x.shape
    radius = max(1, int(math.ceil(3.0 * float(sigma.max()))))
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
