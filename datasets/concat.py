"""Concatenation of training sets (multi-source training) that keeps the epoch API."""

from torch.utils.data import ConcatDataset


class EpochConcatDataset(ConcatDataset):
    """A ``ConcatDataset`` that forwards :meth:`prepare` and :meth:`set_epoch` to its parts.

    Building it does no heavy work: the part sizes (which need each part's centroids) are
    computed on first use, i.e. after the caller ran :meth:`prepare` where it chose to.
    """

    def __init__(self, datasets):  # deliberately not ConcatDataset.__init__ (it calls len)
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("EpochConcatDataset needs at least one dataset")
        # Each source its own random streams (the first keeps the single-source ones).
        for position, part in enumerate(self.datasets):
            if hasattr(part, "set_stream"):
                part.set_stream(position)
        self._cumulative_sizes = None

    @property
    def cumulative_sizes(self):
        if self._cumulative_sizes is None:
            self._cumulative_sizes = self.cumsum(self.datasets)
        return self._cumulative_sizes

    def prepare(self):
        for part in self.datasets:
            part.prepare()
        return self

    def set_epoch(self, epoch):
        for part in self.datasets:
            part.set_epoch(epoch)
