"""TensorBoard logging of a training run (rank 0 only; other ranks get a no-op writer).

Events are written synchronously, in the training thread, with tensorboardX's event-file
writer (``EventsWriter``), not through ``SummaryWriter``: its background thread dies on a
write error (disk full) and the training thread then blocks for ever on the thread's full
queue. Here a write error surfaces where it happens and ends TensorBoard logging with one
warning; training goes on (docs/FAILURES.md). A TensorBoard folder that cannot be created
stops the run when it starts (:class:`utils.output.OutputError`).

Validation metrics are written in percent, as the logs print them.
"""

import math
import time
from pathlib import Path

import numpy as np

from utils import viz
from utils.labels import colorize
from utils.logging import get_logger, printable
from utils.output import describe, ensure_writable_dir, writing

IMAGES_PER_DATASET = 3
TRAIN_SCALAR_EVERY = 10  # iterations between training scalars (event files stay small)
PERCENT_KEYS = ("miou", "pixel_acc", "mean_class_acc")


class TrainWriter:
    """Scalars (every loss term, lr, throughput), validation metrics and colourized predictions.

    Events go to ``logdir`` (train.py: ``<tb_path>/<date>/<exp>[_<tb_tag>]``); ``logdir`` None
    or ``enabled`` False (ranks other than 0) give a writer that does nothing. ``flag``: the
    option that chose ``logdir``, named in errors.
    """

    def __init__(self, logdir, enabled=True, flag="--tb_path"):
        self.events = None
        self.logdir = None if logdir is None else Path(logdir)
        self.flag = flag
        if enabled and self.logdir is not None:
            from tensorboardX.event_file_writer import EventsWriter  # rank 0 pays the import

            ensure_writable_dir(self.logdir, flag)
            with writing(self.logdir, flag):
                self.events = EventsWriter(str(self.logdir / "events"))

    @property
    def active(self):
        return self.events is not None

    def _write(self, summaries, step):
        """Append the summaries as events and flush; a write error ends this writer."""
        if self.events is None:
            return
        from tensorboardX.proto.event_pb2 import Event

        try:
            for summary in summaries:
                self.events.write_event(Event(summary=summary, step=int(step),
                                              wall_time=time.time()))
            self.events.flush()
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc):
        path = getattr(self.events._py_recordio_writer, "path", self.logdir)
        get_logger().warning(f"TensorBoard: {describe(path, self.flag, exc)}; TensorBoard "
                             f"logging stops here, training goes on")
        events, self.events = self.events, None
        try:
            events.close()
        except OSError:
            pass

    def log_train(self, values, lr, images_per_s, iteration, extra=None):
        """Loss terms ``values``, lr and throughput, and ``extra`` scalars (``--amp fp16``:
        the loss scale and the count of skipped steps), every ``TRAIN_SCALAR_EVERY``."""
        if self.events is None or iteration % TRAIN_SCALAR_EVERY:
            return
        from tensorboardX.summary import scalar

        summaries = [scalar(f"train/{name}", value)
                     for name, value in {**values, **(extra or {})}.items()]
        summaries += [scalar("train/lr", lr), scalar("train/images_per_s", images_per_s)]
        self._write(summaries, iteration)

    def log_validation(self, dataset, result, class_names, iteration):
        """``<dataset>/miou``, ``pixel_acc``, ``mean_class_acc`` (percent), ``val_loss`` and
        ``<dataset>_iou/<class>`` (percent)."""
        if self.events is None:
            return
        from tensorboardX.summary import scalar

        summaries = []
        for key in (*PERCENT_KEYS, "val_loss"):
            if not math.isnan(result[key]):
                factor = 100.0 if key in PERCENT_KEYS else 1.0
                summaries.append(scalar(f"{dataset}/{key}", factor * result[key]))
        for name, iou in zip(class_names, result["iou"]):
            if not math.isnan(iou):
                summaries.append(scalar(f"{dataset}_iou/{name}", 100.0 * iou))
        self._write(summaries, iteration)

    def image_logger(self, dataset, iteration, mean, std):
        """Callback for :func:`engine.evaluation.evaluate` logging the first few predictions
        as one strip per image: input | ground truth | prediction. ``mean``/``std``: the
        normalisation the evaluation inputs went through (to show them in true colours)."""
        if self.events is None:
            return None
        from tensorboardX.summary import image

        logged = [0]

        def log(images, labels, preds, names):
            for rgb_image, label, pred, name in zip(images, labels, preds, names):
                if logged[0] >= IMAGES_PER_DATASET or self.events is None:
                    return
                rgb = viz.denormalize(rgb_image, mean, std)
                gt = colorize(label.cpu().numpy())
                pr = colorize(pred.cpu().numpy())
                strip = np.concatenate([rgb, gt, pr], axis=1)
                self._write([image(printable(f"{dataset}/{name}"), strip, dataformats="HWC")],
                            iteration)
                logged[0] += 1
        return log

    def close(self):
        if self.events is not None:
            try:
                self.events.close()
            except OSError as exc:
                self._give_up(exc)
            self.events = None
