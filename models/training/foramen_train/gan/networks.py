"""The pix2pix networks (Isola et al., CVPR 2017): the U-Net generator from a one-hot label
map to RGB and the 70x70 PatchGAN discriminator, plus the tensor conversions they use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import GanError


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
            raise GanError(
                f"gan.size/gan.depth: size {self.size} must be a multiple of 2**depth (depth {self.depth} >= 2)"
            )
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
            layers = [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(below, chans[i], 3, padding=1, bias=False),
                nn.InstanceNorm2d(chans[i], affine=True),
                nn.ReLU(inplace=True),
            ]
            if i >= len(chans) - 4 and cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(chans[0] * 2, 3, 3, padding=1), nn.Tanh()
        )

    def forward(self, labels_onehot: torch.Tensor) -> torch.Tensor:
        """An RGB image in -1..1 for a one-hot label map."""
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
            mods += [
                nn.Conv2d(cin, cout, 4, stride, 1, bias=False),
                nn.InstanceNorm2d(cout, affine=True),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            cin = cout
        mods.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, labels_onehot: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Patch logits: how real each patch of `image` looks for its labels."""
        return self.net(torch.cat([labels_onehot, image], dim=1))


def to_unit(rgb: np.ndarray) -> torch.Tensor:
    """``uint8 (N, H, W, 3)`` -> ``float32 (N, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``uint8 (N, H, W, 3)``."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
