"""Throughput sections: ``eval`` (one full-size image, whole and sliding-window, fp32 / bf16)
and ``loader`` (``gtav_jitter`` samples/s per worker count against the step's rate)."""

import logging
import time

import torch

from gpucheck.common import median_ms, peak_memory_gib, reset_peak_memory
from gpucheck.config import STEP_CONFIGS
from utils.precision import autocast


def eval_speed(ctx):
    """ms per image and peak memory of evaluation at ``image`` (2048x1024 in the full run)."""
    import network
    from engine.evaluation import predict_logits
    from utils.labels import NUM_CLASSES

    size, figures = ctx.sizes, {}
    torch.backends.cudnn.benchmark = True  # as valid.py / infer.py
    torch.manual_seed(0)
    model = network.get_net(size["arch"], NUM_CLASSES, [0, 0, 1, 1, 1, 0, 0],
                            pretrained=False).to(ctx.device).eval()
    image = torch.randn(1, 3, *size["image"], device=ctx.device)
    for precision in ("off", "bf16"):
        if precision == "bf16" and ctx.cuda and torch.cuda.get_device_capability()[0] < 8:
            continue
        for sliding in (False, True):
            def predict():
                with torch.no_grad(), autocast(ctx.device, precision):
                    predict_logits(model, image, sliding, size["window"])
            reset_peak_memory(ctx.device)
            ms, _ = median_ms(predict, ctx.device, size["warmup"], size["iters"])
            name = f"{'fp32' if precision == 'off' else precision}_" \
                   f"{'sliding' if sliding else 'whole'}"
            figures[name] = {"ms_per_image": round(ms, 1),
                             "peak_memory_gib": peak_memory_gib(ctx.device)}
            ctx.save_partial(figures)
    return {"arch": size["arch"], "image_hw": list(size["image"]), "window": size["window"],
            **figures}


def _dataset(ctx, size):
    """The prepared ``gtav_jitter`` training set on generated full-size GTAV images."""
    from tests.generated_data import generate_dataset

    from engine.data import build_train_set, prepare_rank0_first

    root = ctx.out / "loader_gtav"
    generate_dataset("gtav", root, num_images=size["images"], size=tuple(size["image"]),
                     splits=("train",))
    options = {"crop_size": size["crop"], "scale_min": 0.5, "scale_max": 2.0,
               "class_uniform_pct": 0.5, "class_uniform_tile": 1024, "color_aug": 0.5,
               "gblur": True, "cache_dir": ctx.out / "loader_cache"}
    dataset, _ = build_train_set(["gtav_jitter"], {"gtav": root}, options)
    prepare_rank0_first(dataset, True)
    dataset.set_epoch(0)
    return dataset


PREFETCH = 2  # batches each worker loads ahead (DataLoader's prefetch_factor)


def _samples_per_s(dataset, workers, size, pin_memory):
    """Steady-state samples/s of a DataLoader with ``workers``: the batches the workers
    prefetched while starting are drained first, so they do not count as speed."""
    from torch.utils.data import DataLoader

    from engine.data import WORKER_INIT

    endless = [i % len(dataset) for i in range(100000)]
    loader = DataLoader(dataset, batch_size=size["batch"], sampler=endless,
                        num_workers=workers, pin_memory=pin_memory, prefetch_factor=PREFETCH,
                        worker_init_fn=WORKER_INIT, persistent_workers=False)
    batches = iter(loader)
    for _ in range(PREFETCH * workers + 1):
        next(batches)
    start, samples = time.perf_counter(), 0
    while time.perf_counter() - start < size["seconds"]:
        samples += len(next(batches)["image"])
    rate = samples / (time.perf_counter() - start)
    del batches
    return rate


def loader(ctx):
    """``gtav_jitter`` samples/s at each worker count; with the fastest step variant's
    samples/s (the ``step`` section), the loader cores one GPU needs."""
    size = ctx.sizes
    logging.getLogger("blindnet").setLevel(logging.WARNING)
    dataset = _dataset(ctx, size)
    rates = {}
    for workers in size["workers"]:
        rates[workers] = round(_samples_per_s(dataset, workers, size, ctx.cuda), 2)
        ctx.save_partial({"samples_per_s": rates})
    figures = {"crop": size["crop"], "image_hw": list(size["image"]), "samples_per_s": rates}
    steps = [ctx.read_section(f"step_{c['name']}") for c in STEP_CONFIGS]
    step_rates = {s["name"]: s["samples_per_s"] for s in steps if "samples_per_s" in s}
    if step_rates:
        fastest = max(step_rates, key=step_rates.get)
        per_worker = rates[min(rates)] / min(rates)
        figures.update(step_variant=fastest, step_samples_per_s=step_rates[fastest],
                       samples_per_s_per_core=round(per_worker, 2),
                       loader_cores_per_gpu=round(step_rates[fastest] / per_worker, 2))
    return figures
