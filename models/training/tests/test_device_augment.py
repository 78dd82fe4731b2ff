"""Augmentation on the training device: geometry shared by image and mask, the PIL path's
ranges and order, reproducibility, and a whole training run with it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from foramen_train import train
from foramen_train.augment import AugmentConfig
from foramen_train.config import ConfigError, config_from_dict
from foramen_train.device_augment import DeviceAugmenter
from foramen_train.frames import MEAN, STD
from foramen_train.optim import epochs_for_time, first_timed_epoch

from conftest import GEOMETRY_OFF, PALETTE, PHOTOMETRIC_OFF, TINY_MODEL


def blocks(n: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose colour is the palette colour of their mask: large blocks of classes 1-3."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, height, width), dtype=np.uint8)
    for i in range(n):
        for _ in range(6):
            y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
            masks[i, y : y + rng.integers(8, height // 2), x : x + rng.integers(8, width // 2)] = rng.integers(1, 4)
    images = PALETTE[masks].transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(masks)


def unnormalize(x: torch.Tensor) -> np.ndarray:
    rgb = x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    return (rgb * 255.0).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def augmenter(images, masks, width, height, **aug) -> DeviceAugmenter:
    return DeviceAugmenter(images, masks, width, height, AugmentConfig(**{**PHOTOMETRIC_OFF, **aug}), seed=3)


def test_identity_settings_return_the_frames():
    images, masks = blocks(4, 48, 64)
    aug = augmenter(images, masks, 64, 48, **GEOMETRY_OFF)
    x, y = aug.batch([2, 0], epoch=1)
    assert x.shape == (2, 3, 48, 64) and y.shape == (2, 48, 64) and y.dtype == torch.int64
    assert np.array_equal(unnormalize(x), images[[2, 0]].permute(0, 2, 3, 1).numpy())
    assert torch.equal(y, masks[[2, 0]].long())


def test_flips_mirror_image_and_mask_exactly():
    images, masks = blocks(3, 40, 56)
    aug = augmenter(images, masks, 56, 40, hflip=1.0, vflip=1.0, rotate_prob=0.0, scale_min=1.0, scale_max=1.0)
    x, y = aug.batch([0, 1, 2], epoch=1)
    assert torch.equal(y, masks.long().flip(1).flip(2))
    assert np.array_equal(unnormalize(x), images.permute(0, 2, 3, 1).numpy()[:, ::-1, ::-1])


@pytest.mark.parametrize("out_size", [(64, 48), (40, 40)])
def test_image_and_mask_share_the_warp(out_size):
    # Rotation, zoom in and out and resizing to another (non-square) shape: away from the
    # borders between regions, every pixel still shows its mask class's colour.
    images, masks = blocks(8, 48, 64, seed=1)
    aug = augmenter(
        images, masks, *out_size, hflip=0.5, vflip=0.5, rotate_prob=1.0, rotate_deg=40.0, scale_min=0.6, scale_max=1.8
    )
    x, y = aug.batch(list(range(8)), epoch=2)
    rgb, classes = unnormalize(x).astype(int), y.numpy()
    padded = np.pad(classes, ((0, 0), (1, 1), (1, 1)), mode="edge")
    interior = np.ones_like(classes, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            interior &= padded[:, dy : dy + classes.shape[1], dx : dx + classes.shape[2]] == classes
    assert interior.mean() > 0.6
    err = np.abs(rgb - PALETTE[classes].astype(int)).max(axis=-1)
    assert (err[interior] <= 2).mean() > 0.995
    # Zooming out and rotating bring in black, class 0, never "ignore".
    assert set(np.unique(classes)) <= {0, 1, 2, 3}


def test_same_epoch_and_step_repeat_and_others_differ():
    images, masks = blocks(4, 32, 32)
    aug = DeviceAugmenter(images, masks, 32, 32, AugmentConfig(glare_prob=0.5), seed=7)
    a, b, c = aug.batch([0, 1, 2, 3], 1), aug.batch([0, 1, 2, 3], 1), aug.batch([0, 1, 2, 3], 2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_a_frame_is_augmented_the_same_in_any_batch():
    # Seeded per frame, as the loader path: what torchrun's ranks rely on to see the
    # single-process run's frames.
    images, masks = blocks(4, 48, 48)
    aug = DeviceAugmenter(images, masks, 48, 48, AugmentConfig(glare_prob=0.5, blur_prob=0.5), seed=2)
    x4, y4 = aug.batch([0, 1, 2, 3], 5)
    x2, y2 = aug.batch([3, 1], 5)
    assert torch.allclose(x4[1], x2[1], atol=1e-6) and torch.equal(y4[1], y2[1])
    assert torch.allclose(x4[3], x2[0], atol=1e-6) and torch.equal(y4[3], y2[0])


def test_photometric_changes_the_image_only():
    images, masks = blocks(6, 96, 96)
    geometry = dict(hflip=0.0, vflip=0.0, rotate_prob=0.0, scale_min=1.0, scale_max=1.0)
    plain = augmenter(images, masks, 96, 96, **geometry).batch(list(range(6)), 1)
    cfg = AugmentConfig(**geometry, glare_prob=1.0, glare_max=2, glare_size=0.2, blur_prob=1.0)
    jittered = DeviceAugmenter(images, masks, 96, 96, cfg, seed=3).batch(list(range(6)), 1)
    assert torch.equal(plain[1], jittered[1])
    diff = np.abs(unnormalize(plain[0]).astype(int) - unnormalize(jittered[0]).astype(int))
    assert (diff.reshape(6, -1).max(axis=1) > 20).all()
    # Glare is warm near-white: some pixels of every frame come close to it.
    assert (unnormalize(jittered[0]).reshape(6, -1, 3).min(axis=2).max(axis=1) > 200).all()


def test_circle_mode_is_refused_on_the_device():
    images, masks = blocks(2, 32, 32)
    with pytest.raises(ValueError, match="circle"):
        DeviceAugmenter(images, masks, 32, 32, AugmentConfig(circle=True))
    doc = {
        "data": {"root": "x", "augment_on": "device", "augment": {"circle": True}},
        "model": {"width": 64, "height": 64},
    }
    with pytest.raises(ConfigError, match="data.augment_on"):
        config_from_dict(doc, "t.toml")
    with pytest.raises(ConfigError, match="data.augment_on"):
        config_from_dict({**doc, "data": {"root": "x", "augment_on": "gpu"}}, "t.toml")


def test_epochs_for_time():
    # 2 epochs took 30 s, 10 s each from now on, 120 s budget: 9 more fit, 8 with the 3 % margin.
    assert epochs_for_time(100, 2, 30.0, 10.0, 120.0) == 2 + 8
    assert epochs_for_time(5, 2, 30.0, 10.0, 120.0) == 5
    assert epochs_for_time(100, 2, 130.0, 10.0, 120.0) == 2


def test_the_schedule_is_fitted_to_epochs_past_start_up_and_the_encoders_release():
    # Epoch 1 pays for start-up; with a frozen first epoch, epoch 2 runs the encoder's
    # backward pass for the first time and pays again.
    assert first_timed_epoch(0) == 2
    assert first_timed_epoch(1) == 3
    assert first_timed_epoch(3) == 5


CONFIG = (
    """
[data]
root = "{root}"
augment_on = "device"
[data.augment]
glare_prob = 0.3
"""
    + TINY_MODEL
    + """[train]
epochs = 100000
batch_size = 4
lr = 5e-3
ema_decay = 0.9
max_minutes = 0.25
fit_epochs_to_time = true
[export]
parity_frames = 2
"""
)


def test_training_with_device_augmentation_ema_and_a_time_budget(tiny_dataset: Path, tmp_path: Path):
    config = tmp_path / "dev.toml"
    config.write_text(CONFIG.format(root=tiny_dataset))
    out = tmp_path / "out"
    assert train.main(["--config", str(config), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    # The schedule was shortened to the 15 s budget (the configured epochs cannot fit).
    # Whether the last refit was exact depends on this machine's jitter: either the run
    # ended on its fitted epoch count, or max_minutes stopped it at most a few epochs early.
    assert summary["epochs_configured"] == 100000
    assert 2 <= summary["epochs"] < 100000
    stopped = summary["stopped_early_at_epoch"]
    assert len(rows) == (summary["epochs"] if stopped is None else stopped)
    assert stopped is None or stopped >= summary["epochs"] // 2
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["training"]["epoch"] == summary["best_epoch"]
    assert set(best["state_dict"]) == set(torch.load(out / "last.pt", weights_only=False)["state_dict"])
    assert (out / "model.onnx").is_file()
