"""Shared pytest set-up: the repository root is importable and runs stay on few threads."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _isolated_dataset_env(monkeypatch):
    """Tests never see the developer's real dataset roots."""
    for name in ("BLINDNET_GTAV_DIR", "BLINDNET_SYNTHIA_DIR", "BLINDNET_CITYSCAPES_DIR",
                 "BLINDNET_BDD_DIR", "BLINDNET_MAPILLARY_DIR", "BLINDNET_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
