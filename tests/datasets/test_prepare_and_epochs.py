"""Building a dataset does no heavy work; prepare() does it once; the explicit epoch wrapper."""

import numpy as np
import pytest
import torch

import datasets
from datasets import EpochConcatDataset, build_dataset
from datasets.uniform import EpochEntries


def _heavy_caches(cache_dir):
    """Cache files of the centroid pass and the empty-label scan (not GTAV's size check)."""
    return [p for p in cache_dir.glob("*.json") if "_tile" in p.name or "_labelscan" in p.name]


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Fail the test if any label is decoded for centroids or the empty-label scan."""
    monkeypatch.setattr("datasets.uniform.parallel_map", pytest.fail)
    monkeypatch.setattr("datasets.label_scan.parallel_map", pytest.fail)
    return monkeypatch


@pytest.mark.parametrize("pct", [0.0, 0.5])
def test_build_is_light_and_prepare_is_idempotent(pct, synthetic, cache_dir, no_heavy_work):
    root, _ = synthetic["gtav"]
    ds = build_dataset("gtav_jitter", "train", root=root, crop_size=16, cache_dir=cache_dir,
                       class_uniform_pct=pct, class_uniform_tile=16)
    # nothing computed, nothing written but GTAV's listing-time size check (D4)
    assert ds.epochs is None and _heavy_caches(cache_dir) == []
    no_heavy_work.undo()
    assert ds.prepare() is ds
    assert len(_heavy_caches(cache_dir)) == 1
    if pct > 0:
        assert ds.centroids  # 48x64 labels hold whole 16x16 tiles
    no_heavy_work.setattr("datasets.uniform.parallel_map", pytest.fail)
    no_heavy_work.setattr("datasets.label_scan.parallel_map", pytest.fail)
    entries = ds.entries.copy()
    ds.prepare()  # a second call does nothing
    np.testing.assert_array_equal(ds.entries, entries)


def test_set_epoch_len_and_items_prepare_when_nobody_did(synthetic, cache_dir):
    root, _ = synthetic["bdd100k"]
    options = dict(root=root, crop_size=16, cache_dir=cache_dir, class_uniform_pct=1.0,
                   class_uniform_tile=16)
    by_epoch = build_dataset("bdd100k", "train", **options)
    by_epoch.set_epoch(2)
    assert by_epoch.epochs is not None and by_epoch.centroids and by_epoch.epoch == 2
    by_len = build_dataset("bdd100k", "train", **options)
    assert len(by_len) == len(by_epoch) and by_len.epochs is not None
    explicit = build_dataset("bdd100k", "train", **options).prepare()
    explicit.set_epoch(2)
    np.testing.assert_array_equal(explicit.entries, by_epoch.entries)
    assert by_epoch[0]["name"] == explicit[0]["name"]


def test_evaluation_sets_need_no_preparation(synthetic, cache_dir, no_heavy_work):
    root, _ = synthetic["mapillary"]
    ds = build_dataset("mapillary", "val", root=root, cache_dir=cache_dir)
    assert len(ds) == 3 and set(ds[0]) == {"image", "label", "name"}
    assert ds.prepare() is ds and ds.empty_labels == [] and not cache_dir.exists()


def test_prepare_raises_for_all_empty_labels_not_the_constructor(tmp_path):
    from datasets.styleshift.formats import write_bdd_sample
    from utils.empty_labels import EmptyLabelsError

    for index in range(2):
        write_bdd_sample(tmp_path / "bdd", "train", f"img{index}",
                         np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 255, np.uint8))
    ds = build_dataset("bdd100k", "train", root=tmp_path / "bdd", crop_size=8,
                       cache_dir=tmp_path / "c")
    with pytest.raises(EmptyLabelsError, match="2 of 2"):
        ds.prepare()


def test_epoch_entries_wrapper():
    centroids = {3: np.array([[0, 5, 6], [2, 7, 8]]), 9: np.array([[1, 1, 1]])}
    plain = EpochEntries(5)
    for epoch in (0, 7):
        np.testing.assert_array_equal(plain.entries(epoch),
                                      [[i, -1, -1] for i in range(5)])
    uniform = EpochEntries(38, centroids, class_uniform_pct=0.5, seed=304)
    first, again = uniform.entries(4), EpochEntries(38, centroids, 0.5, 304).entries(4)
    np.testing.assert_array_equal(first, again)  # a function of (seed, epoch) only
    assert not np.array_equal(first, uniform.entries(5))
    assert not np.array_equal(first, EpochEntries(38, centroids, 0.5, 305).entries(4))
    assert len({len(uniform.entries(e)) for e in range(4)}) == 1
    # 38 - 19 random entries (each sample at most once), then 1 per class with centroids
    assert first.dtype == np.int64 and first.shape == (19 + 2, 3)
    assert (first[:19, 1:] == -1).all() and len(set(first[:19, 0])) == 19
    allowed = {tuple(r) for rows in centroids.values() for r in rows.tolist()}
    assert {tuple(r) for r in first[19:].tolist()} <= allowed


def test_concatenation_is_light_and_forwards_prepare_and_set_epoch(synthetic, cache_dir,
                                                                    no_heavy_work):
    parts = [build_dataset(f"{name}_jitter", "train", root=synthetic[name][0], crop_size=16,
                           cache_dir=cache_dir / name) for name in ("gtav", "cityscapes")]
    both = EpochConcatDataset(parts)
    assert all(part.epochs is None for part in parts)
    no_heavy_work.undo()
    assert both.prepare() is both and all(part.epochs is not None for part in parts)
    both.set_epoch(3)
    assert [part.epoch for part in parts] == [3, 3]
    assert len(both) == 6 and set(both[5]) == {"image", "image_aug", "label", "name"}
    assert isinstance(datasets.EpochConcatDataset([parts[0]]), EpochConcatDataset)
    with pytest.raises(ValueError, match="at least one"):
        EpochConcatDataset([])


def test_sources_of_a_concatenation_draw_independently(synthetic, cache_dir):
    """Item k of every source used to get the same scale/crop/flip/jitter and the same
    class-uniform shuffles; now each source has its own streams, the first keeps its own."""
    def jitter_set():
        return build_dataset("gtav_jitter", "train", root=synthetic["gtav"][0], crop_size=16,
                             class_uniform_pct=0.5, class_uniform_tile=16, cache_dir=cache_dir)

    alone, first, second = jitter_set(), jitter_set(), jitter_set()
    both = EpochConcatDataset([first, second])
    both.set_epoch(0)
    alone.set_epoch(0)
    size = len(first)
    assert np.array_equal(first.entries, alone.entries)
    for k in range(size):
        assert torch.equal(both[k]["image"], alone[k]["image"])   # single-source seeds kept
    assert any(not torch.equal(both[k]["image"], both[size + k]["image"])
               for k in range(size))
    assert any(not torch.equal(both[k]["image_aug"], both[size + k]["image_aug"])
               for k in range(size))
