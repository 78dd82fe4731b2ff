"""The epoch loop of a training run (:class:`TrainingRun`).

An epoch's training steps, validation (:func:`validate`), the metrics row and the
checkpoints (``best.pt``, ``last.pt``), the schedule refitted to ``train.max_minutes`` and,
at the end, the ONNX export and ``summary.json``. Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from . import distributed as D
from .config import Config
from .data import SegmentationDataset
from .dataset_spec import DatasetSpec
from .export import ExportError, export_checkpoint
from .losses import SegmentationLoss
from .metrics import ConfusionMatrix
from .model import PPLiteSeg
from .network import Network, set_encoder_training
from .optim import epochs_for_time, first_timed_epoch, lr_factor
from .train_data import Loaders


def validate(
    model: PPLiteSeg,
    loader: Any,
    loss_fn: SegmentationLoss,
    spec: DatasetSpec,
    progress: bool,
    device: torch.device | None = None,
) -> tuple[float, ConfusionMatrix]:
    """Mean validation loss and the confusion matrix at the model input size.

    ``loader`` yields ``(images, masks)`` batches (a DataLoader, or tensors already on
    the device). Truth pixels of ``spec.ignore_classes`` are left out of the matrix.

    Under a process group each rank passes its own batches (see
    :func:`foramen_train.train_data.val_batches`); the loss sums and the confusion matrix
    are all-reduced, so every rank returns the results of the whole validation list.
    """
    device = device or torch.device("cpu")
    model.eval()
    matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
    ignored = torch.tensor(spec.ignored_indices, dtype=torch.int64, device=device)
    total, frames = 0.0, 0
    with torch.no_grad():
        for images, masks in tqdm(loader, desc="  val", leave=False, disable=not progress, dynamic_ncols=True):
            images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            logits = model(images)
            total += loss_fn(logits, masks).item() * images.shape[0]
            frames += images.shape[0]
            if ignored.numel():
                masks = masks.masked_fill(torch.isin(masks, ignored), spec.ignore_index)
            matrix.update(logits.argmax(1), masks)
    if D.active():
        sums = D.all_reduce_detached(torch.tensor([total, frames], dtype=torch.float64, device=device))
        total, frames = float(sums[0]), int(sums[1])
        matrix.matrix = D.all_reduce_detached(torch.from_numpy(matrix.matrix).to(device)).cpu().numpy()
    return total / max(1, frames), matrix


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6f}"


@dataclass
class _Progress:
    """The state of the epoch loop: the schedule (refitted to ``train.max_minutes``), the
    best epoch so far and the timings."""

    epochs: int
    steps: int
    warmup: int
    started: float
    iteration: int = 0
    best: dict[str, Any] | None = None
    stopped_at: int | None = None
    val_loss: float = math.nan
    step_times: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def total_iters(self) -> int:
        return self.epochs * self.steps


@dataclass
class TrainingRun:
    """One training run's parts, and its steps: an epoch, its validation and logging, the
    checkpoints and, at the end, the export and the summary."""

    cfg: Config
    info: D.DistInfo
    log: Callable[..., None]
    progress: bool
    spec: DatasetSpec
    train_ds: SegmentationDataset
    val_ds: SegmentationDataset
    net: Network
    loaders: Loaders
    ema: AveragedModel | None
    run_dir: Path | None
    state: _Progress | None = None

    @property
    def eval_model(self) -> nn.Module:
        """The model validated and saved: the average under ``train.ema_decay``, else the replica."""
        return self.ema.module if self.ema is not None else self.net.model

    @property
    def csv_path(self) -> Path | None:
        """``metrics.csv`` of the run folder on rank 0; ``None`` on the other ranks."""
        return self.run_dir / "metrics.csv" if self.info.is_main else None

    def start(self) -> tuple[float, ConfusionMatrix] | None:
        """Write the metrics header and start the clock. A run that starts from a checkpoint
        records where it started: the checkpoint's validation loss and mIoU on this run's list."""
        cfg, steps = self.cfg, self.loaders.steps
        if self.csv_path is not None:
            with self.csv_path.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(
                    [
                        "epoch",
                        "train_loss",
                        "val_loss",
                        "val_miou",
                        *[f"iou_{n}" for n in self.spec.class_names],
                        "seconds",
                    ]
                )
        self.state = _Progress(cfg.train.epochs, steps, round(cfg.train.warmup_epochs * steps), time.perf_counter())
        if not cfg.train.init_from:
            return None
        initial = self.validate()
        self.log(f"start (train.init_from): val_loss {initial[0]:.4f} val_miou {initial[1].mean_iou():.4f}")
        return initial

    def validate(self) -> tuple[float, ConfusionMatrix]:
        """:func:`validate` of :attr:`eval_model` on this process's validation batches."""
        return validate(
            self.eval_model, self.loaders.val_loader, self.net.val_loss_fn, self.spec, self.progress, self.info.device
        )

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training batches; the mean training loss."""
        cfg, net, state, device = self.cfg, self.net, self.state, self.info.device
        self.train_ds.set_epoch(epoch)
        self.loaders.tagged.set_epoch(epoch)
        net.step_net.train()
        set_encoder_training(net.model, epoch, cfg)
        # Summed on the device and read once per epoch: a read-back every step would stall
        # a GPU's kernel queue (see losses._ohem).
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(
            self.loaders.train_batches(epoch),
            total=state.steps,
            desc=f"epoch {epoch}/{state.epochs}",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        for step, (images, masks) in enumerate(bar):
            images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            lr = cfg.train.lr * lr_factor(state.iteration, state.total_iters, state.warmup, cfg)
            for group in net.optimizer.param_groups:
                group["lr"] = lr * group["lr_mult"]
            logits, aux_logits = net.step_net(images)
            # With several processes every term is that of the global batch (see losses.py).
            loss = net.loss_fn(logits, masks)
            if aux_logits:
                loss = loss + cfg.train.loss.aux_weight * sum(net.loss_fn.cross_entropy(a, masks) for a in aux_logits)
            net.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            net.optimizer.step()
            if net.anchor is not None:
                net.anchor.apply(net.optimizer)
            if self.ema is not None:
                self.ema.update_parameters(net.model)
            loss_sum += loss.detach()
            state.iteration += 1
            if self.progress and step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
        return loss_sum.item() / state.steps

    def end_epoch(self, epoch: int, epoch_start: float, train_loss: float) -> bool:
        """Validate, keep the best epoch, refit the schedule, write the metrics row and the
        checkpoints, log; whether the run stops here (``train.max_minutes`` reached)."""
        cfg, state = self.cfg, self.state
        state.val_loss, matrix = self.validate()
        miou, iou = matrix.mean_iou(), matrix.iou()
        seconds = time.perf_counter() - epoch_start
        score = miou if not math.isnan(miou) else -math.inf
        improved = state.best is None or score > state.best["score"]
        val_iou = {n: float(v) for n, v in zip(self.spec.class_names, iou) if not math.isnan(v)}
        if improved:
            state.best = {
                "score": score,
                "epoch": epoch,
                "val_miou": 0.0 if math.isnan(miou) else miou,
                "val_iou": val_iou,
            }
        # Every rank takes the same decision (rank 0's clock), so none waits for another.
        out_of_time = bool(
            D.broadcast_object(
                cfg.train.max_minutes > 0 and time.perf_counter() - state.started > 60.0 * cfg.train.max_minutes
            )
        )
        state.epoch_seconds.append(seconds)
        self.fit_schedule(epoch)
        last = epoch == state.epochs or out_of_time
        if self.info.is_main:
            with self.csv_path.open("a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(
                    [
                        epoch,
                        _format(train_loss),
                        _format(state.val_loss),
                        _format(miou),
                        *[_format(v) for v in iou],
                        f"{seconds:.1f}",
                    ]
                )
            if improved or last:
                ckpt = self.checkpoint(epoch, miou, val_iou, state.val_loss)
                for name, wanted in (("best.pt", improved), ("last.pt", last)):
                    if wanted:
                        torch.save(ckpt, self.run_dir / name)
        self.log(
            f"epoch {epoch}/{state.epochs}: train_loss {train_loss:.4f} val_loss {state.val_loss:.4f} "
            f"val_miou {miou:.4f}{' (best)' if improved else ''} [{seconds:.1f}s]",
            flush=True,
        )
        if out_of_time and epoch < state.epochs:
            state.stopped_at = epoch
            self.log(
                f"stopped after epoch {epoch} of {state.epochs}: train.max_minutes = {cfg.train.max_minutes} reached"
            )
            return True
        return False

    def fit_schedule(self, epoch: int) -> None:
        """``train.fit_epochs_to_time``: set the epochs so the schedule ends inside the budget."""
        cfg, state = self.cfg, self.state
        first = first_timed_epoch(cfg.train.freeze_encoder_epochs)
        if cfg.train.fit_epochs_to_time and epoch >= first and epoch < state.epochs:
            # From the first epoch past start-up and the encoder's release on, and again
            # after every epoch: runs sharing a GPU slow each other down as they start.
            recent = float(np.median(state.epoch_seconds[first - 1 :][-3:]))
            fitted = int(
                D.broadcast_object(
                    epochs_for_time(
                        cfg.train.epochs,
                        epoch,
                        time.perf_counter() - state.started,
                        recent,
                        60.0 * cfg.train.max_minutes,
                    )
                )
            )
            if fitted != state.epochs:
                self.log(
                    f"train.fit_epochs_to_time: {fitted} of {cfg.train.epochs} epochs fit in "
                    f"{cfg.train.max_minutes} min ({recent:.1f} s per epoch)"
                )
                state.epochs = fitted

    def checkpoint(self, epoch: int, miou: float, val_iou: dict[str, float], val_loss: float) -> dict[str, Any]:
        """The ``best.pt``/``last.pt`` content (the averaged weights under ``train.ema_decay``)."""
        return {
            "format": 1,
            "model_config": dataclasses.asdict(self.net.model_cfg),
            "state_dict": _cpu_state(self.eval_model),
            "dataset": self.spec.to_dict(),
            "config": self.cfg.to_dict(),
            "training": {
                "epoch": epoch,
                "val_miou": 0.0 if math.isnan(miou) else miou,
                "val_iou": val_iou,
                "val_loss": val_loss,
                "params": self.net.params,
                "flops": self.net.flops,
            },
        }

    def finish(self, initial: tuple[float, ConfusionMatrix] | None, export: bool) -> dict[str, Any]:
        """Rank 0 exports the best epoch to ONNX and writes ``summary.json``; every rank
        returns (the summary on rank 0) or raises the export's error."""
        cfg, state, spec, best = self.cfg, self.state, self.spec, self.state.best
        assert best is not None  # epochs >= 1 is validated
        summary: dict[str, Any] = {}
        error = None
        if self.info.is_main:
            onnx_path = self.run_dir / cfg.export.filename
            try:
                if export:
                    export_checkpoint(self.run_dir / "best.pt", onnx_path)
            except ExportError as err:
                error = str(err)
            else:
                summary = {
                    "dataset": spec.name,
                    "encoder": self.net.model_cfg.encoder,
                    "ignore_classes": list(spec.ignore_classes),
                    "init_from": cfg.train.init_from,
                    "data_root": str(cfg.data_root()),
                    "classes": spec.class_names,
                    "train_frames": len(self.train_ds.pairs),
                    "synthetic_frames_per_epoch": self.train_ds.synthetic_count
                    if self.train_ds.synthetic is not None
                    else 0,
                    "steps": state.iteration,
                    "val_frames": len(self.val_ds),
                    "epochs": state.epochs,
                    "epochs_configured": cfg.train.epochs,
                    "stopped_early_at_epoch": state.stopped_at,
                    "best_epoch": best["epoch"],
                    "val_miou": best["val_miou"],
                    "val_iou": best["val_iou"],
                    "initial_val_loss": initial[0] if initial is not None else None,
                    "initial_val_miou": initial[1].mean_iou() if initial is not None else None,
                    "final_val_loss": state.val_loss,
                    "params": self.net.params,
                    "flops": self.net.flops,
                    "device": str(self.info.device),
                    "world_size": self.info.world_size,
                    "seconds": round(time.perf_counter() - state.started, 1),
                    "seconds_per_step": round(float(np.median(state.step_times)), 4),
                    "onnx": str(onnx_path) if export else None,
                }
                (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
                wrote = f"; wrote {onnx_path}" if export else ""
                self.log(f"best epoch {best['epoch']}: val mIoU {best['val_miou']:.4f}{wrote}")
        error = D.broadcast_object(error)  # the other ranks wait for the export and share its outcome
        if error is not None:
            raise ExportError(error)
        return summary
