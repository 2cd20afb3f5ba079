import subprocess
import sys
from pathlib import Path

import pytest

import config


def test_defaults_are_repo_data_folders():
    built = config.build_config({})
    assert built.NUM_CLASSES == 19
    assert built.IGNORE_LABEL == 255
    assert built.RANDOM_SEED == 304
    assert built.DATASET.GTAV_DIR == config.REPO_ROOT / "data" / "gtav"
    assert built.DATASET.BDD_DIR == config.REPO_ROOT / "data" / "bdd100k"


@pytest.mark.parametrize("name,env_var", sorted(config.DATASET_ENV_VARS.items()))
def test_env_var_overrides_default(name, env_var, tmp_path, monkeypatch):
    monkeypatch.setenv(env_var, str(tmp_path / name))
    assert config.dataset_root(name) == tmp_path / name
    assert config.build_config().DATASET[config.DATASET_CFG_KEYS[name]] == tmp_path / name


def test_flag_beats_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDNET_GTAV_DIR", str(tmp_path / "from_env"))
    assert config.dataset_root("gtav", override=tmp_path / "from_flag") == tmp_path / "from_flag"


def test_data_dir_env_moves_every_default(tmp_path):
    built = config.build_config({"BLINDNET_DATA_DIR": str(tmp_path)})
    assert built.DATASET.CITYSCAPES_DIR == tmp_path / "cityscapes"
    assert built.DATASET.MAPILLARY_DIR == tmp_path / "mapillary"


def test_aliases_and_unknown_names():
    assert config.canonical_dataset_name("bdd-100k") == "bdd100k"
    assert config.canonical_dataset_name("GTAV") == "gtav"
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        config.dataset_root("kitti")


def test_import_has_no_side_effects(tmp_path):
    repo = Path(config.__file__).resolve().parent
    code = (f"import sys; sys.path.insert(0, {str(repo)!r}); import config; "
            "print(config.cfg.NUM_CLASSES)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "19"
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []
