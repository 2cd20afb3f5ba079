"""Cost of a Rein + DINOv2 + Mask2Former training step.

    python bench/vfm_step.py                  # CPU timing (tiny + full ViT-S), ViT-L counts
    python bench/vfm_step.py --skip-timing    # only the meta-device counts (seconds)

Three measurements:

* CPU time of one training step (forward, Mask2Former losses with matching, backward,
  AdamW) of ``ReinDinov2SMask2Former``: a tiny configuration (4 blocks, 10 queries, 3
  decoder layers, 64x64) and the full ViT-S recipe (12 blocks, 100 queries, 9 + 6 layers)
  at ``--crop``; medians over ``--iters`` steps after one warm-up, ``--threads`` threads.
* Parameters of ``ReinDinov2LMask2Former`` (built on the meta device: no memory, no weights):
  total, trainable (Reins + head), Reins alone, trunk.
* FLOPs of one ViT-L training step at Rein's batch (4 x 512 x 512), forward and
  forward + backward, counted by ``torch.utils.flop_counter`` on the meta device (the
  backward does not compute the frozen trunk's weight gradients), and the bytes autograd
  saves for the backward in float32 (an upper bound: tensors saved twice count twice).

Prints JSON and a Markdown table.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loss.mask2former import Mask2FormerLoss  # noqa: E402
from network.vfm import ReinDinov2LMask2Former, ReinDinov2SMask2Former  # noqa: E402
from utils.labels import NUM_CLASSES  # noqa: E402

TINY = {"depth": 4, "num_queries": 10, "num_decoder_layers": 3, "pixel_decoder_layers": 2}


def time_steps(config, crop, batch, iters):
    """Median seconds of a full training step of ReinDinov2S with ``config``."""
    torch.manual_seed(0)
    model = ReinDinov2SMask2Former(pretrained=False, img_size=crop, **config).train()
    criterion = Mask2FormerLoss()
    optimizer = torch.optim.AdamW(model.param_groups(1e-4, 0.05))
    images = torch.randn(batch, 3, crop, crop)
    labels = torch.randint(0, NUM_CLASSES, (batch, crop // 32, crop // 32))
    labels = labels.repeat_interleave(32, 1).repeat_interleave(32, 2)  # blocky classes
    times = []
    for step in range(iters + 1):
        start = time.perf_counter()
        out = model(images).original
        terms = criterion(out.class_logits, out.mask_logits, labels,
                          torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def large_counts(batch, crop):
    """Parameter counts and step FLOPs / saved bytes of ReinDinov2L on the meta device."""
    with torch.device("meta"):
        model = ReinDinov2LMask2Former(pretrained=False).train()
    params = dict(model.named_parameters())
    counts = {"total": sum(p.numel() for p in params.values()),
              "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
              "reins": sum(p.numel() for n, p in params.items() if ".reins." in n),
              "trunk": sum(p.numel() for n, p in params.items()
                           if n.startswith("backbone.") and ".reins." not in n)}
    counts["head"] = counts["trainable"] - counts["reins"]
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    images = torch.empty(batch, 3, crop, crop, device="meta")
    with FlopCounterMode(display=False) as counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = model(images).original
        forward = counter.get_total_flops()
        # Any scalar of all 10 predictions: the backward touches what the real losses touch.
        surrogate = sum(c.sum() for c in out.class_logits) + sum(m.sum() for m in out.mask_logits)
        surrogate.backward()
    return {"params": counts, "batch": batch, "crop": crop,
            "tflops_forward": forward / 1e12, "tflops_step": counter.get_total_flops() / 1e12,
            "saved_activations_gb_fp32": sum(saved) / 1e9}


def markdown(result):
    lines = ["| measurement | value |", "|---|---:|"]
    for name, seconds in result.get("cpu_step_s", {}).items():
        lines.append(f"| CPU step, {name} | {seconds:.3f} s |")
    large = result["vit_l"]
    for name, count in large["params"].items():
        lines.append(f"| ReinDinov2L params, {name} | {count:,} |")
    shape = f"{large['batch']}x{large['crop']}x{large['crop']}"
    lines += [f"| ViT-L step forward TFLOPs ({shape}) | {large['tflops_forward']:.2f} |",
              f"| ViT-L step forward+backward TFLOPs ({shape}) | {large['tflops_step']:.2f} |",
              f"| ViT-L saved activations, fp32 upper bound | "
              f"{large['saved_activations_gb_fp32']:.1f} GB |"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crop", type=int, default=256, help="full ViT-S crop (multiple of 32)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-timing", action="store_true")
    opts = parser.parse_args(argv)
    if opts.crop % 32:
        parser.error(f"--crop {opts.crop} must be a multiple of 32")
    torch.set_num_threads(opts.threads)
    result = {"threads": opts.threads, "torch": torch.__version__}
    if not opts.skip_timing:
        result["cpu_step_s"] = {
            f"tiny ViT-S (4 blocks, 64x64, batch {opts.batch})": time_steps(TINY, 64, opts.batch,
                                                                           opts.iters),
            f"ViT-S recipe ({opts.crop}x{opts.crop}, batch {opts.batch})": time_steps(
                {}, opts.crop, opts.batch, opts.iters)}
    result["vit_l"] = large_counts(4, 512)
    print(json.dumps(result, indent=2))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
