"""A training run's data: datasets, batch shares, samplers and loaders.

The augmented training and plain validation datasets (plus the ``[data.gan]`` source of
synthetic pairs), each process's share of the global batch, the epoch-tagged sampler and
the loaders: loader workers (``data.augment_on = "loader"``) or frames held and augmented
on the training device (``"device"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from . import distributed as D
from . import encoders
from .config import Config, ConfigError
from .data import SegmentationDataset
from .dataset_spec import DataError, DatasetSpec, load_dataset_spec
from .device_augment import DeviceAugmenter
from .frames import evenly_spaced, read_list
from .gan import GanError, GanSource, Generator


def build_datasets(cfg: Config) -> tuple[DatasetSpec, SegmentationDataset, SegmentationDataset]:
    """Dataset spec plus the augmented training and plain validation datasets."""
    root = cfg.data_root()
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found (data.root in {cfg.source})")
    spec = load_dataset_spec(root, cfg.data.classes, cfg.data.ignore_index)
    spec = spec.with_ignored(cfg.data.ignore_classes, f"{cfg.source}: data.ignore_classes")
    train_pairs = evenly_spaced(read_list(root, cfg.data.train_list), cfg.data.train_limit)
    val_pairs = evenly_spaced(read_list(root, cfg.data.val_list), cfg.data.val_limit)
    if len(train_pairs) < cfg.train.batch_size:
        raise DataError(
            f"{root / cfg.data.train_list}: {len(train_pairs)} frames, "
            f"fewer than train.batch_size={cfg.train.batch_size}"
        )
    size = dict(
        width=cfg.model.width,
        height=cfg.model.height,
        cache_max_mb=cfg.data.cache_max_mb,
        normalization=encoders.normalization(cfg.model.encoder),
    )
    train_ds = SegmentationDataset(train_pairs, spec, augment=cfg.data.augment, seed=cfg.train.seed, **size)
    val_ds = SegmentationDataset(val_pairs, spec, augment=None, **size)
    if cfg.data.gan.enabled:
        train_ds.synthetic = gan_source(cfg, spec, train_ds)
        train_ds.synthetic_count = cfg.data.gan.count(len(train_pairs))
    return spec, train_ds, val_ds


def gan_source(cfg: Config, spec: DatasetSpec, train_ds: SegmentationDataset) -> GanSource:
    """The ``[data.gan]`` generator over the training masks, checked against the data set."""
    generator = Generator(Path(cfg.data.gan.generator))
    if generator.dataset.class_names != spec.class_names:
        raise GanError(
            f"{generator.path}: trained on classes {generator.dataset.class_names}, the data set has {spec.class_names}"
        )
    masks = [train_ds.raw(i)[1] for i in range(len(train_ds.pairs))]
    # Label maps at the larger model side: the generator's output is resized to it anyway.
    side = max(cfg.model.width, cfg.model.height)
    return GanSource(generator, masks, side, cfg.data.gan.labels, spec.ignore_index)


def local_batch_size(cfg: Config, world_size: int) -> int:
    """Per-process share of the global ``train.batch_size`` (which must divide evenly)."""
    if cfg.train.batch_size % world_size:
        raise ConfigError(
            f"{cfg.source}: train.batch_size: the global batch {cfg.train.batch_size} does not split evenly "
            f"over {world_size} processes"
        )
    return cfg.train.batch_size // world_size


def val_batches(num_frames: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Rank ``rank``'s validation batches: every ``world_size``-th batch of the
    single-process sequence, so that the union over the ranks is exactly that sequence."""
    batches = [list(range(i, min(i + batch_size, num_frames))) for i in range(0, num_frames, batch_size)]
    return batches[rank::world_size]


def device_val_batches(
    dataset: SegmentationDataset, batches: list[list[int]], device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation batches, resized and normalised once and held on ``device``."""
    out = []
    for batch in batches:
        items = [dataset[i] for i in batch]
        out.append((torch.stack([x for x, _ in items]).to(device), torch.stack([y for _, y in items]).to(device)))
    return out


class EpochTaggedSampler(Sampler[int]):
    """A :class:`DistributedSampler` whose indices carry the epoch (``epoch * n + i``).

    Persistent loader workers keep their own copy of the dataset, so the augmentation
    stream of each epoch has to travel with the index (see ``SegmentationDataset``).
    """

    def __init__(self, inner: DistributedSampler, num_frames: int):
        self.inner, self.num_frames, self.epoch = inner, num_frames, 1

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle and augmentation of ``epoch`` (>= 1)."""
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __iter__(self):
        return (self.epoch * self.num_frames + i for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


@dataclass
class Loaders:
    """This process's training batches (per epoch) and validation batches (:func:`build_loaders`)."""

    tagged: EpochTaggedSampler
    steps: int
    local_batch: int
    val_loader: Any
    train_loader: DataLoader | None = None
    augmenter: DeviceAugmenter | None = None

    def train_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The ``steps`` training batches of ``epoch`` (after ``tagged.set_epoch(epoch)``)."""
        if self.augmenter is None:
            yield from self.train_loader
            return
        order = [i % self.tagged.num_frames for i in self.tagged]
        for step in range(self.steps):
            yield self.augmenter.batch(order[step * self.local_batch : (step + 1) * self.local_batch], epoch)


def build_loaders(
    cfg: Config,
    info: D.DistInfo,
    train_ds: SegmentationDataset,
    val_ds: SegmentationDataset,
    local_batch: int,
    log: Callable[..., None] = print,
) -> Loaders:
    """Loader workers (``data.augment_on = "loader"``) or frames held and augmented on the
    device (``"device"``), over this process's share of each global batch."""
    device = info.device
    # The same shuffled order for any number of processes: step k's global batch is
    # positions [k*B, (k+1)*B) of the epoch's permutation, rank r taking every W-th of them.
    sampler = DistributedSampler(
        train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
    )
    tagged = EpochTaggedSampler(sampler, len(train_ds))
    pin = device.type == "cuda"
    # Persistent workers: forking them again each epoch costs more than a short epoch's work.
    persistent = cfg.data.num_workers > 0
    my_val_batches = val_batches(len(val_ds), cfg.train.val_batch_size, info.rank, info.world_size)
    if cfg.data.augment_on == "device":
        augmenter = DeviceAugmenter.from_dataset(train_ds, device, cfg.data.augment, cfg.train.seed)
        val_loader: Any = device_val_batches(val_ds, my_val_batches, device)
        steps = len(sampler) // local_batch
        log(f"augmentation on {device}: {len(augmenter)} training frames held there")
        return Loaders(tagged, steps, local_batch, val_loader, augmenter=augmenter)
    train_loader = DataLoader(
        train_ds,
        batch_size=local_batch,
        sampler=tagged,
        drop_last=True,
        num_workers=cfg.data.num_workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    val_loader = DataLoader(
        val_ds,
        batch_sampler=my_val_batches,
        num_workers=cfg.data.num_workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    return Loaders(tagged, len(train_loader), local_batch, val_loader, train_loader=train_loader)
