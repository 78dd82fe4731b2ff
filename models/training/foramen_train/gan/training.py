"""GAN training: generator and PatchGAN discriminator on (label map, frame) pairs of the
training list, least-squares GAN loss plus L1, learning rate constant then decaying
linearly (pix2pix), the schedule refitted to ``gan.max_minutes``."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..augment import AugmentConfig, augment_pair
from ..dataset_spec import DatasetSpec, load_dataset_spec
from ..frames import evenly_spaced, load_image, load_mask, read_list
from ..sections import to_toml
from .config import GanConfig, GanTrainConfig
from .errors import GanError
from .grid import save_grid
from .networks import GeneratorConfig, PatchDiscriminator, UNetGenerator, one_hot, to_unit
from .sampling import GENERATOR_FORMAT, Generator

Pairs = list[tuple[np.ndarray, np.ndarray]]
"""``(uint8 RGB image, uint8 mask)`` pairs of a list, at their own resolution."""


def load_pairs(root: Path, list_name: str, limit: int, spec: DatasetSpec) -> Pairs:
    """The frames and masks of ``list_name`` (at most ``limit``, evenly spaced; 0 = all)."""
    pairs = evenly_spaced(read_list(root, list_name), limit)
    return [(load_image(i), load_mask(m, spec)) for i, m in pairs]


def _gan_batch(
    pairs: Pairs, indices: list[int], size: int, augment: AugmentConfig | None, seed: int, epoch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    images, masks = [], []
    for i in indices:
        image, mask = pairs[i]
        if augment is None:
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
            mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))
        else:
            image, mask = augment_pair(image, mask, size, size, augment, np.random.default_rng([seed, epoch, i]))
        images.append(image)
        masks.append(mask)
    return to_unit(np.stack(images)), torch.from_numpy(np.stack(masks).astype(np.int64))


def _load_data(cfg: GanConfig) -> tuple[DatasetSpec, Pairs, Pairs]:
    """The data set's classes and the training and validation pairs, checked against the config."""
    root = Path(cfg.data.root)
    if not root.is_dir():
        raise GanError(f"{root}: dataset folder not found (data.root in {cfg.source})")
    spec = load_dataset_spec(root, cfg.data.classes, cfg.data.ignore_index)
    cfg.labels.validate(spec.num_classes)
    train_pairs = load_pairs(root, cfg.data.train_list, cfg.data.train_limit, spec)
    val_pairs = load_pairs(root, cfg.data.val_list, cfg.data.val_limit, spec)
    if len(train_pairs) < cfg.gan.batch_size:
        raise GanError(
            f"{root / cfg.data.train_list}: {len(train_pairs)} frames, fewer than gan.batch_size={cfg.gan.batch_size}"
        )
    return spec, train_pairs, val_pairs


def _learning_rate(g: GanTrainConfig, epoch: int, epochs: int) -> float:
    """Constant up to ``decay_from`` of the epochs, then a linear decay towards 0."""
    decay_start = g.decay_from * epochs
    return g.lr * (1.0 if epoch <= decay_start else max(0.0, 1 - (epoch - decay_start) / (epochs - decay_start + 1)))


def _train_epoch(
    cfg: GanConfig,
    gen: UNetGenerator,
    disc: PatchDiscriminator,
    opts: tuple[torch.optim.Optimizer, ...],
    train_pairs: Pairs,
    num_classes: int,
    epoch: int,
    steps: int,
) -> np.ndarray:
    """One pass over the training pairs; the mean discriminator, GAN and L1 losses."""
    g = cfg.gan
    opt_g, opt_d = opts
    order = np.random.default_rng([g.seed, epoch]).permutation(len(train_pairs))
    gen.train()
    disc.train()
    sums = np.zeros(3)
    for step in range(steps):
        real, labels = _gan_batch(
            train_pairs,
            order[step * g.batch_size : (step + 1) * g.batch_size].tolist(),
            g.size,
            cfg.data.augment,
            g.seed,
            epoch,
        )
        cond = one_hot(labels, num_classes)
        fake = gen(cond)
        # Discriminator: real patches -> 1, generated -> 0 (least squares).
        d_real, d_fake = disc(cond, real), disc(cond, fake.detach())
        d_loss = 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # Generator: fool the discriminator and stay close to the real image.
        d_fake = disc(cond, fake)
        g_gan = F.mse_loss(d_fake, torch.ones_like(d_fake))
        g_l1 = F.l1_loss(fake, real)
        opt_g.zero_grad(set_to_none=True)
        (g_gan + g.l1_weight * g_l1).backward()
        opt_g.step()
        sums += [d_loss.item(), g_gan.item(), g_l1.item()]
    return sums / steps


def _val_l1(gen: UNetGenerator, val_x: torch.Tensor, val_y: torch.Tensor, num_classes: int) -> float:
    """Mean L1 between the generated and the real validation images (in [-1, 1] units)."""
    gen.eval()
    with torch.no_grad():
        return float(
            np.mean(
                [
                    F.l1_loss(gen(one_hot(val_y[i : i + 16], num_classes)), val_x[i : i + 16]).item()
                    for i in range(0, len(val_y), 16)
                ]
            )
        )


def _epochs_for_time(g: GanTrainConfig, epoch: int, epoch_s: list[float], elapsed_s: float) -> int:
    """Fit the whole schedule (constant, then linear decay) into ``gan.max_minutes``."""
    per_epoch = float(np.median(epoch_s[1:][-3:]))
    left = 60.0 * g.max_minutes - elapsed_s
    return max(epoch, min(g.epochs, epoch + int(left // per_epoch)))


def _save_generator(
    path: Path,
    cfg: GanConfig,
    gen_cfg: GeneratorConfig,
    gen: UNetGenerator,
    spec: DatasetSpec,
    epoch: int,
    val_l1: float,
) -> None:
    state = {
        "format": GENERATOR_FORMAT,
        "generator_config": dataclasses.asdict(gen_cfg),
        "labels": dataclasses.asdict(cfg.labels),
        "dataset": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
        "training": {"epochs": epoch, "val_l1": val_l1, "config": cfg.to_dict()},
    }
    torch.save(state, path)


def train_gan(cfg: GanConfig, out: Path, log=print) -> dict[str, Any]:
    """Train generator and discriminator; write ``generator.pt``, ``log.csv``, ``grid.png``
    and ``summary.json`` to ``out``; return the summary."""
    g = cfg.gan
    torch.set_num_threads(g.threads)
    torch.manual_seed(g.seed)
    spec, train_pairs, val_pairs = _load_data(cfg)
    gen_cfg = g.generator_config(spec.num_classes)
    gen, disc = UNetGenerator(gen_cfg), PatchDiscriminator(spec.num_classes, g.disc_channels, g.disc_layers)
    opt_g = torch.optim.Adam(gen.parameters(), lr=g.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=g.lr, betas=(0.5, 0.999))
    steps = len(train_pairs) // g.batch_size
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.toml").write_text(
        to_toml(cfg.to_dict(), header=f"Effective GAN configuration.\nSource: {cfg.source}"), encoding="utf-8"
    )
    log(
        f"GAN on {Path(cfg.data.root)}: {len(train_pairs)} train / {len(val_pairs)} val pairs, "
        f"{spec.num_classes} classes, {g.size}x{g.size}; "
        f"generator {sum(p.numel() for p in gen.parameters()):,} params, "
        f"discriminator {sum(p.numel() for p in disc.parameters()):,}"
    )
    val_x, val_y = _gan_batch(val_pairs, list(range(len(val_pairs))), g.size, None, 0, 0)
    epochs, started, epoch_s = g.epochs, time.perf_counter(), []
    with (out / "log.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["epoch", "d_loss", "g_gan", "g_l1", "val_l1", "lr", "seconds"])
    epoch = 0
    while epoch < epochs:
        epoch += 1
        t0 = time.perf_counter()
        lr = _learning_rate(g, epoch, epochs)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        d_mean, gan_mean, l1_mean = _train_epoch(
            cfg, gen, disc, (opt_g, opt_d), train_pairs, spec.num_classes, epoch, steps
        )
        val_l1 = _val_l1(gen, val_x, val_y, spec.num_classes)
        seconds = time.perf_counter() - t0
        epoch_s.append(seconds)
        row = [epoch, f"{d_mean:.4f}", f"{gan_mean:.4f}", f"{l1_mean:.4f}", f"{val_l1:.4f}", f"{lr:.2e}"]
        with (out / "log.csv").open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([*row, f"{seconds:.1f}"])
        log(
            f"epoch {epoch}/{epochs}: d {d_mean:.3f} g_gan {gan_mean:.3f} g_l1 {l1_mean:.4f} val_l1 {val_l1:.4f} "
            f"lr {lr:.1e} [{seconds:.1f}s]",
            flush=True,
        )
        if g.max_minutes > 0 and epoch >= 2:
            epochs = _epochs_for_time(g, epoch, epoch_s, time.perf_counter() - started)
    _save_generator(out / "generator.pt", cfg, gen_cfg, gen, spec, epoch, val_l1)
    summary = {
        "epochs": epoch,
        "epochs_configured": g.epochs,
        "steps": epoch * steps,
        "seconds": round(time.perf_counter() - started, 1),
        "val_l1": val_l1,
        "train_pairs": len(train_pairs),
        "val_pairs": len(val_pairs),
        "size": g.size,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    generator = Generator(out / "generator.pt")
    val_masks, val_images, train_masks = (
        [m for _, m in val_pairs],
        [i for i, _ in val_pairs],
        [m for _, m in train_pairs],
    )
    save_grid(generator, val_masks, val_images, train_masks, out / "grid.png", rows=6, synthetic_rows=3, seed=g.seed)
    log(
        f"wrote {out / 'generator.pt'} after {epoch} epochs ({summary['seconds']:.0f} s), "
        f"val L1 {summary['val_l1']:.4f}"
    )
    return summary
