"""Evaluation shared by training (after every epoch), ``valid.py``, ``infer.py`` and ``demo.py``.

Single scale, no flip, arg-max of the main output (DATASETS.md §7.1); whole-image inference by
default, sliding windows on request. In DDP every rank evaluates its own shard
(``ShardSampler``: every image exactly once, none dropped or duplicated) and the confusion
matrices are all-reduced.
"""

import json
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

import network
from datasets import DEFAULT_OPTIONS
from network.vfm_weights import map_mmseg_keys
from config import DEFAULT_NORM_SEMANTICS
from engine.external_weights import cover_external, eval_trunk_source
from engine.inputs import model_images, to_device
from engine.model_spec import describe_likely
from engine.protocols import to_label_size
from engine.report import add_fields, extra_markdown, percent_text
from engine.tta import SINGLE_SCALE, tta_logits
from utils import dist as dist_utils
from utils.checkpoint import (checkpoint_norm_semantics, extract_state_dict, load_checkpoint,
                              load_state_dict_forgiving, snapshot_mismatch,
                              strip_module_prefix)
from utils.empty_labels import MAX_NAMES, check_empty_labels
from utils.labels import IGNORE_LABEL, NUM_CLASSES
from utils.logging import FILE_ONLY, get_logger, printable
from utils.metrics import ConfusionMatrix
from utils.output import write_text, writing
from utils.precision import autocast
from utils.progress import progress
from utils.workers import worker_batches

# Side of a sliding window by default: --crop_size's default (its one home).
DEFAULT_WINDOW = DEFAULT_OPTIONS["crop_size"]


class ShardSampler(Sampler):
    """Indices ``rank, rank + W, ...`` of ``range(n)``: no padding, no shuffling.

    Unlike ``DistributedSampler`` (which pads by repeating images) and the reference (which
    drops ``N mod W`` images), every image is evaluated exactly once.
    """

    def __init__(self, n, rank=0, world_size=1):
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def build_eval_loader(dataset, batch_size=1, num_workers=2, max_images=None,
                      worker_init_fn=None, persistent=False):
    """DataLoader over this rank's shard of ``dataset`` (first ``max_images`` images only);
    ``persistent``: keep the workers between passes (training's repeated validations)."""
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    sampler = ShardSampler(n, dist_utils.get_rank(), dist_utils.get_world_size())
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      worker_init_fn=worker_init_fn,
                      persistent_workers=persistent and num_workers > 0,
                      pin_memory=torch.cuda.is_available(),
                      # Own generator: evaluation must not consume the global RNG that
                      # training (dropout) uses, or resumed runs would diverge.
                      generator=torch.Generator())


# Smallest side fed to the network: below it the deepest instance-normalised feature map of
# some trunks has one element and instance norm fails ("Expected more than 1 spatial
# element"). 64 leaves >= 2x2 even at output stride 32.
MIN_INPUT_SIDE = 64


def forward_padded(model, images, min_side=MIN_INPUT_SIDE):
    """``model(images)`` for images of any size: sides below ``min_side`` are zero-padded
    (bottom/right; zero is the normalised mean colour) and the logits cropped back.

    images: (B, 3, H, W) -> logits (B, C, H, W).
    """
    height, width = images.shape[-2:]
    pad_h, pad_w = max(0, min_side - height), max(0, min_side - width)
    if not pad_h and not pad_w:
        return model(images)
    return model(F.pad(images, (0, pad_w, 0, pad_h)))[:, :, :height, :width]


def _window_starts(length, crop, stride):
    """Window origins along one side: every ``stride``, the last flush with the border
    (mmseg's ``slide_inference`` grid too: ``i * stride`` clamped to ``length - crop``)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, stride))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def window_stride(crop_size, stride=None):
    """The sliding-window step: ``stride``, else 2/3 of ``crop_size`` rounded up."""
    return stride or max(1, int(math.ceil(crop_size * 2 / 3)))


WHOLE_IMAGE = "whole-image"


def inference_description(sliding_window, crop_size, stride=None, pad_windows=True):
    """The ``inference`` entry of ``results.json``: whole-image or sliding windows (crop and
    the step actually used; ``unpadded`` for Rein's windows); a setting that changes the
    numbers, like the TTA."""
    if not sliding_window:
        return {"name": WHOLE_IMAGE, "sliding_window": False, "crop_size": None, "stride": None}
    step = window_stride(crop_size, stride)
    if pad_windows:
        return {"name": f"sliding-window({crop_size},{step})", "sliding_window": True,
                "crop_size": int(crop_size), "stride": int(step)}
    return {"name": f"sliding-window({crop_size},{step},unpadded)", "sliding_window": True,
            "crop_size": int(crop_size), "stride": int(step), "pad_windows": False}


@torch.no_grad()
def predict_logits(model, images, sliding_window=False, crop_size=DEFAULT_WINDOW, stride=None,
                   pad_windows=True):
    """Logits (B, C, H, W) of an eval-mode model for normalised images (B, 3, H, W).

    With ``sliding_window`` the image is covered by ``crop_size`` windows every ``stride``
    pixels (default 2/3 of the crop); overlapping logits are averaged. Images smaller than a
    window are zero-padded (the normalised mean) and the padding is cropped away again, or,
    without ``pad_windows`` (mmseg's slide inference), the window shrinks to the image; so
    are images (or windows) with a side below :data:`MIN_INPUT_SIDE` (:func:`forward_padded`).
    """
    if not sliding_window:
        return forward_padded(model, images)
    stride = window_stride(crop_size, stride)
    _, _, height, width = images.shape
    if pad_windows:
        crop_h = crop_w = crop_size
        padded = F.pad(images, (0, max(0, crop_size - width), 0, max(0, crop_size - height)))
    else:
        crop_h, crop_w, padded = min(crop_size, height), min(crop_size, width), images
    ph, pw = padded.shape[-2:]
    logits, counts = None, torch.zeros(1, 1, ph, pw, device=images.device)
    for y in _window_starts(ph, crop_h, stride):
        for x in _window_starts(pw, crop_w, stride):
            window = padded[:, :, y:y + crop_h, x:x + crop_w]
            out = forward_padded(model, window).float()
            if logits is None:
                logits = torch.zeros(images.shape[0], out.shape[1], ph, pw, device=images.device)
            logits[:, :, y:y + crop_h, x:x + crop_w] += out
            counts[:, :, y:y + crop_h, x:x + crop_w] += 1
    return (logits / counts)[:, :, :height, :width]


@torch.no_grad()
def evaluate(model, loader, device, num_classes=NUM_CLASSES, ignore_index=IGNORE_LABEL, amp="off",
             sliding_window=False, crop_size=DEFAULT_WINDOW, stride=None, desc="eval",
             on_batch=None, scales=SINGLE_SCALE, flip=False, pad_windows=True,
             normalization=None):
    """Confusion matrix, metrics and mean CE loss of ``model`` over ``loader``.

    Args:
        model: eval-mode model (DDP-wrapped or not) returning logits (B, C, H, W).
        loader: yields uint8 item dicts ``{"image": (B,3,H,W), "label": (B,H,W),
            "name": [str]}``.
        normalization: ``(mean, std)`` the images are normalised with on the device (None:
            the loader's dataset's ``normalization``).
        scales, flip: test-time augmentation (:func:`engine.tta.tta_logits`); the default
            is single-scale inference, unchanged.
        sliding_window, crop_size, stride, pad_windows: :func:`predict_logits`'
            (:func:`inference_settings` of the protocol). Logits are resized to the label
            when the protocol resized only the image (:func:`to_label_size`).
        on_batch: optional callback ``(images, labels, preds, names)`` (e.g. to log images;
            images normalised, labels long).

    Returns:
        dict: metrics of :func:`utils.metrics.metrics_from_confusion` plus ``val_loss``,
        ``images`` (count over all ranks), ``hist`` (the all-reduced (C, C) matrix),
        ``empty_labels`` (images, over all ranks, whose label has no valid pixel) and
        ``empty_label_names`` (the first few of them on this rank).

    Raises:
        utils.empty_labels.EmptyLabelsError: every evaluated label has no valid pixel (the
            mIoU would be NaN); some such labels give a warning naming them.
    """
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes, device=device)
    totals = _LossAndEmptyLabels(ignore_index, device)
    show = dist_utils.is_main_process()
    mean, std = normalization or dataset_normalization(loader.dataset)
    with worker_batches(loader) as batches:  # a failure stops the loader's workers at once
        for batch in progress(batches, total=len(loader), desc=desc, disable=not show,
                              leave=False):
            images = model_images(batch["image"], device, mean, std)
            labels = to_device(batch["label"], device).long()
            with autocast(device, amp):
                logits = tta_logits(
                    lambda inputs: predict_logits(model, inputs, sliding_window, crop_size,
                                                  stride, pad_windows),
                    images, scales, flip)
            logits = to_label_size(logits.float(), labels)
            preds = logits.argmax(1)
            confusion.update(preds, labels)
            totals.add(logits, labels, batch["name"])
            if on_batch is not None:  # the input at the label's size (figures)
                on_batch(to_label_size(images.float(), labels), labels, preds, batch["name"])
    counted = torch.tensor([len(loader.sampler)], dtype=torch.int64, device=device)
    confusion.all_reduce()
    totals.all_reduce()
    dist_utils.all_reduce_sum(counted)
    model.train(was_training)
    num_empty = int(totals.empty.item())
    _check_eval_labels(loader.dataset, num_empty, totals.empty_names, int(counted.item()))
    result = confusion.compute()
    loss_sum = totals.loss_sum
    result["val_loss"] = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else float("nan")
    result["images"] = int(counted.item())
    result["hist"] = confusion.hist.cpu().tolist()
    result["empty_labels"] = num_empty
    result["empty_label_names"] = totals.empty_names[:MAX_NAMES]
    return result


def dataset_normalization(dataset):
    """``(mean, std)`` an evaluation dataset's uint8 images are normalised with."""
    normalization = getattr(dataset, "normalization", None)
    if normalization is None:
        raise TypeError(f"{type(dataset).__name__} has no 'normalization' (mean, std): pass "
                        f"evaluate(..., normalization=(mean, std))")
    return normalization


class _LossAndEmptyLabels:
    """Running CE sum / valid-pixel count and the images whose label has no valid pixel."""

    def __init__(self, ignore_index, device):
        self.ignore_index = ignore_index
        self.loss_sum = torch.zeros(2, dtype=torch.float64, device=device)  # CE sum, pixels
        self.empty = torch.zeros(1, dtype=torch.int64, device=device)
        self.empty_names = []  # this rank's

    def add(self, logits, labels, names):
        """logits (B, C, H, W) float, labels (B, H, W) long, names: B strings."""
        valid_per_image = (labels != self.ignore_index).flatten(1).sum(1)
        valid = valid_per_image.sum()
        no_valid = (valid_per_image == 0).cpu()
        self.empty += int(no_valid.sum())
        self.empty_names += [printable(n) for n, e in zip(names, no_valid.tolist()) if e]
        if valid > 0:
            ce = F.cross_entropy(logits, labels, ignore_index=self.ignore_index,
                                 reduction="sum")
            self.loss_sum += torch.stack([ce.double(), valid.double()])

    def all_reduce(self):
        dist_utils.all_reduce_sum(self.loss_sum)
        dist_utils.all_reduce_sum(self.empty)


def _check_eval_labels(dataset, num_empty, names, total):
    """Warn about / refuse evaluated labels without a valid pixel (every rank raises alike).

    ``names`` are this rank's; padded with placeholders so the count stays the global one.
    """
    if num_empty == 0:
        return
    names = names + ["(on another rank)"] * (num_empty - len(names))
    check_empty_labels(getattr(dataset, "name", type(dataset).__name__),
                       getattr(dataset, "split", "?"), getattr(dataset, "root", "?"),
                       names, total, getattr(dataset, "expected_labels", ""))


def format_table(results, class_names):
    """Markdown table: one row per dataset, mIoU, pixel acc and every class IoU (in %)."""
    header = ["dataset", "mIoU", "pixel acc"] + list(class_names)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, res in results.items():
        cells = [name, percent_text(res["miou"]), percent_text(res["pixel_acc"])]
        cells += [percent_text(v) for v in res["iou"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The unit of every mIoU / IoU / accuracy in results.json (the "unit" field says so).
RESULTS_UNIT = "fraction"


def write_results(results, out_dir, class_names, protocol, checkpoint=None,
                  norm_semantics=DEFAULT_NORM_SEMANTICS, trained_norm_semantics=None,
                  extra=None, output_flag="--ckpt"):
    """Write ``results.json`` and ``results.md`` (DECISIONS.md D19) and return their paths.

    A folder or file write that fails raises ``utils.output.OutputError`` naming it and
    ``output_flag``.

    Both name the protocol, the checkpoint, the ``--norm_semantics`` of the evaluated model
    and the one the checkpoint says it was trained with (``None``: it does not say).
    ``extra`` (``engine.report.results_extra``: training run, TTA, mean over targets,
    per-dataset additions, corruption sweeps) adds fields; it never replaces one.
    """
    out_dir = Path(out_dir)
    with writing(out_dir, output_flag):
        out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        # mIoU, IoU, accuracies are fractions in [0, 1] here (logs and tables print percent).
        "unit": RESULTS_UNIT,
        "eval_protocol": protocol,
        "norm_semantics": norm_semantics,
        "trained_norm_semantics": trained_norm_semantics,
        "checkpoint": printable(checkpoint) if checkpoint else None,
        "class_names": list(class_names),
        "datasets": {
            name: {**{k: v for k, v in res.items() if k != "hist"},
                   "iou_per_class": dict(zip(class_names, res["iou"])),
                   "confusion_matrix": res["hist"]}
            for name, res in results.items()},
    }
    if extra:
        add_fields(payload, extra)
    json_path = out_dir / "results.json"
    # NaN is not valid JSON: absent classes are written as null.
    write_text(json_path, json.dumps(nan_to_none(payload), indent=2), flag=output_flag)
    md = ["# Evaluation results", "",
          f"- evaluation protocol: `{protocol}`",
          f"- norm semantics: `{norm_semantics}` (checkpoint trained with "
          f"`{trained_norm_semantics or 'unrecorded'}`)",
          f"- checkpoint: `{printable(checkpoint)}`" if checkpoint else "- checkpoint: (none)",
          "",
          "IoU per class in %; n/a = class absent from the ground truth and never predicted.", "",
          format_table(results, class_names), ""]
    if extra:
        md += extra_markdown(extra)
    md_path = write_text(out_dir / "results.md", "\n".join(md), flag=output_flag)
    return json_path, md_path


def nan_to_none(obj):
    """Replace NaN floats (not valid JSON) by None, recursively."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def resolve_norm_semantics(requested, trained, snapshot):
    """The ``--norm_semantics`` to evaluate with: the flag if given, else the checkpoint's,
    else ``modern``. Warns (naming both) when the flag contradicts the checkpoint.

    Evaluation normalises per image in both modes (TORCH12_SEMANTICS.md), so the numbers do
    not change; the warning keeps results of the two semantics from being mixed up.
    """
    if requested is None:
        return trained or DEFAULT_NORM_SEMANTICS
    if trained is not None and trained != requested:
        message = (f"--snapshot {snapshot} was trained with --norm_semantics {trained} but is "
                   f"evaluated with --norm_semantics {requested}; the results will name "
                   f"{requested} (evaluation itself is per-image in both modes)")
        warnings.warn(message, UserWarning, stacklevel=2)
        get_logger().warning(message)
    return requested


class SnapshotMismatchError(ValueError):
    """The ``--snapshot`` weights leave part of the model random; the message lists them."""


def load_eval_model(snapshot, arch, wt_layer, *, device, norm_semantics=None, partial=False,
                    channels_last=False, logger=None, checkpoint=None, pretrained=None,
                    model_options=None, norm_layers=None):
    """Build ``arch`` and load the checkpoint ``snapshot`` into it (ours or official); eval mode.

    ``arch`` / ``wt_layer`` / ``model_options`` / ``norm_layers`` (``get_net``'s
    ``norm_layer`` / ``head_norm_layer`` keywords; None: BatchNorm, the default): the model
    the checkpoint records (``engine.model_spec``), or the flags. ``norm_semantics`` None
    takes the checkpoint's (:func:`resolve_norm_semantics`). ``pretrained``: the VFM
    segmenters' trunk file (:func:`engine.external_weights.eval_trunk_source`; a checkpoint
    without the frozen trunk, such as Rein's releases in mmseg names, needs it). Returns
    ``(model, norm_semantics, trained_norm_semantics)`` (the last None when the checkpoint
    does not say). Raises :class:`SnapshotMismatchError` (one line: counts, an example of
    each, the architecture the tensors fit; the full list goes to the log file) when weights
    are missing or mis-shaped (a partly random model gives meaningless numbers) unless
    ``partial`` (``--snapshot_partial``: a warning), ValueError for another trunk than the
    recorded one, and FileNotFoundError / ``utils.checkpoint.CheckpointError`` for a missing
    or unreadable file.
    """
    logger = logger or get_logger()
    if checkpoint is None:  # the caller may pass the file's content, already loaded
        checkpoint = load_checkpoint(snapshot)
    trained = checkpoint_norm_semantics(checkpoint)
    norm_semantics = resolve_norm_semantics(norm_semantics, trained, snapshot)
    trunk = eval_trunk_source(arch, pretrained, checkpoint)
    model = network.get_net(arch, NUM_CLASSES, wt_layer, pretrained=trunk,
                            norm_semantics=norm_semantics, **(norm_layers or {}),
                            **(model_options or {}))
    weights = extract_state_dict(checkpoint, snapshot)
    if network.is_vfm_arch(arch):
        weights = map_mmseg_keys(strip_module_prefix(weights), strict=False)
    report = load_state_dict_forgiving(model, weights, log=False)
    covered = cover_external(report, model, checkpoint, "--snapshot", snapshot)
    logger.info(f"--snapshot {snapshot} into {arch}: {report.summary()}", extra=FILE_ONLY)
    mismatch = snapshot_mismatch(report, "--snapshot", snapshot, arch, NUM_CLASSES, wt_layer)
    if mismatch and not partial:
        raise SnapshotMismatchError(_mismatch_message(mismatch, arch, trunk, report, weights))
    if mismatch:
        logger.warning(f"--snapshot_partial: {mismatch}; those tensors keep their random "
                       f"initial values")
    logger.info(report.brief() + (f"; the {covered} frozen trunk tensors from {trunk}"
                                  if covered else ""))
    norms = "".join(f", --{key} {value}" for key, value in (norm_layers or {}).items())
    logger.info(f"model {arch}, --wt_layer {' '.join(map(str, wt_layer))}{norms}, norm "
                f"semantics {norm_semantics} (checkpoint trained with {trained or 'unrecorded'})")
    if isinstance(checkpoint, dict) and "iteration" in checkpoint:
        logger.info(f"checkpoint trained for {checkpoint['iteration']} iterations")
    model.to(device).eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, norm_semantics, trained


def _mismatch_message(mismatch, arch, trunk, report, weights):
    """The one-line refusal of a ``--snapshot`` that leaves part of ``arch`` random: for a
    VFM segmenter without a trunk file, the file to pass; for the CNNs, the architecture
    the tensors fit (``engine.model_spec.describe_likely`` knows only the DeepLabV3+
    factories)."""
    if not network.is_vfm_arch(arch):
        return f"{mismatch}; {describe_likely(weights)}"
    if not trunk and any(key.startswith("backbone.blocks.") for key in report.missing):
        return (f"{mismatch}; it holds no DINOv2 trunk (Rein's checkpoints hold only the "
                f"adapter and the head): pass --pretrained DINOV2_FILE")
    return mismatch
