"""ACDC, Dark Zurich and Foggy Cityscapes decode their generated fixtures exactly."""

import shutil

import numpy as np
import pytest
import torch

from datasets.acdc import ACDC, ACDC_CLASSES, CONDITIONS
from datasets.base import DatasetLayoutError
from datasets.dark_zurich import DarkZurich
from datasets.foggy_cityscapes import FoggyCityscapes
from tests.generated_adverse import fog_fixture_image, generate_adverse_dataset


@pytest.fixture(scope="module")
def adverse(tmp_path_factory):
    """{name: (root, truth)}: 2 images per split (and per ACDC condition), 48x64."""
    base = tmp_path_factory.mktemp("adverse")
    return {name: (base / name, generate_adverse_dataset(name, base / name, seed=seed))
            for seed, name in enumerate(("acdc", "dark_zurich", "foggy_cityscapes"))}


def _copy(adverse, name, tmp_path):
    root = tmp_path / name
    shutil.copytree(adverse[name][0], root)
    return root


def _assert_decodes_exactly(dataset, truth, expected_count):
    assert len(dataset) == expected_count
    for sample in dataset.samples:
        np.testing.assert_array_equal(dataset.load_label(sample), truth[sample.name])
    item = dataset[0]
    assert item["image"].shape == (3, 48, 64) and item["label"].dtype == torch.uint8
    np.testing.assert_array_equal(item["label"].numpy(), truth[item["name"]])
    assert set(np.unique(item["label"].numpy())) <= set(range(19)) | {255}


@pytest.mark.parametrize("split", ["train", "val"])
def test_acdc_all_conditions(adverse, split):
    root, truth = adverse["acdc"]
    dataset = ACDC(root, split, training=False)
    _assert_decodes_exactly(dataset, truth, 2 * len(CONDITIONS))
    assert {s.image.parts[-4] for s in dataset.samples} == set(CONDITIONS)
    assert all(s.label.name.endswith("_gt_labelTrainIds.png") for s in dataset.samples)
    assert not any("_ref" in str(s.image) for s in dataset.samples)


@pytest.mark.parametrize("cls", ACDC_CLASSES[1:])
def test_acdc_single_condition(adverse, cls):
    root, truth = adverse["acdc"]
    dataset = cls(root, "val", training=False)
    _assert_decodes_exactly(dataset, truth, 2)
    assert cls.name == f"acdc_{cls.conditions[0]}"
    assert {s.image.parts[-4] for s in dataset.samples} == set(cls.conditions)


def test_acdc_condition_needs_only_its_own_folders(adverse, tmp_path):
    root = _copy(adverse, "acdc", tmp_path)
    for condition in ("fog", "rain", "snow"):
        shutil.rmtree(root / "rgb_anon" / condition)
        shutil.rmtree(root / "gt" / condition)
    assert len(ACDC_CLASSES[2](root, "val", training=False)) == 2  # acdc_night
    with pytest.raises(DatasetLayoutError, match="rgb_anon/fog/val"):
        ACDC(root, "val", training=False)


def test_dark_zurich(adverse):
    root, truth = adverse["dark_zurich"]
    dataset = DarkZurich(root, "val", training=False)
    _assert_decodes_exactly(dataset, truth, 2)
    assert not any("val_ref" in str(s.image) for s in dataset.samples)
    with pytest.raises(ValueError, match="split must be one of"):
        DarkZurich(root, "train", training=False)


@pytest.mark.parametrize("beta", [0.005, 0.01, 0.02])
def test_foggy_cityscapes_reads_the_chosen_beta(adverse, beta):
    root, truth = adverse["foggy_cityscapes"]
    dataset = FoggyCityscapes(root, "val", training=False, foggy_beta=beta)
    _assert_decodes_exactly(dataset, truth, 2)
    assert all(s.image.name.endswith(f"_leftImg8bit_foggy_beta_{beta:g}.png")
               for s in dataset.samples)
    assert all(s.name.endswith("_000019") for s in dataset.samples)


def test_foggy_cityscapes_default_beta_and_bad_beta(adverse):
    root, _ = adverse["foggy_cityscapes"]
    assert FoggyCityscapes(root, "val", training=False).beta == "0.02"
    with pytest.raises(ValueError, match="--foggy_beta must be one of 0.005, 0.01, 0.02"):
        FoggyCityscapes(root, "val", training=False, foggy_beta=0.03)


def test_foggy_beta_images_differ():
    image = np.full((4, 4, 3), 40, dtype=np.uint8)
    fogged = [fog_fixture_image(image, beta)[0, 0, 0] for beta in (0.005, 0.01, 0.02)]
    assert fogged[0] < fogged[1] < fogged[2]


@pytest.mark.parametrize("cls, name", [(ACDC, "acdc"), (DarkZurich, "dark_zurich"),
                                       (FoggyCityscapes, "foggy_cityscapes")])
def test_missing_root_prints_the_expected_tree(tmp_path, cls, name):
    with pytest.raises(DatasetLayoutError) as error:
        cls(tmp_path / "nowhere", "val", training=False)
    message = str(error.value)
    assert "does not exist" in message and cls.layout in message


@pytest.mark.parametrize("name, remove, problem", [
    ("acdc", "gt/snow", "label folder not found"),
    ("dark_zurich", "gt", "label folder not found"),
    ("foggy_cityscapes", "gtFine", "label split folder not found"),
    ("foggy_cityscapes", "leftImg8bit_foggy/val", "image split folder not found"),
])
def test_half_extracted_root_prints_the_expected_tree(adverse, tmp_path, name, remove, problem):
    root = _copy(adverse, name, tmp_path)
    shutil.rmtree(root / remove)
    cls = {"acdc": ACDC, "dark_zurich": DarkZurich, "foggy_cityscapes": FoggyCityscapes}[name]
    with pytest.raises(DatasetLayoutError) as error:
        cls(root, "val", training=False)
    assert problem in str(error.value) and cls.layout in str(error.value)


def test_missing_label_file_is_named(adverse, tmp_path):
    root = _copy(adverse, "dark_zurich", tmp_path)
    label = sorted((root / "gt").rglob("*_gt_labelTrainIds.png"))[0]
    label.unlink()
    with pytest.raises(DatasetLayoutError, match="1 image\\(s\\) without a label") as error:
        DarkZurich(root, "val", training=False)
    assert label.name in str(error.value)


def test_train_ids_outside_the_classes_decode_to_ignore(adverse, tmp_path):
    from PIL import Image

    root = _copy(adverse, "acdc", tmp_path)
    dataset = ACDC_CLASSES[1](root, "val", training=False)
    sample = dataset.samples[0]
    raw = np.array(Image.open(sample.label))
    raw[0, :4] = [19, 33, 200, 254]
    Image.fromarray(raw).save(sample.label)
    decoded = dataset.load_label(sample)
    assert (decoded[0, :4] == 255).all()
