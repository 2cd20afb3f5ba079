"""Data-pipeline throughput: label decoding, centroid extraction, gtav_jitter DataLoader.

    python bench/data_pipeline.py                      # defaults: workers 0 1 2, 32 samples
    python bench/data_pipeline.py --workers 0 4 8 --samples 64 --out logs/bench_data.json
    python bench/data_pipeline.py --photos             # photo-like GTAV frames, both
                                                       # --photometric paths (docs/DATA_PIPELINE.md)

Measured on generated full-size data (GTAV 1914x1052, Cityscapes 2048x1024), each against
the official approach in the same run:

* GTAV colour label -> train ids: one packed-RGB lookup (and the palette-index lookup used
  for palette PNGs) vs a masking loop over the label table's colours, written the official
  way (``(label == colour).all(axis=2)``) and as a faster channel-wise loop;
* Cityscapes labelIds -> train ids: one 256-entry lookup vs a masking loop over the ids;
* centroids of one 1024x1024 tile: three bincounts vs a per-class
  ``scipy.ndimage.center_of_mass`` loop; plus files/s of the whole cached pass (read,
  decode, centroids) on a process pool;
* ``gtav_jitter`` training samples/s at crop 768 (official options: class-uniform 0.5,
  colour jitter, blur) through a DataLoader with N workers.

``--photos`` measures the training loader on photo-like GTAV-size data instead
(``bench/photo_pipeline.py``): decode time per format and reader, samples/s per worker and
bytes per sample for ``photometric`` = ``loader`` and ``device``, loader workers per GPU.

Prints JSON and a Markdown table. Timings are medians of ``--repeats`` runs.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import photo_pipeline  # noqa: E402
from bench.common import median_seconds, report  # noqa: E402
from datasets import build_dataset  # noqa: E402
from datasets.cityscapes import decode_cityscapes_label  # noqa: E402
from datasets.gtav import decode_gtav_label  # noqa: E402
from datasets.label_codes import (  # noqa: E402
    CITYSCAPES_ID_TO_TRAINID,
    CITYSCAPES_LUT,
    apply_lut,
    decode_colour_label,
    palette_to_trainid_lut,
)
from datasets.styleshift.formats import write_cityscapes_sample, write_gtav_sample  # noqa: E402
from datasets.uniform import tile_centroids  # noqa: E402
from tests.generated_data import random_scene  # noqa: E402
from utils.cpus import available_cpus, pool_size  # noqa: E402
from utils.labels import TRAIN_COLOURS  # noqa: E402

GTAV_SIZE = (1052, 1914)  # H, W
CITYSCAPES_SIZE = (1024, 2048)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="DataLoader worker counts to time")
    parser.add_argument("--samples", type=int, default=32,
                        help="gtav_jitter samples per DataLoader timing")
    parser.add_argument("--images", type=int, default=24, help="generated GTAV images")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the small timings")
    parser.add_argument("--crop", type=int, default=768)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--photos", action="store_true",
                        help="photo-like GTAV frames, both --photometric paths (see above)")
    args = parser.parse_args()
    if args.photos and args.images == 24:
        args.images = 6  # each photo-like frame takes a few seconds to write
    return args


def colour_masking_loop(rgb):
    """The official decoding: one full-image mask per colour of the label table."""
    train_ids = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for train_id, colour in enumerate(TRAIN_COLOURS):
        train_ids[(rgb == np.array(colour)).all(axis=2)] = train_id
    return train_ids


def channel_masking_loop(rgb):
    """A faster loop (our stronger baseline): per colour, compare the channels separately."""
    train_ids = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for train_id, colour in enumerate(TRAIN_COLOURS):
        mask = (rgb[:, :, 0] == colour[0]) & (rgb[:, :, 1] == colour[1]) & (
            rgb[:, :, 2] == colour[2])
        train_ids[mask] = train_id
    return train_ids


def id_masking_loop(ids):
    """The official id decoding: one mask per entry of the 34-id table (copy, no chaining)."""
    train_ids = np.full(ids.shape, 255, dtype=np.uint8)
    for label_id in range(34):
        train_ids[ids == label_id] = CITYSCAPES_ID_TO_TRAINID.get(label_id, 255)
    return train_ids


def center_of_mass_loop(train_ids, tile):
    """The official centroid extraction: per whole tile, per class, scipy centre of mass."""
    rows = []
    for ty in range(train_ids.shape[0] // tile):
        for tx in range(train_ids.shape[1] // tile):
            window = train_ids[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile]
            for cls in range(19):
                mask = window == cls
                if mask.any():
                    cy, cx = ndimage.center_of_mass(mask)
                    rows.append((int(cx) + tx * tile, int(cy) + ty * tile, cls))
    return rows


def bench_decoding(root, repeats):
    rng = np.random.default_rng(0)
    image, train_ids = random_scene(rng, GTAV_SIZE, num_shapes=40)
    _, label_path = write_gtav_sample(root / "gtav_one", "train", "00001", image, train_ids)
    with Image.open(label_path) as label:
        indices, palette = np.asarray(label), label.getpalette()
        rgb = np.asarray(label.convert("RGB"))
    assert np.array_equal(decode_colour_label(rgb), colour_masking_loop(rgb))
    assert np.array_equal(decode_colour_label(rgb), channel_masking_loop(rgb))
    palette_decode = lambda: apply_lut(indices, palette_to_trainid_lut(palette))  # noqa: E731
    assert np.array_equal(palette_decode(), train_ids)

    def official_file():
        with Image.open(label_path) as label:
            colour_masking_loop(np.asarray(label.convert("RGB")))

    _, cs_train_ids = random_scene(rng, CITYSCAPES_SIZE, num_shapes=40)
    _, cs_path = write_cityscapes_sample(root / "cs_one", "val", "ulm", "ulm_0_0",
                                         np.zeros((*CITYSCAPES_SIZE, 3), np.uint8), cs_train_ids)
    ids = np.asarray(Image.open(cs_path))
    assert np.array_equal(apply_lut(ids, CITYSCAPES_LUT), id_masking_loop(ids))
    rows = {
        "gtav_colour_loop_ms": median_seconds(lambda: colour_masking_loop(rgb), repeats),
        "gtav_colour_channel_loop_ms": median_seconds(lambda: channel_masking_loop(rgb),
                                                      repeats),
        "gtav_colour_lut_ms": median_seconds(lambda: decode_colour_label(rgb), repeats),
        "gtav_palette_lut_ms": median_seconds(palette_decode, repeats),
        "gtav_file_official_ms": median_seconds(official_file, repeats),
        "gtav_file_ours_ms": median_seconds(lambda: decode_gtav_label(label_path), repeats),
        "cityscapes_id_loop_ms": median_seconds(lambda: id_masking_loop(ids), repeats),
        "cityscapes_id_lut_ms": median_seconds(lambda: apply_lut(ids, CITYSCAPES_LUT), repeats),
        "cityscapes_file_ours_ms": median_seconds(lambda: decode_cityscapes_label(cs_path),
                                                  repeats),
    }
    return {key: value * 1000 for key, value in rows.items()}, train_ids


def bench_centroids(train_ids, repeats):
    assert [tuple(r) for r in tile_centroids(train_ids, 1024)] == center_of_mass_loop(
        train_ids, 1024)
    return {
        "centroids_loop_ms": 1000 * median_seconds(
            lambda: center_of_mass_loop(train_ids, 1024), repeats),
        "centroids_ours_ms": 1000 * median_seconds(lambda: tile_centroids(train_ids, 1024),
                                                   repeats),
    }


def make_gtav(root, num_images):
    rng = np.random.default_rng(1)
    for index in range(num_images):
        image, train_ids = random_scene(rng, GTAV_SIZE, num_shapes=40)
        write_gtav_sample(root, "train", f"{index + 1:05d}", image, train_ids)


def bench_centroid_pass(root, cache_dir, workers):
    """Files/s of the uncached centroid pass (read + decode + centroids) on ``workers``."""
    start = time.perf_counter()
    ds = build_dataset("gtav_jitter", "train", root=root, class_uniform_pct=0.5,
                       cache_dir=cache_dir / f"pass{workers}", centroid_workers=workers)
    ds.prepare()  # the centroid pass runs here, not in the constructor
    seconds = time.perf_counter() - start
    return len(ds.samples) / seconds


def bench_loader(root, cache_dir, workers, num_samples, crop):
    ds = build_dataset("gtav_jitter", "train", root=root, crop_size=crop, color_aug=0.5,
                       gblur=True, class_uniform_pct=0.5, cache_dir=cache_dir).prepare()
    indices = [i % len(ds) for i in range(num_samples)]
    loader = DataLoader(Subset(ds, indices), batch_size=1,
                        num_workers=workers, shuffle=False)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    count = 1 + sum(1 for _ in iterator)
    return (count - 1) / (time.perf_counter() - start)


def markdown(results):
    d = results["decoding_ms"]
    c = results["centroids_ms"]
    lines = [
        "| measurement | official approach | ours | speed-up |",
        "|---|---:|---:|---:|",
        f"| GTAV colour label 1914x1052, decode array (ms) | {d['gtav_colour_loop_ms']:.1f} | "
        f"{d['gtav_colour_lut_ms']:.1f} (palette path {d['gtav_palette_lut_ms']:.1f}) | "
        f"{d['gtav_colour_loop_ms'] / d['gtav_colour_lut_ms']:.0f}x "
        f"({d['gtav_colour_loop_ms'] / d['gtav_palette_lut_ms']:.0f}x) |",
        f"| same, channel-wise masking loop (ms) | {d['gtav_colour_channel_loop_ms']:.1f} | "
        f"{d['gtav_colour_lut_ms']:.1f} | "
        f"{d['gtav_colour_channel_loop_ms'] / d['gtav_colour_lut_ms']:.0f}x |",
        f"| GTAV label file read + decode (ms) | {d['gtav_file_official_ms']:.1f} | "
        f"{d['gtav_file_ours_ms']:.1f} | "
        f"{d['gtav_file_official_ms'] / d['gtav_file_ours_ms']:.1f}x |",
        f"| Cityscapes id label 2048x1024, decode array (ms) | "
        f"{d['cityscapes_id_loop_ms']:.1f} | {d['cityscapes_id_lut_ms']:.1f} | "
        f"{d['cityscapes_id_loop_ms'] / d['cityscapes_id_lut_ms']:.0f}x |",
        f"| centroids of one 1024x1024 tile (ms) | {c['centroids_loop_ms']:.1f} | "
        f"{c['centroids_ours_ms']:.1f} | "
        f"{c['centroids_loop_ms'] / c['centroids_ours_ms']:.0f}x |",
    ]
    for workers, rate in results["centroid_pass_files_per_s"].items():
        lines.append(f"| centroid pass, {workers} pool workers (GTAV files/s) | | {rate:.1f} | |")
    for workers, rate in results["loader_samples_per_s"].items():
        lines.append(f"| gtav_jitter DataLoader crop {results['crop']}, {workers} workers "
                     f"(samples/s) | | {rate:.2f} | |")
    return "\n".join(lines)


def main():
    args = parse_args()
    if args.photos:
        with tempfile.TemporaryDirectory() as tmp:
            results = photo_pipeline.run(Path(tmp), args)
        results["cpu_count"], results["available_cpus"] = os.cpu_count(), available_cpus()
        report(results, photo_pipeline.markdown(results), args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decoding, gtav_train_ids = bench_decoding(tmp, args.repeats)
        centroids = bench_centroids(gtav_train_ids, args.repeats)
        make_gtav(tmp / "gtav", args.images)
        pool_sizes = sorted({1, pool_size(8)})
        passes = {w: bench_centroid_pass(tmp / "gtav", tmp / "cache", w) for w in pool_sizes}
        build_dataset("gtav_jitter", "train", root=tmp / "gtav", class_uniform_pct=0.5,
                      cache_dir=tmp / "cache").prepare()  # warm the cache used by the loaders
        loaders = {w: bench_loader(tmp / "gtav", tmp / "cache", w, args.samples, args.crop)
                   for w in args.workers}
    results = {
        "cpu_count": os.cpu_count(),
        "available_cpus": available_cpus(),
        "crop": args.crop,
        "decoding_ms": decoding,
        "centroids_ms": centroids,
        "speedup": {
            "gtav_colour_decode": decoding["gtav_colour_loop_ms"] / decoding["gtav_colour_lut_ms"],
            "gtav_colour_decode_vs_channel_loop": decoding["gtav_colour_channel_loop_ms"]
            / decoding["gtav_colour_lut_ms"],
            "gtav_palette_decode": decoding["gtav_colour_loop_ms"]
            / decoding["gtav_palette_lut_ms"],
            "cityscapes_id_decode": decoding["cityscapes_id_loop_ms"]
            / decoding["cityscapes_id_lut_ms"],
            "centroids": centroids["centroids_loop_ms"] / centroids["centroids_ours_ms"],
        },
        "centroid_pass_files_per_s": passes,
        "loader_samples_per_s": loaders,
    }
    report(results, markdown(results), args.out)


if __name__ == "__main__":
    main()
