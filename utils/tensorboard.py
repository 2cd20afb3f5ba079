"""TensorBoard logging of a training run (rank 0 only; other ranks get a no-op writer)."""

import math
from pathlib import Path

import numpy as np

from utils import viz
from utils.labels import colorize
from utils.logging import printable

IMAGES_PER_DATASET = 3
TRAIN_SCALAR_EVERY = 10  # iterations between training scalars (event files stay small)


class TrainWriter:
    """Scalars (every loss term, lr, throughput), validation metrics and colourized predictions.

    Events go to ``logdir`` (train.py: ``<tb_path>/<date>/<exp>[_<tb_tag>]``); ``logdir`` None
    or ``enabled`` False (ranks other than 0) give a writer that does nothing.
    """

    def __init__(self, logdir, enabled=True):
        self.writer = None
        self.logdir = None if logdir is None else Path(logdir)
        if enabled and self.logdir is not None:
            from tensorboardX import SummaryWriter  # only rank 0 pays the import
            self.writer = SummaryWriter(logdir=str(self.logdir))

    def log_train(self, values, lr, images_per_s, iteration, extra=None):
        """Loss terms ``values``, lr and throughput, and ``extra`` scalars (``--amp fp16``:
        the loss scale and the count of skipped steps), every ``TRAIN_SCALAR_EVERY``."""
        if self.writer is None or iteration % TRAIN_SCALAR_EVERY:
            return
        for name, value in {**values, **(extra or {})}.items():
            self.writer.add_scalar(f"train/{name}", value, iteration)
        self.writer.add_scalar("train/lr", lr, iteration)
        self.writer.add_scalar("train/images_per_s", images_per_s, iteration)

    def log_validation(self, dataset, result, class_names, iteration):
        if self.writer is None:
            return
        for key in ("miou", "pixel_acc", "mean_class_acc", "val_loss"):
            if not math.isnan(result[key]):
                self.writer.add_scalar(f"{dataset}/{key}", result[key], iteration)
        for name, iou in zip(class_names, result["iou"]):
            if not math.isnan(iou):
                self.writer.add_scalar(f"{dataset}_iou/{name}", iou, iteration)

    def image_logger(self, dataset, iteration, mean, std):
        """Callback for :func:`engine.evaluation.evaluate` logging the first few predictions
        as one strip per image: input | ground truth | prediction. ``mean``/``std``: the
        normalisation the evaluation inputs went through (to show them in true colours)."""
        if self.writer is None:
            return None
        logged = [0]

        def log(images, labels, preds, names):
            for image, label, pred, name in zip(images, labels, preds, names):
                if logged[0] >= IMAGES_PER_DATASET:
                    return
                rgb = viz.denormalize(image, mean, std)
                gt = colorize(label.cpu().numpy())
                pr = colorize(pred.cpu().numpy())
                strip = np.concatenate([rgb, gt, pr], axis=1)
                self.writer.add_image(printable(f"{dataset}/{name}"), strip, iteration,
                                      dataformats="HWC")
                logged[0] += 1
        return log

    def close(self):
        if self.writer is not None:
            self.writer.close()
