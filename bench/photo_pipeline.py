"""``bench/data_pipeline.py --photos``: the training loader on photo-like GTAV-size data.

Procedural scenes compress to small PNGs that decode far faster than real frames, so this
part writes GTAV-format data made of natural photographs (scikit-image's sample photos,
composed to 1914x1052 with sensor noise: PNGs of about 3.7 MB, like real GTAV frames;
``tests/generated_data.py``) and measures, on it:

* decode time per format (PNG as written, and the same image as a JPEG) and reader (PIL,
  OpenCV, torchvision.io), in CPU milliseconds, and whether each gives PIL's pixels;
* ``gtav_jitter`` training samples per second per loader worker, at crop 768 with the
  official options (class-uniform 0.5, colour jitter 0.5, blur), for ``photometric`` =
  ``loader`` and ``device``: items made in-process and timed in CPU seconds (one worker =
  one core; on a shared machine wall time swings with the load, CPU time does not);
  also wall-clock DataLoader rates for ``--workers``;
* bytes per sample crossing to the device (and before: two float32 views, an int64 label);
* loader cores per GPU: a GPU's step rate over one worker's rate. Without a GPU the step
  rate is an estimate from FLOPs (labelled so): the step's FLOPs over an assumed sustained
  throughput.
"""

import time
import warnings

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset, default_collate

from bench.common import median_seconds
from datasets import build_dataset
from datasets.readers import read_rgb_image, single_threaded_opencv
from datasets.styleshift.formats import write_gtav_sample
from tests.generated_data import photo_canvas, random_scene, sample_photos

GTAV_SIZE = (1052, 1914)
# The GPU estimate: R50-OS16 forward of one 768x768 view (``python -m network.model_info
# --arch network.deepv3.DeepR50V3PlusD --size 768``: 313 GFLOPs), the official batch of 4
# per view, a backward of about twice the forward, and sustained (not peak) H100 rates for
# bf16 autocast and for fp32 (TF32 matmuls): 40 and 120 ms per step.
GPU_ESTIMATE = {"gflops_per_view_forward": 313.0, "batch_per_view": 4,
                "sustained_tflops": {"bf16": 190.0, "fp32": 62.0}}


def make_photo_gtav(root, num_images, seed=0, size=GTAV_SIZE):
    """``num_images`` GTAV training pairs of photo canvases (``size``: H, W); returns one
    image's PNG path."""
    rng, photos = np.random.default_rng(seed), sample_photos()
    first = None
    for index in range(num_images):
        _, train_ids = random_scene(rng, size, num_shapes=40)
        image = photo_canvas(rng, size, photos=photos)
        path, _ = write_gtav_sample(root, "train", f"{index + 1:05d}", image, train_ids)
        first = first or path
    return first


def _cpu_ms(function, repeats):
    return 1000 * median_seconds(function, repeats, clock=time.process_time)


def decode_times(png_path, repeats):
    """format -> reader -> {"cpu_ms", "equals_pil"}, for the PNG and a JPEG (quality 90)."""
    from torchvision import io as tv_io

    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
    jpg_path = png_path.with_suffix(".jpg")
    Image.open(png_path).save(jpg_path, quality=90)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    readers = {
        "PIL": lambda path: np.asarray(Image.open(path).convert("RGB")),
        "OpenCV": lambda path: cv2.cvtColor(cv2.imdecode(np.fromfile(path, np.uint8), flags),
                                            cv2.COLOR_BGR2RGB),
        "torchvision.io": lambda path: tv_io.decode_image(
            tv_io.read_file(str(path)), mode=tv_io.ImageReadMode.RGB).permute(1, 2, 0).numpy(),
        "ours (read_rgb_image)": lambda path: np.asarray(read_rgb_image(path)),
    }
    results = {}
    for name, path in (("PNG", png_path), ("JPEG", jpg_path)):
        reference = readers["PIL"](path)
        results[name] = {"file_mb": path.stat().st_size / 1e6}
        for reader, read in readers.items():
            results[name][reader] = {
                "cpu_ms": _cpu_ms(lambda: read(path), repeats),
                "equals_pil": bool(np.array_equal(read(path), reference))}
    return results


def _train_set(root, cache_dir, crop, photometric):
    return build_dataset("gtav_jitter", "train", root=root, crop_size=crop, color_aug=0.5,
                         gblur=True, class_uniform_pct=0.5, cache_dir=cache_dir,
                         photometric=photometric).prepare()


def bytes_per_sample(item):
    """Bytes of the tensors of one item (what is pinned and copied to the device)."""
    batch = default_collate([{k: v for k, v in item.items() if k != "name"}])
    return sum(t.numel() * t.element_size() for t in batch.values())


def per_worker(root, cache_dir, crop, photometric, samples):
    """One worker's rate: items made in this process, CPU and wall seconds per item."""
    dataset = _train_set(root, cache_dir, crop, photometric)
    dataset[0]  # warm-up (imports, caches)
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(samples):
        dataset[index % len(dataset)]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"samples_per_cpu_s": samples / cpu, "samples_per_wall_s": samples / wall,
            "bytes_per_sample": bytes_per_sample(dataset[0])}


def loader_wall_rate(root, cache_dir, crop, photometric, workers, samples):
    """Wall-clock samples/s through a DataLoader with ``workers`` workers (batch 1)."""
    dataset = _train_set(root, cache_dir, crop, photometric)
    if workers:
        single_threaded_opencv()
    loader = DataLoader(Subset(dataset, [i % len(dataset) for i in range(samples + workers)]),
                        batch_size=1, num_workers=workers)
    iterator = iter(loader)
    for _ in range(max(1, workers)):
        next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    count = sum(1 for _ in iterator)
    return count / (time.perf_counter() - start)


def gpu_estimate():
    """Estimated two-view samples/s of one H100 per precision (FLOPs / sustained rate)."""
    e = GPU_ESTIMATE
    step_tflop = 3 * 2 * e["batch_per_view"] * e["gflops_per_view_forward"] / 1000
    return {precision: {"step_ms": 1000 * step_tflop / tflops,
                        "samples_per_s": e["batch_per_view"] * tflops / step_tflop}
            for precision, tflops in e["sustained_tflops"].items()}


def run(tmp, args):
    """The whole ``--photos`` measurement; returns the JSON-able results."""
    torch.set_num_threads(1)  # a DataLoader worker's setting
    single_threaded_opencv()
    png = make_photo_gtav(tmp / "photo_gtav", args.images)
    cache = tmp / "photo_cache"
    _train_set(tmp / "photo_gtav", cache, args.crop, "loader")  # centroids, cached
    paths = {mode: per_worker(tmp / "photo_gtav", cache, args.crop, mode, args.samples)
             for mode in ("loader", "device")}
    crop = args.crop
    results = {
        "crop": crop, "images": args.images, "samples": args.samples,
        "decode": decode_times(png, args.repeats), "per_worker": paths,
        "float32_bytes_per_sample": 2 * 3 * crop * crop * 4 + crop * crop * 8,
        "dataloader_wall_samples_per_s": {
            mode: {w: loader_wall_rate(tmp / "photo_gtav", cache, crop, mode, w, args.samples)
                   for w in args.workers} for mode in ("loader", "device")},
        "gpu_estimate": {"assumptions": GPU_ESTIMATE, "h100": gpu_estimate()},
    }
    rate = paths["device"]["samples_per_cpu_s"]
    results["loader_workers_per_gpu"] = {
        precision: row["samples_per_s"] / rate
        for precision, row in results["gpu_estimate"]["h100"].items()}
    return results


def markdown(results):
    """The tables of docs/DATA_PIPELINE.md."""
    lines = ["| decode, one 1914x1052 photo-like image (CPU ms) | file MB | PIL | OpenCV | "
             "torchvision.io | ours |", "|---|---:|---:|---:|---:|---:|"]
    for fmt, row in results["decode"].items():
        cells = [f"{row[r]['cpu_ms']:.1f}" + ("" if row[r]["equals_pil"] else " (differs)")
                 for r in ("PIL", "OpenCV", "torchvision.io", "ours (read_rgb_image)")]
        lines.append(f"| {fmt} | {row['file_mb']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", f"| gtav_jitter crop {results['crop']}, official options | samples/s per "
              "worker (CPU time) | same, wall | MB per sample to the device |",
              "|---|---:|---:|---:|"]
    for mode, row in results["per_worker"].items():
        lines.append(f"| photometric={mode} | {row['samples_per_cpu_s']:.1f} | "
                     f"{row['samples_per_wall_s']:.1f} | {row['bytes_per_sample'] / 1e6:.2f} |")
    lines.append(f"| before (float32 views, int64 label) | | | "
                 f"{results['float32_bytes_per_sample'] / 1e6:.2f} |")
    lines += ["", "| one H100, R50-OS16 BlindNet, batch 4 per view (ESTIMATE from FLOPs) | "
              "step ms | two-view samples/s | device-path loader workers per GPU |",
              "|---|---:|---:|---:|"]
    for precision, row in results["gpu_estimate"]["h100"].items():
        lines.append(f"| {precision} | {row['step_ms']:.0f} | {row['samples_per_s']:.0f} | "
                     f"{results['loader_workers_per_gpu'][precision]:.1f} |")
    return "\n".join(lines)
