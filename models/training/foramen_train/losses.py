"""Segmentation losses: cross-entropy (optionally class-weighted or OHEM) plus Dice.

Pixels labelled ``ignore_index`` contribute nothing to any term, and a batch without a
single labelled pixel gives a loss of zero (not NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossConfig:
    """Loss settings (the ``[train.loss]`` section).

    Attributes:
        ce_weight: weight of the cross-entropy term.
        dice_weight: weight of the Dice term (0 disables it).
        class_weights: optional per-class cross-entropy weights (one per class).
        ohem_thresh: online hard example mining: keep pixels whose true-class probability
            is below this threshold (0 disables OHEM).
        ohem_min_kept: with OHEM, keep at least this many hardest pixels per batch.
        aux_weight: weight of each auxiliary head's cross-entropy (deep supervision; 0 disables).
    """

    ce_weight: float = 1.0
    dice_weight: float = 0.5
    class_weights: list[float] | None = None
    ohem_thresh: float = 0.0
    ohem_min_kept: int = 10000
    aux_weight: float = 0.4

    def validate(self, num_classes: int) -> None:
        """Raise ``ValueError`` naming the offending ``train.loss.*`` field."""
        for name in ("ce_weight", "dice_weight", "aux_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.loss.{name}: must be >= 0, got {getattr(self, name)}")
        if self.ce_weight == 0 and self.dice_weight == 0:
            raise ValueError("train.loss: ce_weight and dice_weight are both 0")
        if self.class_weights is not None:
            if len(self.class_weights) != num_classes or any(w < 0 for w in self.class_weights):
                raise ValueError(
                    f"train.loss.class_weights: need {num_classes} non-negative weights, got {self.class_weights}"
                )
        if not 0.0 <= self.ohem_thresh < 1.0:
            raise ValueError(f"train.loss.ohem_thresh: must be in [0, 1), got {self.ohem_thresh}")
        if self.ohem_min_kept < 1:
            raise ValueError(f"train.loss.ohem_min_kept: must be >= 1, got {self.ohem_min_kept}")


class SegmentationLoss(nn.Module):
    """``ce_weight * CE (+ OHEM) + dice_weight * Dice`` on logits ``(N, C, H, W)``."""

    def __init__(self, num_classes: int, ignore_index: int, cfg: LossConfig):
        super().__init__()
        cfg.validate(num_classes)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cfg = cfg
        weights = torch.tensor(cfg.class_weights, dtype=torch.float32) if cfg.class_weights is not None else None
        self.register_buffer("class_weights", weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss; ``target`` is ``int64 (N, H, W)``."""
        log_probs = F.log_softmax(logits, dim=1)
        loss = logits.new_zeros(())
        if self.cfg.ce_weight > 0:
            loss = loss + self.cfg.ce_weight * self._nll(log_probs, target)
        if self.cfg.dice_weight > 0:
            loss = loss + self.cfg.dice_weight * _dice_from_probs(log_probs.exp(), target, self.ignore_index)
        return loss

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The cross-entropy term alone (class weights / OHEM applied), unweighted.

        Used for the auxiliary heads, where the Dice term would double the loss cost
        for little benefit.
        """
        return self._nll(F.log_softmax(logits, dim=1), target)

    def _nll(self, log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = F.nll_loss(
            log_probs, target, weight=self.class_weights, ignore_index=self.ignore_index, reduction="none"
        )
        valid = target != self.ignore_index
        if self.cfg.ohem_thresh > 0:
            return _ohem(per_pixel[valid], self.cfg.ohem_thresh, self.cfg.ohem_min_kept)
        if self.class_weights is None:
            return per_pixel.sum() / valid.sum().clamp(min=1)
        weight_sum = self.class_weights[target[valid]].sum()
        return per_pixel.sum() / weight_sum.clamp(min=1e-12)


def _ohem(losses: torch.Tensor, thresh: float, min_kept: int) -> torch.Tensor:
    """Mean of the hard pixel losses: those above ``-log(thresh)``, at least ``min_kept``."""
    if losses.numel() == 0:
        return losses.sum()
    hard = int((losses > -math.log(thresh)).sum())
    keep = min(losses.numel(), max(hard, min_kept))
    return torch.topk(losses, keep, sorted=False).values.mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c dice_c`` over all classes, ignoring ``ignore_index``.

    Per class, ``dice_c = (2 sum(p*t) + smooth) / (sum(p) + sum(t) + smooth)`` over the
    labelled pixels of the whole batch; a class absent from the batch then scores 1 only
    when it is not predicted either.
    """
    return _dice_from_probs(torch.softmax(logits, dim=1), target, ignore_index, smooth)


def _dice_from_probs(probs: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0) -> torch.Tensor:
    # Per-class sums via gather / scatter_add instead of a one-hot tensor (much cheaper on CPU).
    num_classes = probs.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    p_true = probs.gather(1, safe.unsqueeze(1)).squeeze(1) * valid
    intersection = probs.new_zeros(num_classes).scatter_add(0, safe.flatten(), p_true.flatten())
    target_sum = torch.bincount(safe[valid], minlength=num_classes).to(probs.dtype)
    prob_sum = (probs * valid.unsqueeze(1)).sum(dim=(0, 2, 3))
    return 1.0 - ((2.0 * intersection + smooth) / (prob_sum + target_sum + smooth)).mean()
