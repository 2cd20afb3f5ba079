import subprocess
import sys
from pathlib import Path

import pytest

import config
import datasets
from datasets.base import DEFAULT_OPTIONS
from utils.labels import IGNORE_LABEL, NUM_CLASSES


def test_defaults_are_repo_data_folders():
    assert NUM_CLASSES == 19
    assert IGNORE_LABEL == 255
    assert DEFAULT_OPTIONS["seed"] == 304
    assert config.data_root({}) == config.REPO_ROOT / "data"
    assert datasets.dataset_root("gtav", environ={}) == config.REPO_ROOT / "data" / "gtav"
    assert datasets.dataset_root("bdd100k", environ={}) == config.REPO_ROOT / "data" / "bdd100k"


@pytest.mark.parametrize("name", sorted(datasets.DATASET_CLASSES))
def test_env_var_overrides_default(name, tmp_path, monkeypatch):
    env_var = datasets.DATASET_CLASSES[name].env_var
    monkeypatch.setenv(env_var, str(tmp_path / name))
    assert datasets.dataset_root(name) == tmp_path / name
    assert datasets.dataset_root(name, environ={env_var: str(tmp_path / "x")}) == tmp_path / "x"


def test_flag_beats_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDNET_GTAV_DIR", str(tmp_path / "from_env"))
    assert datasets.dataset_root("gtav", override=tmp_path / "from_flag") == tmp_path / "from_flag"


def test_data_dir_env_moves_every_default(tmp_path):
    environ = {"BLINDNET_DATA_DIR": str(tmp_path)}
    assert config.data_root(environ) == tmp_path
    assert datasets.dataset_root("cityscapes", environ=environ) == tmp_path / "cityscapes"
    assert datasets.dataset_root("mapillary", environ=environ) == tmp_path / "mapillary"


def test_aliases_and_unknown_names():
    assert datasets.canonical_dataset_name("bdd-100k") == "bdd100k"
    assert datasets.canonical_dataset_name("GTAV") == "gtav"
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        datasets.dataset_root("kitti")


def test_import_has_no_side_effects(tmp_path):
    repo = Path(config.__file__).resolve().parent
    code = (f"import sys; sys.path.insert(0, {str(repo)!r}); import config; "
            "print(config.DEFAULT_NORM_SEMANTICS)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "modern"
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []
