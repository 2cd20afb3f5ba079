"""The dataset registry: every dataset's identity comes from its class.

Each dataset class declares ``name`` (canonical), ``aliases``, ``env_var`` (root override)
and ``root_flag`` (the CLI flag of its root); the default root is ``<data root>/<name>``
(``config.data_root``). CLI flags (:func:`root_flags`), root resolution
(:func:`dataset_root`) and the tests' fixtures are all generated from :data:`DATASET_CLASSES`.

Roots resolve in this order (DECISIONS.md D13): the ``override`` (a CLI flag value) > the
environment variable (read at call time; empty counts as unset) > the default.
"""

import os
from pathlib import Path

from config import data_root
from datasets.bdd100k import BDD100K
from datasets.cityscapes import Cityscapes
from datasets.gtav import GTAV
from datasets.mapillary import Mapillary
from datasets.synthia import Synthia

DATASET_CLASSES = {cls.name: cls for cls in (GTAV, Synthia, Cityscapes, BDD100K, Mapillary)}
DATASET_ALIASES = {alias: cls.name for cls in DATASET_CLASSES.values() for alias in cls.aliases}
TWO_VIEW_SUFFIX = "_jitter"
DATASET_NAMES = tuple(DATASET_CLASSES) + tuple(f"{n}{TWO_VIEW_SUFFIX}" for n in DATASET_CLASSES)


def canonical_dataset_name(name):
    """Map a user-facing dataset name (``bdd-100k``, ``GTAV``) to its canonical key."""
    key = name.lower()
    key = DATASET_ALIASES.get(key, key)
    if key not in DATASET_CLASSES:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {sorted(DATASET_CLASSES)} "
            f"(aliases: {sorted(DATASET_ALIASES)})")
    return key


def parse_dataset_name(name):
    """``"bdd-100k_jitter"`` -> ``("bdd100k", True)``; a clear error for unknown names.

    The one place that strips the two-view ``_jitter`` suffix.
    """
    two_view = name.lower().endswith(TWO_VIEW_SUFFIX)
    base = name[:-len(TWO_VIEW_SUFFIX)] if two_view else name
    try:
        return canonical_dataset_name(base), two_view
    except ValueError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASET_NAMES} "
                         "(alias: bdd-100k)") from None


def default_root(name, environ=None):
    """``<data root>/<canonical name>`` (``$BLINDNET_DATA_DIR`` read at call time)."""
    return data_root(environ) / canonical_dataset_name(name)


def dataset_root(name, override=None, environ=None):
    """Root folder of dataset ``name``: ``override`` > its environment variable > default.

    The environment (``environ`` or ``os.environ``) is read at call time, so a variable
    exported after import still counts.
    """
    cls = DATASET_CLASSES[canonical_dataset_name(name)]
    if override:
        return Path(override)
    environ = os.environ if environ is None else environ
    return Path(environ.get(cls.env_var) or default_root(cls.name, environ))


def root_flags():
    """``[(flag, canonical name, env var), ...]`` for the CLI's ``--<name>_dir`` options."""
    return [(cls.root_flag, cls.name, cls.env_var) for cls in DATASET_CLASSES.values()]


def root_flag_dest(flag):
    """argparse destination of a root flag: ``"--bdd_dir"`` -> ``"bdd_dir"``."""
    return flag.lstrip("-").replace("-", "_")
