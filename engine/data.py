"""Training and validation data of a run, from plain values.

The training set is one dataset or several concatenated (multi-source training); its heavy
preparation (class-uniform centroids, empty-label scan; cached on disk) runs on rank 0
first, then on the other ranks, which read the cache. The sampler can start mid-epoch, so a
resumed run sees exactly the samples the interrupted one had not seen yet.
"""

from dataclasses import dataclass, field
from functools import partial

import torch
from torch.utils.data import DataLoader, DistributedSampler

import datasets
from engine.evaluation import build_eval_loader
from engine.protocols import inference_settings
from utils import dist as dist_utils
from utils.preemption import worker_init

# DataLoader workers ignore SIGTERM/SIGINT: the main process stops them after saving.
WORKER_INIT = partial(worker_init, datasets.worker_init_fn)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (padded, permuted per epoch from ``seed``) that can start mid-epoch.

    The permutation of an epoch depends only on (seed, epoch), so a resumed run that calls
    ``set_epoch(epoch, skip=k)`` sees exactly the samples the interrupted run had not seen yet.
    Works without a process group (``num_replicas=1``).
    """

    def __init__(self, dataset, num_replicas=1, rank=0, seed=0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self.skip = 0

    def set_epoch(self, epoch, skip=0):
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self):
        return self.num_samples - self.skip


def build_train_set(names, roots, options, cityscapes_split="train"):
    """The training dataset of ``names`` (several are concatenated), not yet prepared.

    Args:
        names: dataset names (``gtav_jitter`` ...); all two-view or all single-view.
        roots: canonical name -> root override (None: environment / default).
        options: ``build_dataset`` options (crop, scales, class-uniform, cache_dir ...).
        cityscapes_split: the split Cityscapes trains on (``train`` or ``trainval``).

    Returns ``(dataset, two_view)``. Raises ValueError for a mix of two-view and single-view
    names.
    """
    parsed = [datasets.parse_dataset_name(name) for name in names]
    two_view = {two for _, two in parsed}
    if len(two_view) != 1:
        raise ValueError(f"--dataset {' '.join(names)}: mix of two-view (*_jitter) and "
                         f"single-view datasets; use one kind")
    parts = [datasets.build_dataset(name, cityscapes_split if base == "cityscapes" else "train",
                                    root=roots.get(base), training=True, **options)
             for name, (base, _) in zip(names, parsed)]
    return (parts[0] if len(parts) == 1 else datasets.EpochConcatDataset(parts)), two_view.pop()


def prepare_rank0_first(dataset, is_main):
    """``dataset.prepare()`` on rank 0, then (after a barrier) on the others: rank 0 writes
    the cache, the other ranks read it instead of computing it again."""
    if is_main:
        dataset.prepare()
    dist_utils.barrier()
    if not is_main:
        dataset.prepare()


@dataclass
class TrainData:
    """What the training loop iterates over."""

    dataset: object             # has set_epoch(epoch)
    sampler: ResumableSampler
    loader: DataLoader
    two_view: bool              # items carry ``image_aug``


def build_train_data(names, roots, options, *, cityscapes_split, batch_size, num_workers,
                     seed, rank, world_size, pin_memory, logger):
    """Training set (prepared rank 0 first), sampler and loader.

    Raises ValueError when the set holds fewer samples than one batch per process.
    """
    dataset, two_view = build_train_set(names, roots, options, cityscapes_split)
    prepare_rank0_first(dataset, rank == 0)
    parts = dataset.datasets if isinstance(dataset, datasets.EpochConcatDataset) else [dataset]
    for name, part in zip(names, parts):
        logger.info(f"training set {name}: {len(part)} samples per epoch")
    sampler = ResumableSampler(dataset, world_size, rank, seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                        num_workers=num_workers, pin_memory=pin_memory,
                        worker_init_fn=WORKER_INIT,
                        # Own generator: loader start-up must not consume the global RNG,
                        # or a resumed run would draw different dropout masks.
                        generator=torch.Generator().manual_seed(seed + rank))
    if len(loader) == 0:
        raise ValueError(f"the training set has {len(dataset)} samples, fewer than one batch "
                         f"of --bs_mult {batch_size} per process")
    return TrainData(dataset, sampler, loader, two_view)


@dataclass
class ValSet:
    """One validation dataset: its loader, the normalisation its inputs went through and how
    its protocol runs the model (``engine.evaluation.inference_settings``: whole images,
    or Rein's sliding windows under ``rein``)."""

    loader: DataLoader
    mean: tuple
    std: tuple
    inference: dict = field(default_factory=dict)


def build_val_sets(names, roots, eval_options, *, batch_size, num_workers, max_images=None,
                   worker_init_fn=WORKER_INIT):
    """Canonical name -> :class:`ValSet` of each name's validation split."""
    val_sets = {}
    for name in names:
        base, _ = datasets.parse_dataset_name(name)
        base, dataset = datasets.build_eval_dataset(name, roots.get(base), **eval_options)
        loader = build_eval_loader(dataset, batch_size, num_workers, max_images, worker_init_fn)
        val_sets[base] = ValSet(loader, *dataset.normalization,
                                inference_settings(eval_options.get("eval_protocol")))
    return val_sets
