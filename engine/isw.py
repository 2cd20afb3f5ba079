"""When the ISW mask is computed, and on what (ROBUSTNET_METHODS.md §3.4, §4).

Once per run, at the end of epoch ``--cov_stat_epoch``: ``--trials`` statistics passes of the
bare model (eval mode, no grad) over ``ISW_STAT_IMAGES`` photometric pairs of
``--covstat_val_dataset`` each, all-reduced over the ranks, clustered and intersected
(:func:`loss.isw_mask.compute_isw_masks`). The whitening loss is on from the next epoch.
The mask is the whitening term's state: it lives in ``TrainState.loss_state`` under the key
the term declares (``isw_mask``), so checkpoints carry it and ``--resume`` restores it.
"""

import torch

import datasets
from datasets.covstat import ISW_STAT_IMAGES, photometric_pair_loader
from loss.isw_mask import compute_isw_masks, mask_summary
from loss.whitening import WT
from utils import dist as dist_utils


class ISWMaskSchedule:
    """Computes the ISW mask when it is due.

    Args:
        samples: the statistics images (a dataset's ``samples``: objects with ``image``).
        clusters, trials, cov_stat_epoch: ``--clusters``, ``--trials``, ``--cov_stat_epoch``.
        seed: ``--seed`` (the trials' image draws and jitters derive from it).
        device: where the passes run.
        num_images: images per pass (500, as RobustNet).
        num_workers: loader workers of the passes.
    """

    def __init__(self, samples, *, clusters, trials, cov_stat_epoch, seed, device,
                 num_images=ISW_STAT_IMAGES, num_workers=0):
        if clusters < 2 or trials < 1 or cov_stat_epoch < 0:
            raise ValueError(f"ISW needs --clusters >= 2, --trials >= 1 and --cov_stat_epoch "
                             f">= 0, got {clusters}, {trials}, {cov_stat_epoch}")
        self.samples, self.clusters, self.trials = samples, clusters, trials
        self.cov_stat_epoch, self.seed, self.device = cov_stat_epoch, seed, device
        self.num_images, self.num_workers = num_images, num_workers

    @classmethod
    def for_dataset(cls, dataset, roots, *, seed, device, num_workers=0, **settings):
        """The schedule on the training split of ``dataset`` (``--covstat_val_dataset``);
        ``roots``: canonical name -> root override; ``settings``: clusters, trials,
        cov_stat_epoch, num_images (``cli.isw_settings``)."""
        base, _ = datasets.parse_dataset_name(dataset)
        images = datasets.build_dataset(base, "train", root=roots.get(base), training=False)
        return cls(images.samples, seed=seed, device=device, num_workers=num_workers,
                   **settings)

    def start(self, state, whitening_loss, logger):
        """Before training: give the criterion's ISW loss the state's mask (a resumed run's),
        or compute a mask a resumed run past ``cov_stat_epoch`` lacks (DECISIONS.md D33)."""
        self.whitening_loss, self.logger = whitening_loss, logger
        masks = state.loss_state.get(WT.state)
        if masks is None and state.epoch > self.cov_stat_epoch:
            logger.warning(f"resuming at epoch {state.epoch}, after --cov_stat_epoch "
                           f"{self.cov_stat_epoch}, without an ISW mask in the checkpoint: "
                           f"computing it now")
            masks = state.loss_state[WT.state] = self.compute(state.model, logger)
        elif masks is not None:
            logger.info(mask_summary(masks) + " (from the checkpoint)")
        whitening_loss.set_masks(masks)
        return self

    def __call__(self, state):
        """``fit``'s epoch-end hook: compute the mask once, when due, and switch the loss on."""
        if self.due(state.epoch, state.loss_state.get(WT.state)):
            state.loss_state[WT.state] = self.compute(state.model, self.logger)
            self.whitening_loss.set_masks(state.loss_state[WT.state])

    def due(self, finished_epoch, masks):
        """Whether the mask must be computed now that ``finished_epoch`` has ended."""
        return masks is None and finished_epoch >= self.cov_stat_epoch

    def compute(self, model, logger=None):
        """The masks (same on every rank) from the bare ``model`` (its ``encode``)."""
        rank, world_size = dist_utils.get_rank(), dist_utils.get_world_size()

        def pairs_of_trial(trial):
            return photometric_pair_loader(self.samples, self.seed, trial, self.num_images,
                                           rank, world_size, self.num_workers)

        was_training = model.training
        model.eval()
        try:
            masks = compute_isw_masks(model.encode, pairs_of_trial, self.trials, self.clusters,
                                      self.device)
        finally:
            model.train(was_training)
        check_masks_identical(masks, self.device)
        if logger is not None:
            agreed = f"; identical on all {world_size} ranks" if world_size > 1 else ""
            logger.info(f"{mask_summary(masks)} ({self.trials} trials x "
                        f"{min(self.num_images, len(self.samples))} images, k={self.clusters}"
                        f"{agreed})")
        return masks


def check_masks_identical(masks, device):
    """Raise RuntimeError on every rank unless all ranks hold the same masks (integer
    checksums all-reduced on ``device``); returns True. No-op in one process."""
    if not dist_utils.is_distributed():
        return True
    sums = []
    for mask in masks:
        weights = torch.arange(1, mask.numel() + 1, dtype=torch.float64).view(mask.shape)
        sums += [mask.double().sum(), (mask.double() * weights).sum()]
    checksum = torch.stack(sums).to(device)
    mean = dist_utils.all_reduce_mean(checksum.clone())   # exact: integers below 2**53
    differs = torch.tensor([float(not torch.equal(mean, checksum))], device=device)
    if dist_utils.all_reduce_sum(differs).item() > 0:
        raise RuntimeError("the ISW masks differ across ranks (their statistics were "
                           "all-reduced, so this is a bug)")
    return True
