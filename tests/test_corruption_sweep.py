"""Corruption sweep: reproducible, severity 0 is the clean image, mPC is the mean."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from datasets import build_dataset
from datasets.corrupted import CorruptedDataset
from tests.generated_data import generate_dataset
from engine.robustness import corruption_sweep
from engine.summary import corruption_summary
from engine.evaluation import build_eval_loader, evaluate


class _PixelNet(nn.Module):
    """1x1 conv + a 3x3 conv: predictions depend on the pixels, so corruptions show."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 19, 3, padding=1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


@pytest.fixture(scope="module")
def cityscapes_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    generate_dataset("cityscapes", root, num_images=2, size=(48, 64), seed=3, splits=("val",))
    return build_dataset("cityscapes", "val", root=root, training=False)


def _evaluate(model):
    def run(dataset, desc="eval"):
        return evaluate(model, build_eval_loader(dataset, 1, 0), "cpu", desc=desc)
    return run


def test_severity_zero_is_the_clean_evaluation(cityscapes_val):
    run = _evaluate(_PixelNet())
    clean = run(cityscapes_val)
    for corruption in ("gaussian_noise", "fog"):
        zero = run(CorruptedDataset(cityscapes_val, corruption, 0))
        assert zero["hist"] == clean["hist"]
    item, clean = CorruptedDataset(cityscapes_val, "fog", 0)[0], cityscapes_val[0]
    assert torch.equal(item["image"], clean["image"])
    assert torch.equal(item["label"], clean["label"]) and item["name"] == clean["name"]


def test_corrupted_items_keep_labels_and_change_images(cityscapes_val):
    item, clean = CorruptedDataset(cityscapes_val, "gaussian_noise", 3)[1], cityscapes_val[1]
    assert item["name"] == clean["name"] and torch.equal(item["label"], clean["label"])
    assert item["image"].shape == clean["image"].shape
    assert not torch.equal(item["image"], clean["image"])


def test_sweep_is_reproducible_and_mpc_is_the_mean(cityscapes_val):
    run = _evaluate(_PixelNet())
    clean = run(cityscapes_val)["miou"]
    corruptions, severities = ["gaussian_noise", "motion_blur", "frost"], [1, 3]
    first = corruption_sweep(run, cityscapes_val, corruptions, severities, clean)
    second = corruption_sweep(_evaluate(_PixelNet()), cityscapes_val, corruptions, severities,
                              clean)
    assert first == second
    per_corruption = [first["corruptions"][c]["miou"] for c in corruptions]
    assert first["mpc"] == pytest.approx(float(np.mean(per_corruption)), abs=1e-12)
    for c in corruptions:
        values = list(first["corruptions"][c]["per_severity"].values())
        assert list(first["corruptions"][c]["per_severity"]) == ["1", "3"]
        assert first["corruptions"][c]["miou"] == pytest.approx(float(np.mean(values)))
    assert first["relative_robustness"] == pytest.approx(first["mpc"] / clean)
    assert first["clean_miou"] == clean and first["benchmark_complete"] is False
    # the noise really changed the predictions
    assert first["corruptions"]["gaussian_noise"]["per_severity"]["3"] != clean


def test_summary_excludes_severity_zero_and_flags_the_full_benchmark():
    from transforms.corruptions import BENCHMARK_CORRUPTIONS

    summary = corruption_summary(0.5, {"fog": {0: 0.5, 1: 0.4, 2: 0.2}, "snow": {1: 0.1}})
    assert summary["corruptions"]["fog"]["miou"] == pytest.approx(0.3)
    assert summary["mpc"] == pytest.approx(0.2)
    assert summary["relative_robustness"] == pytest.approx(0.4)
    assert summary["severities"] == [0, 1, 2]
    full = corruption_summary(0.5, {c: {s: 0.25 for s in range(1, 6)}
                                    for c in BENCHMARK_CORRUPTIONS}, BENCHMARK_CORRUPTIONS)
    assert full["benchmark_complete"] is True and full["mpc"] == pytest.approx(0.25)
    only_clean = corruption_summary(0.5, {"fog": {0: 0.5}})
    assert math.isnan(only_clean["mpc"]) and math.isnan(only_clean["relative_robustness"])


def test_wrapper_refuses_training_sets_and_bad_arguments(cityscapes_val):
    class _Training:
        training = True
    with pytest.raises(ValueError, match="evaluation datasets"):
        CorruptedDataset(_Training(), "fog", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        CorruptedDataset(cityscapes_val, "smog", 1)
    with pytest.raises(ValueError, match="--severities"):
        CorruptedDataset(cityscapes_val, "fog", 7)
