"""Confusion-matrix segmentation metrics: per-class IoU and Dice, mean IoU.

Rows of the confusion matrix are the true class, columns the predicted class. Pixels
whose truth is ``ignore_index`` are not counted. The mean IoU averages over the classes
present in the accumulated truth; a class absent from the truth has no IoU (``nan``),
even when it was predicted (its false positives still lower the IoU of the true classes).
"""

from __future__ import annotations

import numpy as np
import torch


class ConfusionMatrix:
    """Accumulates a ``num_classes x num_classes`` confusion matrix over batches."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> None:
        """Add predicted and true label maps of equal shape (any number of dimensions)."""
        pred_np = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
        target_np = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
        if pred_np.shape != target_np.shape:
            raise ValueError(f"prediction shape {pred_np.shape} differs from target shape {target_np.shape}")
        pred_np = pred_np.ravel().astype(np.int64)
        target_np = target_np.ravel().astype(np.int64)
        keep = target_np != self.ignore_index
        pred_np, target_np = pred_np[keep], target_np[keep]
        if target_np.size and (target_np.min() < 0 or target_np.max() >= self.num_classes):
            raise ValueError(f"target labels outside 0..{self.num_classes - 1} (and not {self.ignore_index})")
        if pred_np.size and (pred_np.min() < 0 or pred_np.max() >= self.num_classes):
            raise ValueError(f"predicted labels outside 0..{self.num_classes - 1}")
        counts = np.bincount(target_np * self.num_classes + pred_np, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def present(self) -> np.ndarray:
        """Boolean mask of the classes that occur in the accumulated truth."""
        return self.matrix.sum(axis=1) > 0

    def iou(self) -> np.ndarray:
        """Per-class IoU ``TP / (TP + FP + FN)``; ``nan`` for classes absent from the truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - tp
        return np.where(self.present(), tp / np.maximum(union, 1), np.nan)

    def dice(self) -> np.ndarray:
        """Per-class Dice ``2TP / (2TP + FP + FN)``; ``nan`` for classes absent from the truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(axis=0) + self.matrix.sum(axis=1)
        return np.where(self.present(), 2 * tp / np.maximum(denom, 1), np.nan)

    def mean_iou(self) -> float:
        """Mean IoU over the classes present in the truth (``nan`` when there is none)."""
        present = self.present()
        return float(self.iou()[present].mean()) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        """Fraction of labelled pixels predicted correctly."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def summary(self, class_names: list[str]) -> dict:
        """JSON-ready summary; classes absent from the truth map to ``None``."""
        iou, dice = self.iou(), self.dice()
        return {
            "miou": _finite_or_none(self.mean_iou()),
            "pixel_accuracy": _finite_or_none(self.pixel_accuracy()),
            "iou": {n: _finite_or_none(v) for n, v in zip(class_names, iou)},
            "dice": {n: _finite_or_none(v) for n, v in zip(class_names, dice)},
            "pixels": {n: int(v) for n, v in zip(class_names, self.matrix.sum(axis=1))},
            "confusion_matrix": self.matrix.tolist(),
        }


def _finite_or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
