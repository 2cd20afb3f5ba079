"""Repository-wide settings: the repository root, the data root and the norm-semantics modes.

Dataset identity (names, aliases, environment variables, root flags) is declared by each
dataset class and collected in ``datasets/registry.py``; the label space is
``utils/labels.py``; normalisation constants are ``transforms/normalization.py``.

Importing this module reads nothing and creates nothing: the data root is read from the
environment at call time (:func:`data_root`).
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
# Environment variable moving the default root of every dataset (<data root>/<name>).
DATA_ROOT_ENV = "BLINDNET_DATA_DIR"

# --norm_semantics values (network/norm_semantics.py, docs/DECISIONS.md D28): "modern" is
# current PyTorch; "torch1.2" reproduces how PyTorch 1.2.0 ran the official code.
NORM_SEMANTICS = ("modern", "torch1.2")
DEFAULT_NORM_SEMANTICS = "modern"


def data_root(environ=None):
    """``$BLINDNET_DATA_DIR`` (read now, from ``environ`` or ``os.environ``), else <repo>/data."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(DATA_ROOT_ENV, REPO_ROOT / "data"))
