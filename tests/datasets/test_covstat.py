"""ISW statistics images: full-size photometric pairs, the same draw on every rank."""

import pytest
import torch

import datasets
from datasets.covstat import PhotometricPairs, photometric_pair_loader, trial_indices


def test_trial_draw_is_shared_and_split_over_ranks():
    full = trial_indices(20, 7, seed=304, trial=3)
    assert len(full) == 7 and len(set(full)) == 7
    shares = [trial_indices(20, 7, 304, 3, rank, 3) for rank in range(3)]
    assert sorted(sum(shares, [])) == sorted(full)
    assert trial_indices(20, 7, 304, 4) != full          # a new trial draws new images
    assert sorted(trial_indices(5, 500, 304, 0)) == list(range(5))
    with pytest.raises(ValueError, match="one image per process"):
        trial_indices(1, 500, 304, 0, rank=0, world_size=2)
    with pytest.raises(ValueError, match="no images"):
        trial_indices(0, 500, 304, 0)


def test_pairs_are_full_size_deterministic_and_photometric(synthetic):
    root, _ = synthetic["gtav"]
    dataset = datasets.build_dataset("gtav", "train", root=root, training=False)
    pairs = PhotometricPairs(dataset.samples, [0, 2], seed=304, trial=1)
    photometric, original = pairs[1]
    assert photometric.shape == original.shape == (3, 48, 64)
    assert not torch.equal(photometric, original)
    again = PhotometricPairs(dataset.samples, [2], seed=304, trial=1)[0]
    assert torch.equal(again[0], photometric)            # independent of position and order
    other = PhotometricPairs(dataset.samples, [2], seed=304, trial=2)[0]
    assert not torch.equal(other[0], photometric)        # new trial, new jitter
    assert torch.equal(other[1], original)
    batches = list(photometric_pair_loader(dataset.samples, 304, 0, num_images=2))
    assert len(batches) == 2 and batches[0][0].shape == (1, 3, 48, 64)


def test_pair_jitter_leaves_the_accelerator_generators_alone(synthetic, monkeypatch):
    root, _ = synthetic["gtav"]
    dataset = datasets.build_dataset("gtav", "train", root=root, training=False)
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    photometric, _ = PhotometricPairs(dataset.samples, [1], seed=304, trial=0)[0]
    assert calls == []
    monkeypatch.undo()
    assert torch.equal(PhotometricPairs(dataset.samples, [1], seed=304, trial=0)[0][0],
                       photometric)
