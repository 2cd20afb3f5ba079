"""Every dataset on generated data: pairing, exact train ids, registry, items, collate."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import datasets
from datasets import DATASET_NAMES, ImageFolder, build_dataset, parse_dataset_name
from datasets.styleshift.formats import write_bdd_sample, write_cityscapes_sample
from transforms.normalization import normalize_images

DATASETS = ("gtav", "synthia", "cityscapes", "bdd100k", "mapillary")  # the five of the paper


@pytest.mark.parametrize("name", DATASETS)
def test_eval_items_pair_and_decode_exactly(name, synthetic, cache_dir):
    root, truth = synthetic[name]
    # clean protocol keeps Mapillary pixels checkable: resize is a pure upscale by 32.
    ds = build_dataset(name, "trainval", root=root, training=False, cache_dir=cache_dir,
                       eval_protocol="clean")
    assert len(ds) == 6 and sorted(s.name for s in ds.samples) == sorted(truth)
    for index in range(len(ds)):
        item = ds[index]
        assert set(item) == {"image", "label", "name"}  # one dict shape in every mode
        image, label, stem = item["image"], item["label"], item["name"]
        assert image.dtype == label.dtype == torch.uint8  # the item contract
        assert image.shape[1:] == label.shape
        expected = truth[stem]
        if name == "mapillary":
            # height 48 -> 1536 (x32, nearest), centre 1536 columns of 64*32 = 2048.
            expected = np.kron(expected, np.ones((32, 32), dtype=np.uint8))[:, 256:1792]
        np.testing.assert_array_equal(label.numpy(), expected)
        sample = ds.samples[index]
        assert sample.image.exists() and sample.label.exists() and sample.name == stem


@pytest.mark.parametrize("name", DATASETS)
def test_splits_are_disjoint(name, synthetic, cache_dir):
    root, truth = synthetic[name]
    train = {s.name for s in build_dataset(name, "train", root=root, cache_dir=cache_dir).samples}
    val = {s.name for s in build_dataset(name, "val", root=root, cache_dir=cache_dir).samples}
    assert len(train) == len(val) == 3 and not train & val and train | val == set(truth)


def test_registry_names_aliases_and_defaults(synthetic, cache_dir, monkeypatch):
    adverse = ("acdc", "acdc_fog", "acdc_night", "acdc_rain", "acdc_snow", "dark_zurich",
               "foggy_cityscapes")
    names = (*DATASETS, *adverse)
    assert set(DATASET_NAMES) == {*names, *(f"{n}_jitter" for n in names)}
    assert parse_dataset_name("gtav_jitter") == ("gtav", True)
    assert parse_dataset_name("bdd-100k") == ("bdd100k", False)
    root, _ = synthetic["bdd100k"]
    monkeypatch.setenv("BLINDNET_BDD_DIR", str(root))  # root=None -> env var
    alias = build_dataset("bdd-100k", "val", cache_dir=cache_dir)
    assert isinstance(alias, datasets.BDD100K) and not alias.training and not alias.two_view
    assert build_dataset("bdd100k", "train", cache_dir=cache_dir).training
    jitter = build_dataset("bdd-100k_jitter", "val", cache_dir=cache_dir)
    assert jitter.training and jitter.two_view
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        build_dataset("kitti", "train")
    with pytest.raises(ValueError, match="split must be one of"):
        build_dataset("bdd100k", "test", root=root)
    with pytest.raises(ValueError, match="unknown dataset option"):
        build_dataset("bdd100k", "val", root=root, crop=5)
    with pytest.raises(ValueError, match="eval_protocol"):
        build_dataset("bdd100k", "val", root=root, eval_protocol="fast")


@pytest.mark.parametrize("name", DATASETS)
def test_two_view_training_items_collate(name, synthetic, cache_dir):
    root, truth = synthetic[name]
    ds = build_dataset(f"{name}_jitter", "train", root=root, crop_size=32, cache_dir=cache_dir,
                       color_aug=0.5, gblur=True)
    batch = next(iter(DataLoader(ds, batch_size=2, num_workers=0)))
    assert batch["image"].shape == batch["image_aug"].shape == (2, 3, 32, 32)
    assert batch["label"].shape == (2, 32, 32) and batch["label"].dtype == torch.uint8
    assert batch["image"].dtype == batch["image_aug"].dtype == torch.uint8
    assert len(batch["name"]) == 2 and set(batch["name"]) <= set(truth)
    assert not torch.equal(batch["image"], batch["image_aug"])
    allowed = set(np.unique(np.concatenate([t.ravel() for t in truth.values()]))) | {255}
    assert set(batch["label"].unique().tolist()) <= allowed


def test_single_view_training_item_and_max_images(synthetic, cache_dir):
    root, _ = synthetic["gtav"]
    ds = build_dataset("gtav", "train", root=root, crop_size=24, max_images=2,
                       cache_dir=cache_dir)
    item = ds[1]
    assert set(item) == {"image", "label", "name"} and item["image"].shape == (3, 24, 24)
    assert len(ds) == 2 and [s.name for s in ds.samples] == ["00001", "00002"]


def test_bdd_label_name_variants(tmp_path, cache_dir):
    """D14: <stem>.png, <stem>_train_id.png and labels/sem_seg/masks/<split>/ are found."""
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    ids = np.full((8, 8), 13, dtype=np.uint8)
    write_bdd_sample(tmp_path / "old", "val", "a", image, ids)
    (tmp_path / "old/labels/val/a.png").rename(tmp_path / "old/labels/val/a_train_id.png")
    write_bdd_sample(tmp_path / "new", "val", "b", image, ids)
    (tmp_path / "new/labels/sem_seg/masks").mkdir(parents=True)
    (tmp_path / "new/labels/val").rename(tmp_path / "new/labels/sem_seg/masks/val")
    for root, stem in ((tmp_path / "old", "a"), (tmp_path / "new", "b")):
        ds = build_dataset("bdd100k", "val", root=root, cache_dir=cache_dir)
        label, name = ds[0]["label"], ds[0]["name"]
        assert name == stem and (label == 13).all()


def test_cityscapes_flat_layout(tmp_path, cache_dir):
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    write_cityscapes_sample(tmp_path, "val", "ulm", "ulm_000000_000019", image,
                            np.full((8, 8), 11, dtype=np.uint8))
    (tmp_path / "leftImg8bit_trainvaltest/leftImg8bit").rename(tmp_path / "leftImg8bit")
    (tmp_path / "gtFine_trainvaltest/gtFine").rename(tmp_path / "gtFine")
    item = build_dataset("cityscapes", "val", root=tmp_path, cache_dir=cache_dir)[0]
    label, name = item["label"], item["name"]
    assert name == "ulm_000000_000019" and (label == 11).all()


def test_image_folder(tmp_path):
    for stem, suffix in (("b", ".png"), ("a", ".jpg"), ("c", ".webp")):
        Image.new("RGB", (6, 4), (255, 0, 0)).save(tmp_path / f"{stem}{suffix}")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = ImageFolder(tmp_path)
    assert len(folder) == 3 and [folder[i]["name"] for i in range(3)] == ["a", "b", "c"]
    assert set(folder[1]) == {"image", "name"}
    image = folder[1]["image"]
    assert image.shape == (3, 4, 6)
    assert image.dtype == torch.uint8 and image[:, 0, 0].tolist() == [255, 0, 0]
    normalised = normalize_images(image, *folder.normalization)
    assert normalised[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-4)
    raw = ImageFolder(str(tmp_path / "*.png"), normalize=False)
    assert raw.normalization == ((0.0,) * 3, (1.0,) * 3)  # [0, 1] RGB
    with pytest.raises(FileNotFoundError, match="no images found"):
        ImageFolder(tmp_path / "*.tif")
