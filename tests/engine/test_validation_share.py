"""Every-epoch validation that would dominate training is reported at start-up; validation
loaders keep their workers between validations."""

import logging
from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

import train
from engine.data import ValSet, validation_share
from engine.evaluation import build_eval_loader


class _Images(Dataset):
    def __init__(self, count, height, width):
        self.count, self.shape = count, (3, height, width)

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return {"image": torch.zeros(self.shape, dtype=torch.uint8),
                "label": torch.zeros(self.shape[1:], dtype=torch.uint8), "name": str(index)}


def _val_sets(*datasets):
    return {f"set{i}": ValSet(build_eval_loader(d, 1, 0), (0,) * 3, (1,) * 3)
            for i, d in enumerate(datasets)}


def test_the_share_is_the_larger_of_the_pixel_and_the_image_ratio():
    val_sets = _val_sets(_Images(10, 100, 200), _Images(5, 50, 40))
    # 100 batches of 2 two-view 64x64 crops: 200 samples, 100*2*64*64*2*3 pixel-passes.
    pixels = (10 * 100 * 200 + 5 * 50 * 40) / (100 * 2 * 64 * 64 * 2 * 3)
    share = validation_share(val_sets, 100, 2, 64, two_view=True)
    assert share == max(pixels, 15 / 200) == 15 / 200
    big = _val_sets(_Images(10, 1024, 2048))
    assert validation_share(big, 100, 2, 64, two_view=False) == 10 * 1024 * 2048 / (
        100 * 2 * 64 * 64 * 3)


def test_train_warns_with_a_val_every_that_fixes_it(caplog):
    data = SimpleNamespace(loader=range(30), two_view=False)
    args = SimpleNamespace(bs_mult=2, crop_size=64)
    with caplog.at_level(logging.WARNING):
        train.warn_long_validation(_val_sets(_Images(30, 64, 64)), data, args,
                                   logging.getLogger("t"))
    # 30 images against 60 samples: 50% of an epoch of 30 iterations -> every 60.
    assert "about 50% of the training time" in caplog.text and "--val_every 60 " in caplog.text
    caplog.clear()
    train.warn_long_validation(_val_sets(_Images(3, 64, 64)), data, args,
                               logging.getLogger("t"))
    assert caplog.text == ""


def test_validation_workers_persist_between_passes():
    loader = build_eval_loader(_Images(4, 8, 8), 2, num_workers=1, persistent=True)
    assert loader.persistent_workers
    assert not build_eval_loader(_Images(4, 8, 8), 2, num_workers=1).persistent_workers
    first = iter(loader)
    next(first)
    assert iter(loader) is first  # the same iterator, its worker kept
