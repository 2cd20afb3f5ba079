"""Mean over the evaluated targets and SYNTHIA's 16- / 13-class mIoU."""

import math

import numpy as np
import pytest

from utils.labels import CLASS_NAMES
from datasets.synthia import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
from engine.summary import mean_over_targets, subset_miou, synthia_subset_mious, \
    training_sources


def _result(iou):
    return {"iou": list(iou), "miou": float(np.nanmean(iou))}


def test_class_lists():
    assert len(SYNTHIA_16_CLASSES) == 16 and len(SYNTHIA_13_CLASSES) == 13
    assert set(CLASS_NAMES) - set(SYNTHIA_16_CLASSES) == {"terrain", "truck", "train"}
    assert set(SYNTHIA_16_CLASSES) - set(SYNTHIA_13_CLASSES) == {"wall", "fence", "pole"}


def test_synthia_subsets_average_only_their_classes():
    iou = np.full(19, 0.5)
    for name in ("terrain", "truck", "train"):
        iou[CLASS_NAMES.index(name)] = 0.0
    for name in ("wall", "fence", "pole"):
        iou[CLASS_NAMES.index(name)] = 0.1
    got = synthia_subset_mious(list(iou), CLASS_NAMES)
    assert got["miou_16"] == pytest.approx((13 * 0.5 + 3 * 0.1) / 16)
    assert got["miou_13"] == pytest.approx(0.5)
    iou[CLASS_NAMES.index("bus")] = float("nan")  # absent and never predicted: not counted
    assert subset_miou(list(iou), CLASS_NAMES, SYNTHIA_13_CLASSES) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not among"):
        subset_miou(list(iou), CLASS_NAMES, ["tree"])


def test_training_sources():
    assert training_sources(["gtav_jitter"]) == ("gtav",)
    assert training_sources(["bdd-100k", "synthia", "synthia_jitter"]) == ("bdd100k", "synthia")
    assert training_sources(None) == ()
    assert training_sources(["somethingelse"]) == ("somethingelse",)


def test_mean_over_targets_leaves_out_the_source():
    results = {"cityscapes": _result([0.4] * 19), "bdd100k": _result([0.2] * 19),
               "gtav": _result([0.9] * 19)}
    summary = mean_over_targets(results, ("gtav",), CLASS_NAMES)
    assert summary == {"targets": ["cityscapes", "bdd100k"], "miou": pytest.approx(0.3)}
    everything = mean_over_targets(results, (), CLASS_NAMES)
    assert everything["targets"] == ["cityscapes", "bdd100k", "gtav"]
    assert math.isnan(mean_over_targets({"gtav": results["gtav"]}, ("gtav",),
                                        CLASS_NAMES)["miou"])


def test_mean_over_targets_of_a_synthia_source_has_the_subset_means():
    iou = [0.6] * 19
    iou[CLASS_NAMES.index("wall")] = 0.0
    results = {"cityscapes": _result(iou), "mapillary": _result([0.3] * 19)}
    summary = mean_over_targets(results, ("synthia",), CLASS_NAMES)
    assert summary["miou_13"] == pytest.approx((0.6 + 0.3) / 2)
    assert summary["miou_16"] == pytest.approx(((15 * 0.6) / 16 + 0.3) / 2)


def test_training_run_of_ours_official_and_bare_checkpoints():
    from engine.report import training_run

    ours = {"args": {"exp": "blindnet_seed305", "seed": 305, "dataset": ["gtav_jitter"],
                     "date": "0326", "arch": "network.deepv3.DeepR50V3PlusD", "lr": 0.01},
            "iteration": 40000}
    assert training_run(ours) == {"exp": "blindnet_seed305", "date": "0326", "seed": 305,
                                  "dataset": ["gtav_jitter"],
                                  "arch": "network.deepv3.DeepR50V3PlusD", "iteration": 40000}
    official = {"state_dict": {}, "command": "train.py --dataset gtav_jitter synthia --val_dataset"
                                             " cityscapes --arch network.deepv3.DeepR50V3PlusD"}
    run = training_run(official)
    assert run["dataset"] == ["gtav_jitter", "synthia"] and run["seed"] is None
    assert training_run({"state_dict": {}}) is None and training_run({"a": 1}) is None
    assert training_run({"command": "train.py --lr 0.01"})["dataset"] is None
