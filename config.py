"""Global constants and dataset roots: the one ``cfg`` object.

Dataset roots resolve in this order (DECISIONS.md D13):

1. a CLI flag (``--gtav_dir`` ...), passed to :func:`dataset_root` as ``override``;
2. the environment variable named in :data:`DATASET_ENV_VARS` (read at call time);
3. the default ``<repo>/data/<name>``.

Importing this module only reads the environment; it creates no files, logs nothing and
starts no processes.
"""

import os
from pathlib import Path

from utils.attr_dict import AttrDict

REPO_ROOT = Path(__file__).resolve().parent

# Canonical dataset name -> environment variable overriding its root.
DATASET_ENV_VARS = {
    "gtav": "BLINDNET_GTAV_DIR",
    "synthia": "BLINDNET_SYNTHIA_DIR",
    "cityscapes": "BLINDNET_CITYSCAPES_DIR",
    "bdd100k": "BLINDNET_BDD_DIR",
    "mapillary": "BLINDNET_MAPILLARY_DIR",
}

# Canonical dataset name -> key under cfg.DATASET (the reference's spelling).
DATASET_CFG_KEYS = {
    "gtav": "GTAV_DIR",
    "synthia": "SYNTHIA_DIR",
    "cityscapes": "CITYSCAPES_DIR",
    "bdd100k": "BDD_DIR",
    "mapillary": "MAPILLARY_DIR",
}

DATASET_ALIASES = {"bdd-100k": "bdd100k", "bdd": "bdd100k"}

# --norm_semantics values (network/norm_semantics.py, docs/DECISIONS.md D28): "modern" is
# current PyTorch; "torch1.2" reproduces how PyTorch 1.2.0 ran the official code.
NORM_SEMANTICS = ("modern", "torch1.2")
DEFAULT_NORM_SEMANTICS = "modern"


def canonical_dataset_name(name):
    """Map a user-facing dataset name (``bdd-100k``, ``GTAV``) to its canonical key."""
    key = name.lower()
    key = DATASET_ALIASES.get(key, key)
    if key not in DATASET_ENV_VARS:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {sorted(DATASET_ENV_VARS)} "
            f"(aliases: {sorted(DATASET_ALIASES)})")
    return key


def build_config(environ=None):
    """Build the configuration from an environment mapping (``os.environ`` by default)."""
    environ = os.environ if environ is None else environ
    data_root = Path(environ.get("BLINDNET_DATA_DIR", REPO_ROOT / "data"))
    datasets = {"CV_SPLITS": 3}
    for name, env_var in DATASET_ENV_VARS.items():
        datasets[DATASET_CFG_KEYS[name]] = Path(environ.get(env_var) or data_root / name)
    return AttrDict(
        NUM_CLASSES=19,
        IGNORE_LABEL=255,
        RANDOM_SEED=304,
        # ImageNet statistics used to normalise both training views and evaluation inputs.
        MEAN=(0.485, 0.456, 0.406),
        STD=(0.229, 0.224, 0.225),
        DATA_ROOT=data_root,
        DATASET=datasets,
    )


cfg = build_config()


def dataset_root(name, override=None, environ=None):
    """Root folder of dataset ``name``: flag value > environment variable > default.

    The environment is read at call time, so a variable exported after import still counts.
    """
    key = canonical_dataset_name(name)
    if override:
        return Path(override)
    return Path(build_config(environ).DATASET[DATASET_CFG_KEYS[key]])
