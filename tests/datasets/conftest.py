"""Generated datasets in every registered on-disk format, shared by the dataset tests."""

import pytest

from datasets import DATASET_CLASSES
from tests.generated_data import generate_dataset

DATASETS = tuple(DATASET_CLASSES)  # the registry decides which datasets get fixtures


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """{name: (root, {stem: train ids})}: 3 train + 3 val images of 48x64 per registered
    dataset."""
    base = tmp_path_factory.mktemp("synthetic")
    return {name: (base / name, generate_dataset(name, base / name, num_images=3,
                                                 size=(48, 64), seed=seed))
            for seed, name in enumerate(DATASETS)}


@pytest.fixture
def cache_dir(tmp_path):
    """A fresh class-uniform cache directory (never the repository's logs/)."""
    return tmp_path / "cache"
