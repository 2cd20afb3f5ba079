"""Bad input gives clear errors naming the path and showing the expected tree."""

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from datasets import DATASET_CLASSES, DatasetLayoutError, DatasetReadError, build_dataset
from datasets.styleshift.formats import write_gtav_sample
from tests.generated_data import generate_dataset

DATASETS = tuple(DATASET_CLASSES)
TREE_MARKERS = {"gtav": "labels/valid/<folder>", "synthia": "GT/LABELS/train",
                "cityscapes": "_gtFine_labelIds.png", "bdd100k": "images/{train,val}",
                "mapillary": "validation/labels",
                **dict.fromkeys(("acdc", "acdc_fog", "acdc_night", "acdc_rain", "acdc_snow"),
                                "gt/{fog,night,rain,snow}/{train,val}/<sequence>"),
                "dark_zurich": "gt/val/night/<sequence>",
                "foggy_cityscapes": "leftImg8bit_foggy/{train,val}/<city>"}
ROOT_FLAGS = {"gtav": "--gtav_dir", "synthia": "--synthia_dir",
              "cityscapes": "--cityscapes_dir", "bdd100k": "--bdd_dir",
              "mapillary": "--mapillary_dir",
              **dict.fromkeys(("acdc", "acdc_fog", "acdc_night", "acdc_rain", "acdc_snow"),
                              "--acdc_dir"),
              "dark_zurich": "--dark_zurich_dir", "foggy_cityscapes": "--foggy_cityscapes_dir"}


@pytest.fixture
def copy_of(synthetic, tmp_path):
    def make(name):
        root = tmp_path / name
        shutil.copytree(synthetic[name][0], root)
        return root
    return make


def _expect_layout_error(name, root, match, cache_dir, split="val"):
    with pytest.raises(DatasetLayoutError, match=match) as info:
        build_dataset(name, split, root=root, cache_dir=cache_dir)
    message = str(info.value)
    assert TREE_MARKERS[name] in message and ROOT_FLAGS[name] in message
    return message


@pytest.mark.parametrize("name", DATASETS)
def test_missing_root(name, tmp_path, cache_dir):
    message = _expect_layout_error(name, tmp_path / "nowhere", "does not exist", cache_dir)
    assert str(tmp_path / "nowhere") in message


def test_missing_root_from_env_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDNET_GTAV_DIR", str(tmp_path / "gone"))
    with pytest.raises(DatasetLayoutError, match="BLINDNET_GTAV_DIR") as info:
        build_dataset("gtav", "train")
    assert str(tmp_path / "gone") in str(info.value)


@pytest.mark.parametrize("name, split_dir", [
    ("gtav", "images/valid"), ("synthia", "RGB/val"),
    ("cityscapes", "leftImg8bit_trainvaltest/leftImg8bit/val"), ("bdd100k", "images/val"),
    ("mapillary", "validation/images")])
def test_missing_split_folder(name, split_dir, copy_of, cache_dir):
    root = copy_of(name)
    shutil.rmtree(root / split_dir)
    _expect_layout_error(name, root, "not found", cache_dir)


@pytest.mark.parametrize("name, image_dir", [
    ("gtav", "images/valid"), ("synthia", "RGB/val"),
    ("cityscapes", "leftImg8bit_trainvaltest/leftImg8bit/val"), ("bdd100k", "images/val"),
    ("mapillary", "validation/images")])
def test_empty_folder(name, image_dir, copy_of, cache_dir):
    """Sub-folders (GTAV folder, Cityscapes cities) exist but hold no image."""
    root = copy_of(name)
    for path in (root / image_dir).rglob("*"):
        if path.is_file():
            path.unlink()
    message = _expect_layout_error(name, root, "no \\*.*files in", cache_dir)
    assert str(root / image_dir) in message


@pytest.mark.parametrize("name", [n for n in DATASETS  # Dark Zurich has only val
                                  if "train" in DATASET_CLASSES[n].split_folders])
def test_image_without_label(name, copy_of, cache_dir):
    root = copy_of(name)
    train = build_dataset(name, "train", root=root, cache_dir=cache_dir)
    victim = train.samples[1]
    victim.label.unlink()
    message = _expect_layout_error(name, root, "without a label", cache_dir, split="train")
    assert str(victim.image) in message and str(victim.label) in message


@pytest.mark.parametrize("name, part", [("bdd100k", "label"), ("gtav", "image"),
                                        ("synthia", "label")])
def test_unreadable_file(name, part, copy_of, cache_dir):
    root = copy_of(name)
    ds = build_dataset(name, "val", root=root, cache_dir=cache_dir)
    path = getattr(ds.samples[0], part)
    path.write_bytes(path.read_bytes()[:40])  # truncated download
    with pytest.raises(DatasetReadError, match=str(path)):
        ds[0]


def test_gtav_subfolder_level_is_required(tmp_path, cache_dir):
    generate_dataset("gtav", tmp_path, num_images=1, splits=("val",))
    for folder in ("images", "labels"):
        (tmp_path / folder / "valid/folder/00001.png").rename(tmp_path / folder / "valid/1.png")
        (tmp_path / folder / "valid/folder").rmdir()
    _expect_layout_error("gtav", tmp_path, "no sub-folders", cache_dir)


def _gtav_with_mismatch(root):
    """Three 24x16 pairs; the image of 00002 is then replaced by a 20x12 one."""
    rng = np.random.default_rng(0)
    for stem in ("00001", "00002", "00003"):
        image = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
        write_gtav_sample(root, "train", stem, image, np.full((16, 24), 8, dtype=np.uint8))
    Image.new("RGB", (20, 12)).save(root / "images/train/folder/00002.png")


def test_gtav_size_mismatch_drop_and_resize(tmp_path, cache_dir):
    _gtav_with_mismatch(tmp_path)
    expected = r"1 image/label pair.*left out.*00002\.png \(image 20x12, label 24x16\)"
    with pytest.warns(RuntimeWarning, match=expected):
        dropped = build_dataset("gtav", "train", root=tmp_path, cache_dir=cache_dir)
    assert [s.name for s in dropped.samples] == ["00001", "00003"]
    with pytest.warns(RuntimeWarning, match="resized"):
        resized = build_dataset("gtav", "train", root=tmp_path, cache_dir=cache_dir,
                                gtav_mismatch="resize", training=False)
    assert len(resized) == 3
    item = resized[1]
    label, name = item["label"], item["name"]
    assert name == "00002" and label.shape == (12, 20) and (label == 8).all()
    # The size check is cached: a second build reads no image header.
    import datasets.gtav

    with pytest.MonkeyPatch.context() as patch, pytest.warns(RuntimeWarning):
        patch.setattr(datasets.gtav, "parallel_map", pytest.fail)
        build_dataset("gtav", "train", root=tmp_path, cache_dir=cache_dir)


def test_gtav_size_change_after_scan_is_an_error(tmp_path, cache_dir):
    write_gtav_sample(tmp_path, "val", "00001", np.zeros((8, 8, 3), np.uint8),
                      np.zeros((8, 8), np.uint8))
    ds = build_dataset("gtav", "val", root=tmp_path, cache_dir=cache_dir)
    Image.new("RGB", (9, 8)).save(ds.samples[0].image)
    with pytest.raises(DatasetReadError, match="is 8x8 but image .*00001.png is 9x8"):
        ds[0]


def test_gtav_without_mismatch_is_silent(synthetic, cache_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset("gtav", "val", root=synthetic["gtav"][0], cache_dir=cache_dir)


def test_gtav_all_pairs_mismatched_is_an_error_not_an_empty_split(tmp_path, cache_dir):
    _gtav_with_mismatch(tmp_path)
    for stem in ("00001", "00003"):
        Image.new("RGB", (20, 12)).save(tmp_path / f"images/train/folder/{stem}.png")
    with pytest.warns(RuntimeWarning), pytest.raises(
            DatasetLayoutError, match=r"(?s)every one of the 3 .*--gtav_mismatch resize"):
        build_dataset("gtav", "train", root=tmp_path, cache_dir=cache_dir)
    with pytest.warns(RuntimeWarning, match="resized"):
        kept = build_dataset("gtav", "train", root=tmp_path, cache_dir=cache_dir,
                             gtav_mismatch="resize")
    assert len(kept.samples) == 3
