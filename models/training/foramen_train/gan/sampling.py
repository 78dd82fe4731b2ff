"""A trained generator (``generator.pt``) drawing images from label maps, and the
segmentation recipe's source of synthetic pairs (``[data.gan]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..dataset_spec import DatasetSpec
from .errors import GanError
from .labels import LabelSynthConfig, synthesize_label_map
from .networks import GeneratorConfig, UNetGenerator, one_hot, to_uint8

GENERATOR_FORMAT = 1
"""Version of the ``generator.pt`` layout."""


class Generator:
    """A trained generator loaded from ``generator.pt``, drawing images from label maps."""

    def __init__(self, path: Path, device: torch.device | str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise GanError(f"{path}: generator checkpoint not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
            raise GanError(f"{path}: not a generator checkpoint: {err}") from err
        if not isinstance(state, dict) or state.get("format") != GENERATOR_FORMAT:
            raise GanError(f"{path}: not a generator checkpoint of format {GENERATOR_FORMAT}")
        self.path = path
        self.cfg = GeneratorConfig(**state["generator_config"])
        self.labels = LabelSynthConfig(**state["labels"])
        self.dataset = DatasetSpec.from_dict(state["dataset"])
        self.training = state.get("training", {})
        self.device = torch.device(device)
        self.net = UNetGenerator(self.cfg)
        self.net.load_state_dict(state["state_dict"])
        self.net.to(self.device).eval()

    @torch.no_grad()
    def generate(self, label_maps: np.ndarray, batch: int = 16) -> np.ndarray:
        """``uint8 (N, H, W)`` label maps -> ``uint8 (N, H, W, 3)`` images.

        Label maps of another size are resized (nearest) to the generator's input and the
        images resized back (bilinear), so the result matches the label maps pixel for pixel.
        """
        label_maps = np.asarray(label_maps)
        if label_maps.ndim != 3:
            raise GanError(f"generate: expected label maps (N, H, W), got shape {label_maps.shape}")
        n, h, w = label_maps.shape
        s = self.cfg.size
        out = np.empty((n, h, w, 3), dtype=np.uint8)
        for start in range(0, n, batch):
            chunk = torch.from_numpy(label_maps[start : start + batch].astype(np.int64))
            if (h, w) != (s, s):
                chunk = F.interpolate(chunk[:, None].float(), size=(s, s), mode="nearest")[:, 0].long()
            x = self.net(one_hot(chunk.to(self.device), self.cfg.num_classes))
            if (h, w) != (s, s):
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            out[start : start + len(chunk)] = to_uint8(x)
        return out


class GanSource:
    """Synthetic (image, mask) pairs for segmentation training: the ``[data.gan]`` option.

    Pair ``k`` of an epoch is a label map from :func:`synthesize_label_map` on the training
    masks, seeded by ``(seed, epoch, k)``, and the generator's image of it, at ``size``.
    """

    def __init__(
        self,
        generator: Generator,
        masks: list[np.ndarray],
        size: int,
        labels: LabelSynthConfig | None = None,
        ignore_index: int = 255,
    ):
        self.generator = generator
        self.labels = labels or generator.labels
        self.labels.validate(generator.cfg.num_classes)
        self.size = size
        self.ignore_index = ignore_index
        self.masks = [np.asarray(Image.fromarray(m).resize((size, size), Image.Resampling.NEAREST)) for m in masks]

    def pair(self, seed: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(uint8 RGB (size, size, 3), uint8 mask (size, size))`` for one synthetic frame."""
        rng = np.random.default_rng([seed, epoch, index, 0x6A4])  # a stream apart from the real frames'
        mask = synthesize_label_map(self.masks, self.size, self.labels, rng, self.ignore_index)
        image = self.generator.generate(mask[None])[0]
        return image, mask
