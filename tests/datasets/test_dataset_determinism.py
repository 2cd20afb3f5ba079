"""Training items are a pure function of (seed, epoch, index); views share geometry only."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from PIL import Image

from datasets import build_dataset, worker_init_fn
from transforms.normalization import to_item_image
from transforms.photometric import gaussian_blur


@pytest.fixture
def jitter_set(synthetic, cache_dir):
    root, _ = synthetic["cityscapes"]
    return build_dataset("cityscapes_jitter", "train", root=root, crop_size=40, rrotate=10,
                         color_aug=0.5, gblur=True, cache_dir=cache_dir)


def _assert_items_equal(a, b):
    assert a["name"] == b["name"]
    for key in ("image", "image_aug", "label"):
        assert torch.equal(a[key], b[key]), key


def test_same_item_twice_is_identical_and_epoch_changes_it(jitter_set):
    first = jitter_set[1]
    _assert_items_equal(first, jitter_set[1])
    jitter_set.set_epoch(1)
    changed = jitter_set[1]
    assert not torch.equal(first["image"], changed["image"])
    jitter_set.set_epoch(0)
    _assert_items_equal(first, jitter_set[1])


def test_global_rng_is_not_disturbed(jitter_set):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    jitter_set[0]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_item_draws_leave_the_accelerator_generators_alone(jitter_set, monkeypatch):
    # torch.manual_seed also reseeds every CUDA device, which fork_rng(devices=[]) does not
    # restore: items loaded in the training process (--num_workers 0) would reset the GPU
    # dropout stream at every batch.
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    item = jitter_set[0]
    assert calls == []
    monkeypatch.undo()
    _assert_items_equal(item, jitter_set[0])  # the CPU draws are unchanged


def test_seed_option_changes_items(synthetic, cache_dir):
    root, _ = synthetic["bdd100k"]
    a = build_dataset("bdd100k_jitter", "train", root=root, crop_size=24, cache_dir=cache_dir)
    b = build_dataset("bdd100k_jitter", "train", root=root, crop_size=24, cache_dir=cache_dir,
                      seed=7)
    assert not torch.equal(a[0]["image_aug"], b[0]["image_aug"])


def test_worker_processes_give_the_same_batches(jitter_set):
    def batches(workers):
        loader = DataLoader(jitter_set, batch_size=2, num_workers=workers)
        return list(loader)

    for inline, parallel in zip(batches(0), batches(2)):
        assert inline["name"] == parallel["name"]
        for key in ("image", "image_aug", "label"):
            assert torch.equal(inline[key], parallel[key])


def test_views_share_geometry_and_label(jitter_set):
    """With the photometric steps replaced by plain normalisation both views coincide, and
    the label is the one the full pipeline returns: photometrics never touch geometry."""
    full = [jitter_set[i] for i in range(3)]
    jitter_set.train_transform.view_transform = to_item_image
    jitter_set.train_transform.aug_transform = to_item_image
    for index, item in enumerate(full):
        plain = jitter_set[index]
        assert torch.equal(plain["image"], plain["image_aug"])
        assert torch.equal(plain["label"], item["label"])
        assert not torch.equal(item["image"], item["image_aug"])


def test_label_is_unchanged_by_photometric_options(synthetic, cache_dir):
    root, _ = synthetic["gtav"]
    options = dict(root=root, crop_size=32, cache_dir=cache_dir)
    plain = build_dataset("gtav", "train", **options)
    jittered = build_dataset("gtav_jitter", "train", color_aug=1.0, gblur=True, **options)
    for index in range(len(plain)):
        assert torch.equal(plain[index]["label"], jittered[index]["label"])


class _GlobalRngDraws(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        blurred = gaussian_blur(Image.new("RGB", (600, 600)), 1.0)  # OpenCV in the worker
        return np.random.randint(1 << 30), np.asarray(blurred).shape[0]


def test_worker_init_fn_seeds_workers_and_is_fork_safe():
    """After the parent used OpenCV's thread pool, workers must neither hang (as
    cv2.setNumThreads would) nor share one global NumPy stream."""
    gaussian_blur(Image.new("RGB", (1500, 1500)), 1.0)
    loader = DataLoader(_GlobalRngDraws(), batch_size=1, num_workers=2,
                        worker_init_fn=worker_init_fn, timeout=60)
    draws = [int(value) for value, _ in loader]
    assert len(draws) == 4 and len(set(draws)) == 4
