"""Class-uniform sampling: centroids, epochs, flatter class frequencies, the cache, DDP."""

import json
import shutil
import warnings

import numpy as np
import pytest
from scipy import ndimage
from torch.utils.data.distributed import DistributedSampler

import datasets.uniform
from datasets import build_dataset
from datasets.styleshift.formats import write_bdd_sample
from datasets.uniform import build_epoch, tile_centroids


def reference_centroids(train_ids, tile):
    """The reference's loop: per whole tile, per class, scipy centre of mass, int()."""
    rows = []
    for ty in range(train_ids.shape[0] // tile):
        for tx in range(train_ids.shape[1] // tile):
            window = train_ids[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile]
            for cls in range(19):
                mask = window == cls
                if mask.any():
                    cy, cx = ndimage.center_of_mass(mask)
                    rows.append((int(cx) + tx * tile, int(cy) + ty * tile, cls))
    return rows


def test_tile_centroids_match_the_reference_loop():
    rng = np.random.default_rng(0)
    train_ids = rng.choice(np.r_[0:19, 255], size=(70, 100)).astype(np.uint8)
    train_ids[:30, :30] = 7
    got = tile_centroids(train_ids, 32)
    assert [tuple(r) for r in got] == reference_centroids(train_ids, 32)
    assert got[:, 0].max() < 96 and got[:, 1].max() < 64  # partial tiles ignored
    assert len(tile_centroids(train_ids, 71)) == 0  # no whole tile (like Synthia at 1024)


def _fake_centroids():
    return {0: np.array([[0, 1, 1], [1, 2, 2], [2, 3, 3]]), 7: np.array([[4, 5, 5]])}


def test_build_epoch_composition():
    num_samples = 40
    entries = build_epoch(num_samples, _fake_centroids(), 0.5, np.random.default_rng(0))
    per_class = int(40 * 0.5 / 19)  # 1
    num_random = 40 - 19 * per_class
    # classes without centroids are skipped: the epoch is shorter by 17 * per_class
    assert len(entries) == num_random + 2 * per_class
    random_part = entries[:num_random]
    assert (random_part[:, 1:] == -1).all() and len(set(random_part[:, 0])) == num_random
    assert set(map(tuple, entries[num_random:].tolist())) <= {(0, 1, 1), (1, 2, 2), (2, 3, 3),
                                                               (4, 5, 5)}


def test_build_epoch_cycles_through_short_class_lists():
    entries = build_epoch(190, _fake_centroids(), 1.0, np.random.default_rng(1))
    assert len(entries) == 20  # n_r = 0, n_c = 10 for each of the 2 classes with centroids
    class7 = entries[entries[:, 0] == 4]
    assert len(class7) == 10 and (class7 == [4, 5, 5]).all()
    class0 = entries[10:] if entries[0, 0] == 4 else entries[:10]
    assert sorted(np.bincount(class0[:, 0], minlength=3).tolist()) == [3, 3, 4]


@pytest.fixture(scope="module")
def rare_class_root(tmp_path_factory):
    """38 BDD images of road/sky; class 16 (train) only in image 0, rider (12) only in 1."""
    root = tmp_path_factory.mktemp("rare")
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    for index in range(38):
        ids = np.zeros((64, 64), dtype=np.uint8)
        ids[:20] = 10
        if index == 0:
            ids[40:48, 40:48] = 16
        if index == 1:
            ids[36:42, 5:11] = 12
        write_bdd_sample(root, "train", f"img{index:03d}", image, ids)
    return root


def _class_pixel_frequencies(ds, epochs=(0, 1, 2)):
    counts = np.zeros(19)
    for epoch in epochs:
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            label = ds[index]["label"].numpy()
            counts += np.bincount(label[label < 19], minlength=19)
    return counts / counts.sum()


def test_class_uniform_epochs_are_flatter(rare_class_root, tmp_path):
    options = dict(root=rare_class_root, crop_size=32, scale_min=1.0, scale_max=1.0,
                   class_uniform_tile=32, cache_dir=tmp_path)
    uniform = build_dataset("bdd100k", "train", class_uniform_pct=0.5, **options).prepare()
    random = build_dataset("bdd100k", "train", class_uniform_pct=0.0, **options).prepare()
    assert sorted(uniform.centroids) == [0, 10, 12, 16]
    assert len(uniform) == 19 + 4 * 1 and len(random) == 38
    freq_uniform = _class_pixel_frequencies(uniform)
    freq_random = _class_pixel_frequencies(random)
    present = [0, 10, 12, 16]

    def entropy(freq):
        p = freq[present] / freq[present].sum()
        return -(p * np.log(p + 1e-12)).sum()

    assert entropy(freq_uniform) > entropy(freq_random) + 0.05
    assert freq_uniform[16] > 3 * freq_random[16] and freq_uniform[12] > 3 * freq_random[12]


def test_centroid_entries_crop_around_their_class(rare_class_root, tmp_path):
    ds = build_dataset("bdd100k", "train", root=rare_class_root, crop_size=16, scale_min=1.0,
                       scale_max=1.0, class_uniform_pct=1.0, class_uniform_tile=32,
                       cache_dir=tmp_path).prepare()
    # train patch rows/cols 40..47 -> (43, 43); rider rows 36..41, cols 5..10 -> (7, 38)
    rare = {(0, 43, 43): 16, (1, 7, 38): 12}
    checked = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for index, entry in enumerate(ds.entries.tolist()):
            if tuple(entry) in rare:
                assert (ds[index]["label"] == rare[tuple(entry)]).any()
                checked += 1
    assert checked == 3 * 2 * 2  # n_c = int(38 / 19) = 2 entries per class and epoch


def test_epoch_list_is_deterministic_and_constant_length(rare_class_root, tmp_path):
    options = dict(root=rare_class_root, crop_size=16, class_uniform_pct=0.5,
                   class_uniform_tile=32, cache_dir=tmp_path)
    rank0 = build_dataset("bdd100k", "train", **options).prepare()
    rank1 = build_dataset("bdd100k", "train", **options).prepare()
    lengths = set()
    for epoch in (3, 4):
        rank0.set_epoch(epoch)
        rank1.set_epoch(epoch)
        np.testing.assert_array_equal(rank0.entries, rank1.entries)
        lengths.add(len(rank0))
    assert len(lengths) == 1
    rank1.set_epoch(3)
    assert not np.array_equal(rank0.entries, rank1.entries)
    # DistributedSampler: same list on both ranks, disjoint shards covering it.
    shards = []
    for rank, ds in enumerate((rank0, rank1)):
        ds.set_epoch(5)
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=304)
        sampler.set_epoch(5)
        shards.append(list(sampler))
    assert len(shards[0]) == len(shards[1]) == (len(rank0) + 1) // 2  # padded to even
    assert set(shards[0] + shards[1]) == set(range(len(rank0)))
    assert rank0[shards[1][0]]["name"] == rank1[shards[1][0]]["name"]


def test_cache_reuse_invalidation_and_corruption(rare_class_root, tmp_path, monkeypatch):
    options = dict(root=rare_class_root, crop_size=16, class_uniform_pct=0.5,
                   class_uniform_tile=32, cache_dir=tmp_path, centroid_workers=2,
                   max_images=6)
    first = build_dataset("bdd100k", "train", **options).prepare()  # process pool path
    (cache_file,) = tmp_path.glob("bdd100k_train_tile32_*.json")
    assert json.loads(cache_file.read_text())["header"]["num_samples"] == 6

    monkeypatch.setattr(datasets.uniform, "parallel_map", pytest.fail)
    again = build_dataset("bdd100k", "train", **options).prepare()  # reuse: nothing recomputed
    assert again.centroids.keys() == first.centroids.keys()
    for cls in first.centroids:
        np.testing.assert_array_equal(again.centroids[cls], first.centroids[cls])
    monkeypatch.undo()

    cache_file.write_text('{"header": {"kind": "centroids"')  # truncated JSON
    with pytest.warns(RuntimeWarning, match="corrupt"):
        rebuilt = build_dataset("bdd100k", "train", **options).prepare()
    assert rebuilt.centroids.keys() == first.centroids.keys()
    assert json.loads(cache_file.read_text())["header"]["num_samples"] == 6

    # Rewriting a label (different size on disk) makes the cache stale.
    ids = np.zeros((64, 64), dtype=np.uint8)
    ids[:, 32:] = 13
    stale_root = tmp_path / "copy"
    shutil.copytree(rare_class_root, stale_root)
    write_bdd_sample(stale_root, "train", "img001", np.zeros((64, 64, 3), np.uint8), ids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        changed = build_dataset("bdd100k", "train", **{**options, "root": stale_root}).prepare()
    assert 13 in changed.centroids and 12 not in changed.centroids
    assert len(list(tmp_path.glob("bdd100k_train_tile32_*.json"))) == 2
