"""What every section shares: its context (device, sizes, where to write), synchronized
timing, memory peaks, synthetic batches and the models and criteria it builds."""

import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gpucheck.config import BLINDNET_LOSSES, BLINDNET_WT_LAYER
from utils.labels import IGNORE_LABEL, NUM_CLASSES


@dataclass
class Context:
    """One section's run: ``device`` (torch.device), ``quick``, ``out`` (the check's folder),
    ``sizes`` (this section's entry of config.FULL / QUICK), ``variant`` (step only)."""

    name: str
    device: torch.device
    quick: bool
    out: Path
    sizes: object
    variant: str | None = None

    @property
    def cuda(self):
        return self.device.type == "cuda"

    def result_path(self, name=None):
        suffix = f"_{self.variant}" if self.variant and name is None else ""
        return self.out / "sections" / f"{name or self.name}{suffix}.json"

    def save_partial(self, figures):
        """Write the figures measured so far: a section killed at its cap keeps them."""
        path = self.result_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"partial": True, **figures}, indent=2, default=str))

    def read_section(self, name):
        """Figures another section already wrote (e.g. the step rate for the loader), or {}."""
        path = self.result_path(name)
        return json.loads(path.read_text()) if path.is_file() else {}


def synchronize(device):
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device):
    """Peak allocated memory since the last reset, GiB (None on the CPU)."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def median_ms(function, device, warmup, iters):
    """Median wall time of ``function()`` in ms over ``iters`` synchronized calls after
    ``warmup`` unmeasured ones; returns ``(median, first call's seconds)``."""
    first = None
    for k in range(warmup):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        first = time.perf_counter() - start if k == 0 else first
    times = []
    for _ in range(iters):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), first


def relative_difference(reference, other):
    """``max|a - b| / max|a|`` of two tensors (or floats), in float64 on the CPU."""
    a = torch.as_tensor(reference).detach().double().cpu()
    b = torch.as_tensor(other).detach().double().cpu()
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))


def blocky_labels(batch, crop, generator, block=32):
    """``(batch, crop, crop)`` labels: squares of a few classes and an ignored band."""
    cells = -(-crop // block)
    classes = (torch.randint(0, 6, (batch, cells, cells), generator=generator) * 3) % NUM_CLASSES
    labels = classes.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :crop, :crop]
    labels[:, : max(1, crop // 16)] = IGNORE_LABEL
    return labels.contiguous()


def synthetic_batch(batch, crop, two_view, device, seed=0):
    """A training batch dict on ``device``: random images (and a jittered second view)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, crop, crop, generator=generator)
    item = {"image": images, "label": blocky_labels(batch, crop, generator)}
    if two_view:
        item["image_aug"] = images + 0.3 * torch.randn(images.shape, generator=generator)
    return {key: value.to(device) for key, value in item.items()}


def build_method(arch, method, device, seed=0, whitening=None, losses=None, arch_options=None):
    """``(model, criterion)`` on ``device``: ``blindnet`` (IN layers 0011100, the official four
    losses, ``losses`` overriding some of their settings; ``whitening='iw'`` adds RobustNet's
    ``wt`` term), ``baseline`` (no IN, CE) or ``rein`` (a ``network.vfm`` arch sized by
    ``arch_options``, random trunk, the Mask2Former losses)."""
    import network
    from loss import MASK_PREDICTIONS, BlindNetCriterion

    torch.manual_seed(seed)
    if method == "rein":
        model = network.get_net(arch, NUM_CLASSES, [0] * 7, pretrained=False,
                                **(arch_options or {}))
        return model.to(device), BlindNetCriterion(prediction=MASK_PREDICTIONS).to(device)
    if method == "blindnet":
        wt_layer, kwargs = BLINDNET_WT_LAYER, {**BLINDNET_LOSSES, **(losses or {})}
        if whitening:
            if whitening != "iw":
                raise ValueError(f"whitening {whitening!r}: only 'iw' fits the 0011100 layers")
            kwargs.update(wt_reg_weight=0.6, relax_denom=0.0)
    elif method == "baseline":
        wt_layer, kwargs = (0,) * 7, {}
    else:
        raise ValueError(f"unknown method {method!r}; expected blindnet, baseline or rein")
    model = network.get_net(arch, NUM_CLASSES, list(wt_layer), pretrained=False)
    criterion = BlindNetCriterion(wt_layer=list(wt_layer), **kwargs)
    return model.to(device), criterion.to(device)


def train_state(model, device, amp="off", lr=0.01, **optim):
    """A fresh ``engine.trainer.TrainState`` of ``model``; ``optim``: further
    ``engine.config.OptimConfig`` fields (``optimizer``, ``weight_decay``)."""
    from engine.config import OptimConfig
    from engine.trainer import new_train_state

    return new_train_state(model, OptimConfig(lr=lr, max_iter=100000, **optim), device=device,
                           amp=amp)


def vfm_training_gflops(arch, crop, batch, arch_options=None):
    """GFLOPs of one training step (forward and backward, the frozen trunk computing no
    weight gradients) of a ``network.vfm`` arch at ``batch x crop x crop``, counted by
    ``torch.utils.flop_counter`` on the meta device (bench/vfm_step.py's count)."""
    import network
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = network.get_net(arch, NUM_CLASSES, [0] * 7, pretrained=False,
                                **(arch_options or {})).train()
        images = torch.empty(batch, 3, crop, crop)
    with FlopCounterMode(display=False) as counter:
        view = model(images).original
        # Any scalar of every prediction: the backward touches what the real losses touch.
        (sum(c.sum() for c in view.class_logits) + sum(m.sum() for m in view.mask_logits)
         ).backward()
    return counter.get_total_flops() / 1e9


def run_step(state, item, criterion, device, amp="off", channels_last=False):
    """One ``engine.trainer.train_step`` on ``item``; returns its loss terms."""
    from engine.trainer import train_step

    return train_step(state, item, criterion, device=device,
                      two_view="image_aug" in item, with_embeddings=criterion.needs_embeddings,
                      amp=amp, channels_last=channels_last)


def training_gflops(ctx, arch, crop, images):
    """Approximate training GFLOPs of one step: 3x the eval forward (thop, network/
    model_info.py) per image, counted once per (arch, crop) and kept in the check's folder;
    None without thop."""
    cache = ctx.out / "sections" / f"flops_{arch.rsplit('.', 1)[-1]}_{crop}.json"
    if not cache.is_file():
        try:
            from network.model_info import model_info
        except ImportError:
            return None
        cache.write_text(json.dumps(model_info(arch, (crop, crop))))
    return 3 * json.loads(cache.read_text())["gflops"] * images


@contextlib.contextmanager
def captured_stderr(path):
    """Send file descriptor 2 to ``path`` inside the block, then copy it back to stderr.

    C++ warnings raised in autograd's device threads (CUDA backward) skip Python's warnings
    machinery and are printed there, e.g. PyTorch's sync-debug and determinism warnings.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    sys.stderr.write(path.read_text())
