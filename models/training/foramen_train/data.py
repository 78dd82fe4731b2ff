"""Segmentation data in the PaddleSeg file-list format, with training augmentation.

A dataset is a folder ``DIR`` holding list files whose lines read ``image_path mask_path``
(see :mod:`foramen_train.frames`) and an optional ``DIR/dataset.toml`` naming the data set
and its classes (see :mod:`foramen_train.dataset_spec`). This module holds the
``[data]`` fields every config shares (:class:`DataSource`) and the training and
validation dataset (:class:`SegmentationDataset`); the augmentation is in
:mod:`foramen_train.augment`.

Decoded frames are cached in memory when the whole list fits under a size limit, so each
file is decoded once per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import AugmentConfig, Circle, augment_pair, detect_circle
from .dataset_spec import DataError, DatasetSpec
from .frames import MEAN, STD, Normalization, load_image, load_mask, normalize, resize_pair
from .paste import ObjectPaster


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
class SegmentationDataset(Dataset):
    """Frames from a list file, resized to the model input and normalised.

    Items are ``(image float32 (3, H, W), mask int64 (H, W))``. With ``augment`` set, each
    item is augmented with a generator seeded by ``(seed, epoch, index)``, so a run is
    reproducible whatever the number of loader workers; call :meth:`set_epoch` before
    each epoch. With ``augment.circle`` each frame's circular field of view is detected
    once (:func:`detect_circle`) and remembered. With ``augment.paste_classes`` objects of
    another frame of the list are pasted in first (:class:`foramen_train.paste.ObjectPaster`,
    its own generator seeded by ``(seed, epoch, index, 1)``). Decoded frames are cached in
    memory when the list's decoded size is under ``cache_max_mb``.

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
    _paster: ObjectPaster | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.augment is not None:
            self.augment.validate()
            if self.augment.circle and self.augment.circle_class >= self.spec.num_classes:
                raise DataError(
                    f"data.augment.circle_class: {self.augment.circle_class} is not a class index "
                    f"(0..{self.spec.num_classes - 1})"
                )
            for name in ("object_classes", "paste_classes", "paste_anchor_classes"):
                unknown = [c for c in getattr(self.augment, name) if c >= self.spec.num_classes]
                if unknown:
                    raise DataError(
                        f"data.augment.{name}: {unknown} are not class indices (0..{self.spec.num_classes - 1})"
                    )
        first_image, first_mask = self._decode(0)
        estimate_mb = len(self.pairs) * (first_image.nbytes + first_mask.nbytes) / 2**20
        if estimate_mb <= self.cache_max_mb:
            self._cache = [(first_image, first_mask)] + [self._decode(i) for i in range(1, len(self.pairs))]
        if self.augment is not None and self.augment.paste_classes:
            names = [str(image) for image, _ in self.pairs]
            self._paster = ObjectPaster(len(self.pairs), self.raw, self.augment, names)

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
        # train_data.EpochTaggedSampler): persistent loader workers hold their own copy of this
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
            if self._paster is not None:
                paste_rng = np.random.default_rng([self.seed, epoch, index, 1])
                image, mask = self._paster(image, mask, paste_rng, skip=index if real else -1)
            image, mask = augment_pair(image, mask, self.width, self.height, self.augment, rng, circle=circle)
        else:
            image, mask = resize_pair(image, mask, self.width, self.height)
        return torch.from_numpy(normalize(image, self.normalization)), torch.from_numpy(mask.astype(np.int64))
