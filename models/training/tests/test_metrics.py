"""Confusion matrix and IoU / Dice against hand-computed values."""

import math

import numpy as np
import pytest

from foramen_train.metrics import ConfusionMatrix


def test_hand_computed_confusion_matrix():
    target = np.array([[0, 0, 1, 1], [1, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 3, 3]])
    cm = ConfusionMatrix(4, 255)
    cm.update(pred, target)
    expected = np.array(
        [
            [1, 1, 0, 0],  # truth 0: one right, one as 1
            [1, 2, 0, 0],  # truth 1: two right, one as 0
            [0, 0, 1, 1],  # truth 2: one right, one as 3
            [0, 0, 0, 0],  # class 3 never true; the 255 pixel is not counted
        ]
    )
    np.testing.assert_array_equal(cm.matrix, expected)
    iou = cm.iou()
    assert iou[0] == pytest.approx(1 / 3)  # TP 1, FP 1, FN 1
    assert iou[1] == pytest.approx(2 / 4)  # TP 2, FP 1, FN 1
    assert iou[2] == pytest.approx(1 / 2)  # TP 1, FP 0, FN 1
    assert math.isnan(iou[3])
    dice = cm.dice()
    assert dice[0] == pytest.approx(2 / 4) and dice[1] == pytest.approx(4 / 6) and dice[2] == pytest.approx(2 / 3)
    assert cm.mean_iou() == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 7)
    summary = cm.summary(["a", "b", "c", "d"])
    assert summary["iou"]["d"] is None and summary["pixels"] == {"a": 2, "b": 3, "c": 2, "d": 0}


def test_accumulates_over_updates():
    cm = ConfusionMatrix(2, 255)
    cm.update(np.array([0, 1]), np.array([0, 1]))
    cm.update(np.array([1]), np.array([0]))
    np.testing.assert_array_equal(cm.matrix, [[1, 1], [0, 1]])


def test_rejects_out_of_range_labels():
    cm = ConfusionMatrix(2, 255)
    with pytest.raises(ValueError, match="target labels"):
        cm.update(np.array([0]), np.array([5]))
