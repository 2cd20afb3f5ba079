"""Time one BlindNet training step, split into its parts.

    python bench/train_step.py --arch network.deepv3.DeepR50V3PlusD --batch 2 --crop 256
    python bench/train_step.py --official-style --out logs/bench_train_step.json
    python bench/train_step.py --device cuda --crop 768 --batch 4      # a GPU's step

One step = forward of both views (BatchNorm per view) -> CE + aux CE + CML + CCL + CWCL + SDCL
(official weights) -> backward -> SGD step, on random images and blocky random labels.
Forward time is split into the encoder (the model's ``encode``: ``layer0..layer4``), the
training heads (``dsn`` and the three projection heads, timed with forward hooks) and the
decoder (the rest: ASPP, ``bot_*``, ``final*`` and the resizes); each loss term is timed with
hooks on the criterion's submodules (their backward is part of ``backward``).

``--official-style`` also times the step the way the official code runs it, with autograd
anomaly detection on (DECISIONS.md D9), interleaved step by step with ours so that both see
the same machine load. The official Python-loop samplers are not reproduced, so that number
is a lower bound for the official step.

Prints JSON and a Markdown table (medians over ``--iters`` steps after ``--warmup``). On
``--device cuda`` every phase boundary and hook synchronizes first, so each phase is charged
with its own kernels (which also makes the whole step a little slower than an unprobed one;
bench/gpu_check.py's ``step`` section times unprobed steps).
"""

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loss import BlindNetCriterion  # noqa: E402
from network import OFFICIAL_WT_LAYER, get_net  # noqa: E402
from utils.labels import IGNORE_LABEL, NUM_CLASSES  # noqa: E402

HEADS = ("dsn", "ProjectionHead_cls_0", "ProjectionHead_cls_1", "ProjectionHead_cls_2")
LOSS_TERMS = {"segmentation": "ce_main", "aux": "ce_aux", "cml": "cml", "ccl": "ccl",
              "cwcl": "cwcl", "sdcl": "sdcl"}
BLINDNET_LOSSES = ("cml", "ccl", "cwcl", "sdcl")
PHASES = ("encoder_forward", "decoder_forward", "heads_forward", "ce_main", "ce_aux", "cml",
          "ccl", "cwcl", "sdcl", "loss_other", "backward", "optimizer", "step")


def make_clock(device):
    """``clock()``: ``time.perf_counter()`` after the device's queued work is done."""
    def clock():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()
    return clock


class Timer:
    """Accumulates the wall time spent inside chosen modules (forward hooks) and methods;
    ``clock`` synchronizes the device first (:func:`make_clock`)."""

    def __init__(self, modules=None, methods=None, clock=time.perf_counter):
        self.clock = clock
        self.seconds = defaultdict(float)
        self._started = {}
        for name, module in (modules or {}).items():
            module.register_forward_pre_hook(self._pre_hook(name))
            module.register_forward_hook(self._post_hook(name))
        for owner, name in methods or ():
            # An instance attribute shadows the bound method for calls through ``self``.
            setattr(owner, name, self._timed(name, getattr(owner, name)))

    def _pre_hook(self, name):
        def hook(module, inputs):
            self._started[name] = self.clock()
        return hook

    def _post_hook(self, name):
        def hook(module, inputs, output):
            self.seconds[name] += self.clock() - self._started.pop(name)
        return hook

    def _timed(self, name, method):
        def timed(*args, **kwargs):
            start = self.clock()
            result = method(*args, **kwargs)
            self.seconds[name] += self.clock() - start
            return result
        return timed


def blocky_labels(batch, crop, generator, num_classes=NUM_CLASSES, block=64):
    """Labels of ``block``-pixel squares of a few classes, with an ignored band."""
    cells = -(-crop // block)
    classes = torch.randint(0, 6, (batch, cells, cells), generator=generator)
    classes = (classes * 3) % num_classes
    labels = classes.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :crop, :crop]
    labels[:, : crop // 16] = IGNORE_LABEL
    return labels.contiguous()


def run_step(model, criterion, optimizer, images, images_aug, labels, generator, timers):
    """One training step; returns the phase -> seconds dict."""
    model_timer, loss_timer = timers
    clock = model_timer.clock
    model_timer.seconds.clear()
    loss_timer.seconds.clear()
    start = clock()
    output = model(images, images_aug, with_embeddings=criterion.needs_embeddings)
    forward_done = clock()
    losses = criterion(output, labels, generator)
    loss_done = clock()
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    backward_done = clock()
    optimizer.step()
    end = clock()

    encoder = model_timer.seconds["encode"]
    heads = sum(model_timer.seconds[name] for name in HEADS)
    times = {"encoder_forward": encoder, "heads_forward": heads,
             "decoder_forward": forward_done - start - encoder - heads}
    for module_name, phase in LOSS_TERMS.items():
        times[phase] = loss_timer.seconds.get(module_name, 0.0)
    times["loss_other"] = loss_done - forward_done - sum(times[p] for p in LOSS_TERMS.values())
    times["backward"] = backward_done - loss_done
    times["optimizer"] = end - backward_done
    times["step"] = end - start
    return times


def measure(args, modes):
    """Median phase times per mode; the modes' steps are interleaved so that both see the same
    machine load (other processes on a shared CPU swing timings by several x)."""
    torch.manual_seed(304)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(304)  # the samplers' generator stays on the CPU
    model = get_net(args.arch, wt_layer=OFFICIAL_WT_LAYER, pretrained=False).train().to(device)
    criterion = BlindNetCriterion(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2,
                                  w3=0.3, w4=0.3, nce_T=0.07, contrast_max_classes=15,
                                  contrast_max_views=50, num_patch=20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(args.batch, 3, args.crop, args.crop, generator=generator)
    images_aug = (images + 0.3 * torch.randn(images.shape, generator=generator)).to(device)
    images, labels = images.to(device), blocky_labels(args.batch, args.crop, generator).to(device)
    clock = make_clock(device)
    timers = (Timer(modules={name: getattr(model, name) for name in HEADS},
                    methods=[(model, "encode")], clock=clock),
              Timer(modules={name: module for name, module in criterion.named_children()
                             if name in LOSS_TERMS}, clock=clock))
    runs = {mode: [] for mode in modes}
    for iteration in range(args.warmup + args.iters):
        for mode in modes:
            anomaly = mode == "official_style"
            with torch.autograd.set_detect_anomaly(anomaly, check_nan=anomaly):
                times = run_step(model, criterion, optimizer, images, images_aug, labels,
                                 generator, timers)
            if iteration >= args.warmup:
                runs[mode].append(times)
    return {mode: {phase: statistics.median(run[phase] for run in mode_runs)
                   for phase in PHASES}
            for mode, mode_runs in runs.items()}


def markdown_table(result):
    modes = list(result["modes"])
    header = "| phase | " + " | ".join(f"{m} (s) | {m} share" for m in modes) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(modes)]
    for phase in PHASES + ("blindnet_losses",):
        cells = []
        for mode in modes:
            times = result["modes"][mode]
            seconds = (sum(times[t] for t in BLINDNET_LOSSES) if phase == "blindnet_losses"
                       else times[phase])
            cells.append(f"{seconds:.4f} | {100 * seconds / times['step']:.1f}%")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="network.deepv3.DeepR50V3PlusD")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2, help="images per view (at least 2)")
    parser.add_argument("--iters", type=int, default=3, help="measured steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where the step runs (cuda: synchronized timings)")
    parser.add_argument("--official-style", action="store_true",
                        help="also time the step with autograd anomaly detection on")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.batch < 2 or args.crop < 32 or args.iters < 1 or args.warmup < 0:
        parser.error("need --batch >= 2 (BatchNorm), --crop >= 32, --iters >= 1, --warmup >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    if args.threads:
        torch.set_num_threads(args.threads)

    modes = measure(args, ["ours", "official_style"] if args.official_style else ["ours"])
    ours = modes["ours"]
    result = {
        "config": {"arch": args.arch, "crop": args.crop, "batch": args.batch,
                   "iters": args.iters, "warmup": args.warmup,
                   "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "device": args.device if args.device == "cpu"
                   else torch.cuda.get_device_name()},
        "modes": modes,
        "blindnet_losses_fraction": sum(ours[t] for t in BLINDNET_LOSSES) / ours["step"],
    }
    if args.official_style:
        result["official_style_over_ours"] = modes["official_style"]["step"] / ours["step"]
    text = json.dumps(result, indent=2)
    print(text)
    print()
    print(markdown_table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
