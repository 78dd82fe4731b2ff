"""Segmentation losses: cross-entropy (optionally class-weighted or OHEM), Dice and
Lovasz-softmax.

Pixels labelled ``ignore_index`` contribute nothing to any term, and a batch without a
single labelled pixel gives a loss of zero (not NaN).

Every term is a function of sums over the pixels of the batch. With ``sync=True`` (data
parallel training) those sums are all-reduced over the ranks before the term is formed,
so each rank computes the loss of the whole global batch, exactly what one process
computes on it (OHEM picks its hard pixels over the global batch too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import all_gather_detached, all_reduce_detached, all_reduce_sum


@dataclass
class LossConfig:
    """Loss settings (the ``[train.loss]`` section).

    Attributes:
        ce_weight: weight of the cross-entropy term.
        dice_weight: weight of the Dice term (0 disables it).
        lovasz_weight: weight of the Lovasz-softmax term (Berman et al., CVPR 2018), a
            convex surrogate of the batch's per-class IoU (0 disables it). One process
            only: it sorts every pixel's error, which a sum over ranks cannot give.
        class_weights: optional per-class cross-entropy weights (one per class).
        ohem_thresh: online hard example mining: keep pixels whose true-class probability
            is below this threshold (0 disables OHEM).
        ohem_min_kept: with OHEM, keep at least this many hardest pixels per batch.
        aux_weight: weight of each auxiliary head's cross-entropy (deep supervision; 0 disables).
        ignore_classes: classes whose pixels the training loss treats as unlabelled (like
            ``ignore_index``), for a class that marks "not annotated" rather than
            something in the image; the model still has an output for it and the
            evaluation still scores it.
    """

    ce_weight: float = 1.0
    dice_weight: float = 0.5
    lovasz_weight: float = 0.0
    class_weights: list[float] | None = None
    ohem_thresh: float = 0.0
    ohem_min_kept: int = 10000
    aux_weight: float = 0.4
    ignore_classes: list[int] | None = None

    def validate(self, num_classes: int) -> None:
        """Raise ``ValueError`` naming the offending ``train.loss.*`` field."""
        for name in ("ce_weight", "dice_weight", "lovasz_weight", "aux_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.loss.{name}: must be >= 0, got {getattr(self, name)}")
        if self.ce_weight == 0 and self.dice_weight == 0 and self.lovasz_weight == 0:
            raise ValueError("train.loss: ce_weight, dice_weight and lovasz_weight are all 0")
        if self.class_weights is not None:
            if len(self.class_weights) != num_classes or any(w < 0 for w in self.class_weights):
                raise ValueError(
                    f"train.loss.class_weights: need {num_classes} non-negative weights, got {self.class_weights}"
                )
        if self.ignore_classes is not None:
            bad = [c for c in self.ignore_classes if not 0 <= c < num_classes]
            if bad or len(set(self.ignore_classes)) >= num_classes:
                raise ValueError(
                    f"train.loss.ignore_classes: need class indices in 0..{num_classes - 1}, leaving at least one "
                    f"class, got {self.ignore_classes}"
                )
        if not 0.0 <= self.ohem_thresh < 1.0:
            raise ValueError(f"train.loss.ohem_thresh: must be in [0, 1), got {self.ohem_thresh}")
        if self.ohem_min_kept < 1:
            raise ValueError(f"train.loss.ohem_min_kept: must be >= 1, got {self.ohem_min_kept}")


class SegmentationLoss(nn.Module):
    """``ce_weight * CE (+ OHEM) + dice_weight * Dice + lovasz_weight * Lovasz`` on logits
    ``(N, C, H, W)``.

    With ``sync=True`` and an active process group, the loss is that of the global batch
    (the union of every rank's batch); every rank must then call it in the same order.
    """

    def __init__(self, num_classes: int, ignore_index: int, cfg: LossConfig, sync: bool = False):
        super().__init__()
        cfg.validate(num_classes)
        if sync and cfg.lovasz_weight > 0:
            raise ValueError("train.loss.lovasz_weight: not available in distributed training (set it to 0)")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cfg = cfg
        self.sync = sync
        weights = torch.tensor(cfg.class_weights, dtype=torch.float32) if cfg.class_weights is not None else None
        self.register_buffer("class_weights", weights)
        ignored = torch.tensor(sorted(set(cfg.ignore_classes or [])), dtype=torch.int64)
        self.register_buffer("ignored_classes", ignored if ignored.numel() else None)

    def _unlabel(self, target: torch.Tensor) -> torch.Tensor:
        """``target`` with the pixels of ``ignore_classes`` set to ``ignore_index``."""
        if self.ignored_classes is None:
            return target
        return target.masked_fill(torch.isin(target, self.ignored_classes), self.ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss; ``target`` is ``int64 (N, H, W)``."""
        target = self._unlabel(target)
        log_probs = F.log_softmax(logits, dim=1)
        loss = logits.new_zeros(())
        if self.cfg.ce_weight > 0:
            loss = loss + self.cfg.ce_weight * self._nll(log_probs, target)
        # One softmax for both probability terms (a full-resolution tensor each time).
        probs = log_probs.exp() if self.cfg.dice_weight > 0 or self.cfg.lovasz_weight > 0 else None
        if self.cfg.dice_weight > 0:
            loss = loss + self.cfg.dice_weight * _dice_from_probs(
                probs, target, self.ignore_index, reduce=all_reduce_sum if self.sync else None
            )
        if self.cfg.lovasz_weight > 0:
            loss = loss + self.cfg.lovasz_weight * _lovasz_from_probs(probs, target, self.ignore_index)
        return loss

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The cross-entropy term alone (class weights / OHEM applied), unweighted.

        Used for the auxiliary heads, where the Dice term would double the loss cost
        for little benefit.
        """
        return self._nll(F.log_softmax(logits, dim=1), self._unlabel(target))

    def _nll(self, log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = F.nll_loss(
            log_probs, target, weight=self.class_weights, ignore_index=self.ignore_index, reduction="none"
        )
        valid = target != self.ignore_index
        if self.cfg.ohem_thresh > 0:
            if self.sync:
                return _ohem_global(per_pixel[valid], self.cfg.ohem_thresh, self.cfg.ohem_min_kept)
            return _ohem(per_pixel, valid, self.cfg.ohem_thresh, self.cfg.ohem_min_kept)
        if self.class_weights is None:
            if self.sync:
                sums = all_reduce_sum(torch.stack([per_pixel.sum(), valid.sum().to(per_pixel.dtype)]))
                return sums[0] / sums[1].clamp(min=1)
            return per_pixel.sum() / valid.sum().clamp(min=1)
        weight_sum = (self.class_weights[torch.where(valid, target, 0)] * valid).sum()
        if self.sync:
            sums = all_reduce_sum(torch.stack([per_pixel.sum(), weight_sum.to(per_pixel.dtype)]))
            return sums[0] / sums[1].clamp(min=1e-12)
        return per_pixel.sum() / weight_sum.clamp(min=1e-12)


def _ohem(losses: torch.Tensor, valid: torch.Tensor, thresh: float, min_kept: int) -> torch.Tensor:
    """Mean of the hard pixel losses: those above ``-log(thresh)``, at least the
    ``min_kept`` largest (all of them when fewer pixels are ``valid``).

    Written without a value read back to the host (no boolean indexing, no
    data-dependent ``k``): on a GPU such reads stall the queue of kernels every step.
    Pixels tied with the ``min_kept``-th largest loss are all kept.
    """
    flat = torch.where(valid, losses, torch.full_like(losses, -1.0)).flatten()  # losses are >= 0
    k = min(min_kept, flat.numel())
    if k == 0:
        return losses.sum()
    kth = torch.topk(flat.detach(), k, sorted=False).values.min()
    keep = valid.flatten() & ((flat > -math.log(thresh)) | (flat >= kth))
    return (flat * keep).sum() / keep.sum().clamp(min=1)


def _ohem_global(losses: torch.Tensor, thresh: float, min_kept: int) -> torch.Tensor:
    """:func:`_ohem` over the union of every rank's ``losses`` (each rank passes its own).

    The pixels kept are the same as one process keeps on the concatenated batch: those
    above ``-log(thresh)`` when there are at least ``min_kept`` of them over all ranks,
    otherwise the ``keep`` largest over all ranks (found by gathering each rank's local
    top ``keep`` values). Pixels tied at the cut share its weight, so the value is exact.
    """
    hard_mask = losses > -math.log(thresh)
    counts = all_reduce_detached(torch.stack([torch.tensor(losses.numel(), device=losses.device), hard_mask.sum()]))
    total, hard = int(counts[0]), int(counts[1])
    if total == 0:
        return all_reduce_sum(losses.sum())  # zero, but every rank joins the same collectives
    keep = min(total, max(hard, min_kept))
    if keep == total:
        kept = losses.sum()
    elif keep == hard:
        kept = losses[hard_mask].sum()
    else:
        local = torch.topk(losses.detach(), min(keep, losses.numel()), sorted=False).values
        padded = torch.full((keep,), -1.0, dtype=losses.dtype, device=losses.device)  # losses are >= 0
        padded[: local.numel()] = local
        cut = torch.topk(torch.cat(all_gather_detached(padded)), keep, sorted=False).values.min()
        above, tied = losses > cut, losses == cut
        n = all_reduce_detached(torch.stack([above.sum(), tied.sum()]))
        share = (keep - int(n[0])) / max(1, int(n[1]))
        kept = losses[above].sum() + share * losses[tied].sum()
    return all_reduce_sum(kept) / keep


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c dice_c`` over all classes, ignoring ``ignore_index``.

    Per class, ``dice_c = (2 sum(p*t) + smooth) / (sum(p) + sum(t) + smooth)`` over the
    labelled pixels of the whole batch; a class absent from the batch then scores 1 only
    when it is not predicted either.
    """
    return _dice_from_probs(torch.softmax(logits, dim=1), target, ignore_index, smooth)


def _dice_from_probs(
    probs: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0, reduce=None
) -> torch.Tensor:
    """Soft Dice from probabilities; ``reduce`` (e.g. a cross-rank sum) is applied to the
    per-class sums before they are combined."""
    # Per-class sums via gather / scatter_add instead of a one-hot tensor (much cheaper on CPU).
    num_classes = probs.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    p_true = probs.gather(1, safe.unsqueeze(1)).squeeze(1) * valid
    intersection = probs.new_zeros(num_classes).scatter_add(0, safe.flatten(), p_true.flatten())
    target_sum = probs.new_zeros(num_classes).scatter_add(0, safe.flatten(), valid.flatten().to(probs.dtype))
    prob_sum = (probs * valid.unsqueeze(1)).sum(dim=(0, 2, 3))
    if reduce is not None:
        intersection, target_sum, prob_sum = reduce(torch.cat([intersection, target_sum, prob_sum])).split(num_classes)
    return 1.0 - ((2.0 * intersection + smooth) / (prob_sum + target_sum + smooth)).mean()


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Lovasz-softmax loss (Berman, Rannen Triki and Blaschko, CVPR 2018) over the labelled
    pixels of the whole batch: per class present in the truth, the Lovasz extension of
    ``1 - IoU`` at the pixels' errors ``|[truth == c] - p_c|``, then the mean over those
    classes. On hard (0/1) probabilities it equals ``1 - mIoU`` of the classes present."""
    return _lovasz_from_probs(torch.softmax(logits, dim=1), target, ignore_index)


def _lovasz_from_probs(probs: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    valid = (target != ignore_index).flatten()
    flat = probs.permute(0, 2, 3, 1).reshape(-1, probs.shape[1])[valid]
    labels = target.flatten()[valid]
    terms = []
    for c in torch.unique(labels).tolist():
        truth = (labels == c).to(flat.dtype)
        errors, order = torch.sort((truth - flat[:, c]).abs(), descending=True)
        terms.append(torch.dot(errors, _lovasz_grad(truth[order])))
    return torch.stack(terms).mean() if terms else probs.sum() * 0.0


def _lovasz_grad(truth_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at errors sorted descending:
    the Jaccard loss of the first k pixels predicted wrong, differenced over k."""
    total = truth_sorted.sum()
    intersection = total - truth_sorted.cumsum(0)
    union = total + (1.0 - truth_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard
