"""Losses honour the ignore index."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from foramen_train.losses import LossConfig, SegmentationLoss, _ohem, dice_loss, lovasz_softmax


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 8, 8, generator=g)
    target = torch.randint(0, 4, (2, 8, 8), generator=g)
    target[:, :3] = 255
    return logits, target


@pytest.mark.parametrize(
    "cfg",
    [
        LossConfig(),
        LossConfig(dice_weight=0),
        LossConfig(ce_weight=0),
        LossConfig(class_weights=[1, 2, 3, 4]),
        LossConfig(ohem_thresh=0.7, ohem_min_kept=10),
        LossConfig(dice_weight=0, lovasz_weight=1.0),
    ],
)
def test_ignored_pixels_do_not_matter(cfg):
    loss_fn = SegmentationLoss(4, 255, cfg)
    logits, target = batch()
    changed = logits.clone()
    changed[:, :, :3] = torch.randn(2, 4, 3, 8) * 50
    assert torch.allclose(loss_fn(logits, target), loss_fn(changed, target))


def test_cross_entropy_equals_mean_over_labelled_pixels():
    logits, target = batch()
    loss = SegmentationLoss(4, 255, LossConfig(dice_weight=0))(logits, target)
    valid = target != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], target[valid])
    assert torch.allclose(loss, expected)


def test_all_ignored_gives_zero_not_nan():
    logits, target = batch()
    target[:] = 255
    for cfg in (
        LossConfig(),
        LossConfig(class_weights=[1, 1, 1, 1]),
        LossConfig(ohem_thresh=0.7),
        LossConfig(lovasz_weight=1.0),
    ):
        loss = SegmentationLoss(4, 255, cfg)(logits.requires_grad_(), target)
        assert torch.isfinite(loss) and loss.item() == 0.0
        loss.backward()


def test_ohem_keeps_hardest_pixels():
    logits, target = batch()
    full = SegmentationLoss(4, 255, LossConfig(dice_weight=0))(logits, target)
    hard = SegmentationLoss(4, 255, LossConfig(dice_weight=0, ohem_thresh=0.01, ohem_min_kept=5))(logits, target)
    assert hard > full


def test_dice_perfect_prediction_is_near_zero():
    target = torch.randint(0, 3, (1, 16, 16))
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    assert dice_loss(logits, target, 255).item() < 1e-3


def test_bad_class_weights_named():
    with pytest.raises(ValueError, match="train.loss.class_weights"):
        SegmentationLoss(4, 255, LossConfig(class_weights=[1.0, 2.0]))


def test_dice_matches_one_hot_reference():
    logits, target = batch(3)
    valid = (target != 255).unsqueeze(1).float()
    probs = torch.softmax(logits, 1) * valid
    onehot = F.one_hot(torch.where(target == 255, 0, target), 4).permute(0, 3, 1, 2).float() * valid
    inter, denom = (probs * onehot).sum((0, 2, 3)), probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    expected = 1 - ((2 * inter + 1) / (denom + 1)).mean()
    assert torch.allclose(dice_loss(logits, target, 255), expected, atol=1e-6)


def test_aux_cross_entropy_has_no_dice_term():
    logits, target = batch()
    loss_fn = SegmentationLoss(4, 255, LossConfig(dice_weight=1.0, ce_weight=2.0))
    ce_only = SegmentationLoss(4, 255, LossConfig(dice_weight=0.0))
    assert torch.allclose(loss_fn.cross_entropy(logits, target), ce_only(logits, target))


def test_ignore_classes_count_as_unlabelled():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    target = torch.randint(0, 4, (2, 8, 8))
    for cfg in (LossConfig(), LossConfig(ohem_thresh=0.7, ohem_min_kept=10)):
        plain = SegmentationLoss(4, 255, cfg)
        ignoring = SegmentationLoss(4, 255, dataclasses.replace(cfg, ignore_classes=[0]))
        unlabelled = target.masked_fill(target == 0, 255)
        assert torch.allclose(ignoring(logits, target), plain(logits, unlabelled))
        assert torch.allclose(ignoring.cross_entropy(logits, target), plain.cross_entropy(logits, unlabelled))
        assert not torch.allclose(ignoring(logits, target), plain(logits, target))
    with pytest.raises(ValueError, match="train.loss.ignore_classes"):
        SegmentationLoss(4, 255, LossConfig(ignore_classes=[4]))
    with pytest.raises(ValueError, match="train.loss.ignore_classes"):
        SegmentationLoss(4, 255, LossConfig(ignore_classes=[0, 1, 2, 3]))


def _reference_ohem(losses, thresh, min_kept):
    """The plain statement of OHEM on the labelled pixels' losses."""
    if losses.numel() == 0:
        return losses.sum()
    hard = int((losses > -math.log(thresh)).sum())
    keep = min(losses.numel(), max(hard, min_kept))
    return torch.topk(losses, keep).values.mean()


@pytest.mark.parametrize("thresh,min_kept", [(0.7, 10), (0.7, 100), (0.99, 5), (0.01, 5), (0.7, 10_000)])
def test_ohem_without_host_reads_equals_the_plain_statement(thresh, min_kept):
    for seed in range(3):
        logits, target = batch(seed)
        per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
        valid = target != 255
        got = _ohem(per_pixel, valid, thresh, min_kept)
        assert torch.allclose(got, _reference_ohem(per_pixel[valid], thresh, min_kept), atol=1e-6)
    none = torch.zeros(2, 8, 8, dtype=torch.bool)
    assert _ohem(per_pixel, none, 0.7, 10).item() == 0.0


def test_lovasz_on_hard_predictions_is_one_minus_miou_of_the_classes_present():
    logits, target = batch(3)
    hard = F.one_hot(logits.argmax(1), 4).permute(0, 3, 1, 2).float() * 1e4
    pred, valid = hard.argmax(1)[target != 255], target[target != 255]
    ious = [
        ((pred == c) & (valid == c)).sum().item() / ((pred == c) | (valid == c)).sum().item()
        for c in valid.unique().tolist()
    ]
    assert math.isclose(lovasz_softmax(hard, target, 255).item(), 1 - sum(ious) / len(ious), rel_tol=1e-5)


def test_lovasz_equals_the_jaccard_loss_integrated_over_error_thresholds():
    # The Lovasz extension of a set function is its integral over thresholds t of the
    # set {pixels with error >= t}: an independent way to the same number.
    logits, target = batch(4)
    probs = logits.softmax(1)
    valid = target != 255
    expected = []
    for c in target[valid].unique().tolist():
        truth = target[valid] == c
        errors = (truth.float() - probs.permute(0, 2, 3, 1)[valid][:, c]).abs().double()
        levels = torch.cat([torch.zeros(1, dtype=torch.float64), errors.sort().values])
        integral = 0.0
        for lo, hi in zip(levels[:-1].tolist(), levels[1:].tolist()):
            wrong = errors >= hi
            union = (truth | wrong).sum().item()
            integral += (hi - lo) * (1 - (truth & ~wrong).sum().item() / union)
        expected.append(integral)
    assert math.isclose(lovasz_softmax(logits, target, 255).item(), sum(expected) / len(expected), rel_tol=1e-4)


def test_lovasz_is_refused_in_distributed_training():
    with pytest.raises(ValueError, match="train.loss.lovasz_weight"):
        SegmentationLoss(4, 255, LossConfig(lovasz_weight=1.0), sync=True)
