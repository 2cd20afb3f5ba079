import math

import numpy as np
import pytest
import torch

from utils.metrics import ConfusionMatrix, metrics_from_confusion


def _direct_hist(pred, label, n):
    hist = np.zeros((n, n), dtype=np.int64)
    for g, p in zip(label.ravel(), pred.ravel()):
        if 0 <= g < n:
            hist[g, p] += 1
    return hist


def test_confusion_matches_direct_count_and_ignores_255():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, size=(3, 7, 9))
    label[0, :2] = 255
    label[1, 3] = 200  # any out-of-range ground truth is dropped, not only 255
    pred = rng.integers(0, 5, size=(3, 7, 9))
    cm = ConfusionMatrix(5).update(torch.from_numpy(pred), torch.from_numpy(label))
    np.testing.assert_array_equal(cm.hist.numpy(), _direct_hist(pred, label, 5))


def test_metrics_formulas():
    hist = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    m = metrics_from_confusion(hist)
    assert m["iou"][0] == pytest.approx(5 / (6 + 7 - 5))
    assert m["iou"][1] == pytest.approx(3 / (5 + 4 - 3))
    assert math.isnan(m["iou"][2])  # absent from GT and never predicted: excluded
    assert m["miou"] == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert m["pixel_acc"] == pytest.approx(8 / 11)
    assert m["mean_class_acc"] == pytest.approx((5 / 6 + 3 / 5) / 2)
    assert m["fwavacc"] == pytest.approx(6 / 11 * 5 / 8 + 5 / 11 * 3 / 6)


def test_class_absent_from_gt_but_predicted_counts_as_zero():
    hist = np.array([[4, 1], [0, 0]])
    m = metrics_from_confusion(hist)
    assert m["iou"][1] == 0.0
    assert m["miou"] == pytest.approx((4 / 5 + 0.0) / 2)


def test_out_of_range_predictions_are_an_error():
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 3\)"):
        ConfusionMatrix(3).update(torch.tensor([[3]]), torch.tensor([[0]]))
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(3).update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3))
