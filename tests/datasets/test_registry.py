"""The registry: identity declared by each dataset class; flags, roots and fixtures from it."""

import pytest

import datasets
from datasets import DATASET_CLASSES, build_dataset, build_eval_dataset, check_options
from transforms.normalization import IMAGENET_MEAN, IMAGENET_STD, NO_MEAN, NO_STD

# The contract: flag and variable names users and scripts rely on.
EXPECTED = {
    "gtav": ("--gtav_dir", "BLINDNET_GTAV_DIR"),
    "synthia": ("--synthia_dir", "BLINDNET_SYNTHIA_DIR"),
    "cityscapes": ("--cityscapes_dir", "BLINDNET_CITYSCAPES_DIR"),
    "bdd100k": ("--bdd_dir", "BLINDNET_BDD_DIR"),
    "mapillary": ("--mapillary_dir", "BLINDNET_MAPILLARY_DIR"),
    **dict.fromkeys(("acdc", "acdc_fog", "acdc_night", "acdc_rain", "acdc_snow"),
                    ("--acdc_dir", "BLINDNET_ACDC_DIR")),
    "dark_zurich": ("--dark_zurich_dir", "BLINDNET_DARK_ZURICH_DIR"),
    "foggy_cityscapes": ("--foggy_cityscapes_dir", "BLINDNET_FOGGY_CITYSCAPES_DIR"),
}
# Default root folder under the data root: the name, except that the ACDC names share one.
ROOT_FOLDER = {name: "acdc" if name.startswith("acdc") else name for name in EXPECTED}


def test_each_class_declares_its_identity_and_root_flags_come_from_it():
    assert set(DATASET_CLASSES) == set(EXPECTED)
    for name, cls in DATASET_CLASSES.items():
        assert cls.name == name and (cls.root_flag, cls.env_var) == EXPECTED[name]
        assert issubclass(cls, datasets.SegmentationDataset)
        for alias in cls.aliases:
            assert datasets.canonical_dataset_name(alias) == name
    flags = datasets.root_flags()
    assert sorted(flags) == sorted({(flag, ROOT_FOLDER[name], env)
                                    for name, (flag, env) in EXPECTED.items()})
    assert datasets.root_flag_dest("--bdd_dir") == "bdd_dir"
    assert datasets.DATASET_ALIASES == {
        "bdd-100k": "bdd100k", "bdd": "bdd100k", "darkzurich": "dark_zurich",
        "dark-zurich": "dark_zurich", "foggycityscapes": "foggy_cityscapes",
        "foggy-cityscapes": "foggy_cityscapes"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_roots_resolve_flag_then_env_var_then_default(name, tmp_path):
    env_var = EXPECTED[name][1]
    environ = {"BLINDNET_DATA_DIR": str(tmp_path / "data")}
    default = tmp_path / "data" / ROOT_FOLDER[name]
    assert datasets.dataset_root(name, environ=environ) == default
    assert datasets.default_root(name, environ) == default
    environ[env_var] = str(tmp_path / "env")
    assert datasets.dataset_root(name, environ=environ) == tmp_path / "env"
    assert datasets.dataset_root(name, tmp_path / "flag", environ) == tmp_path / "flag"
    environ[env_var] = ""  # an empty variable counts as unset
    assert datasets.dataset_root(name, environ=environ) == default


def test_layout_errors_name_the_class_flag_and_variable(tmp_path):
    for name, (flag, env_var) in EXPECTED.items():
        with pytest.raises(datasets.DatasetLayoutError) as info:
            build_dataset(name, "val", root=tmp_path / "missing")
        assert flag in str(info.value) and f"${env_var}" in str(info.value)


def test_fixtures_are_generated_from_the_registry(generated_roots, data_env):
    assert set(generated_roots) == set(DATASET_CLASSES)
    assert set(data_env) == {cls.env_var for cls in DATASET_CLASSES.values()}
    for name, root in generated_roots.items():
        assert data_env[DATASET_CLASSES[name].env_var] == str(root) and root.is_dir()


def test_build_eval_dataset_plain_arguments(synthetic, cache_dir, monkeypatch):
    root, truth = synthetic["cityscapes"]
    name, dataset = build_eval_dataset("Cityscapes_jitter", root, eval_protocol="blindnet",
                                       cache_dir=cache_dir)
    assert name == "cityscapes" and isinstance(dataset, datasets.Cityscapes)
    assert not dataset.training and dataset.split == "val" and len(dataset) == 3
    assert dataset.normalization == (NO_MEAN, NO_STD)  # official BlindNet: [0, 1] Cityscapes
    item = dataset[0]
    assert set(item) == {"image", "label", "name"} and item["name"] in truth
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    bdd_root, _ = synthetic["bdd100k"]
    monkeypatch.setenv("BLINDNET_BDD_DIR", str(bdd_root))  # root None: the env var
    name, bdd = build_eval_dataset("bdd-100k", eval_protocol="blindnet", cache_dir=cache_dir)
    assert name == "bdd100k" and bdd.root == bdd_root
    assert bdd.normalization == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ValueError, match="gtav_mismatch must be one of"):
        build_eval_dataset("gtav", root, gtav_mismatch="keep")


def test_option_validation_names_options_or_flags():
    assert check_options({})["crop_size"] == 720  # --crop_size's default
    cases = [({"class_uniform_pct": 2}, "class_uniform_pct must be in \\[0, 1\\], got 2"),
             ({"scale_min": 2.0, "scale_max": 1.0}, "need 0 < scale_min <= scale_max"),
             ({"crop_size": 0}, "crop_size must be positive, got 0"),
             ({"class_uniform_tile": -1}, "class_uniform_tile must be positive, got -1"),
             ({"max_images": 0}, "max_images must be positive"),
             ({"pre_size": 0}, "pre_size must be positive"),
             ({"pre_size": -512}, "pre_size must be positive")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            check_options(options)
    with pytest.raises(ValueError, match="^--class_uniform_pct must be in"):
        check_options({"class_uniform_pct": -0.5}, flag_prefix="--")
    with pytest.raises(ValueError, match="need 0 < --scale_min <= --scale_max"):
        check_options({"scale_min": 0}, flag_prefix="--")
    with pytest.raises(ValueError, match="^--pre_size must be positive"):
        check_options({"pre_size": 0}, flag_prefix="--")
    assert check_options({"pre_size": 1024})["pre_size"] == 1024
