"""Images of the ISW covariance-statistics pass (ROBUSTNET_METHODS.md §3.4).

Each item is a pair of views of one *full-size* source training image (no crop, no flip):

* ``photometric``: ColorJitter(0.8, 0.8, 0.8, 0.3) always, then Gaussian blur always
  (the jittered view of two-view training, :func:`transforms.jittered_view_transform`);
* ``original``: the image as it is;

both uint8 ``(3, H, W)`` tensors (the item contract, ``transforms/normalization.py``; the
statistics pass normalises them on the device). A trial draws ``num_images`` images at
random (RobustNet: a shuffled loader cut at 500). Unlike RobustNet, whose ranks each shuffle
on their own, the draw and every jitter are functions of (seed, trial, index): all ranks
agree on the trial's images and split them (rank r takes every W-th), so one statistics
pass covers ``num_images`` images in total, whatever the number of processes.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datasets.readers import read_rgb_image
from transforms import jittered_view_transform
from transforms.normalization import to_item_image

ISW_STAT_IMAGES = 500      # images per statistics pass (RobustNet's loop stops at index 499)
_TRIAL_TAG = 0x15A7        # separates these seeds from the training items' seeds


def trial_indices(num_samples, num_images, seed, trial, rank=0, world_size=1):
    """This rank's share of the sample indices of statistics pass ``trial``."""
    if num_samples == 0:
        raise ValueError("--covstat_val_dataset has no images")
    rng = np.random.default_rng([seed, trial, _TRIAL_TAG])
    chosen = rng.permutation(num_samples)[:min(num_images, num_samples)]
    if len(chosen) < world_size:
        raise ValueError(f"the ISW statistics pass needs at least one image per process: "
                         f"{len(chosen)} image(s) for {world_size} processes")
    return chosen[rank::world_size].tolist()


class PhotometricPairs(Dataset):
    """``(photometric, original)`` views of ``samples[i]`` for ``i`` in ``indices``.

    Args:
        samples: objects with an ``image`` path (a dataset's ``samples``).
        indices: which samples, in order.
        seed, trial: the jitter of item ``k`` depends only on (seed, trial, sample index).
    """

    def __init__(self, samples, indices, seed, trial):
        self.samples, self.indices = samples, list(indices)
        self.seed, self.trial = int(seed), int(trial)
        self.photometric = jittered_view_transform()

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        index = self.indices[k]
        image = read_rgb_image(self.samples[index].image)
        sequence = np.random.SeedSequence([self.seed, self.trial, index, _TRIAL_TAG])
        with torch.random.fork_rng(devices=[]):
            # CPU generator only: torch.manual_seed would also reseed (and not restore) CUDA's.
            torch.default_generator.manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0]))
            photometric = self.photometric(image)
        return photometric, to_item_image(image)


def photometric_pair_loader(samples, seed, trial, num_images=ISW_STAT_IMAGES, rank=0,
                            world_size=1, num_workers=0):
    """Batch-1 loader of this rank's :class:`PhotometricPairs` of pass ``trial``.

    Batches are ``((1, 3, H, W), (1, 3, H, W))``: images keep their own size (batch 1, as
    RobustNet).
    """
    indices = trial_indices(len(samples), num_images, seed, trial, rank, world_size)
    # Own generator: the pass must not consume the global RNG (training's dropout draws).
    return DataLoader(PhotometricPairs(samples, indices, seed, trial), batch_size=1,
                      shuffle=False, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(seed))
