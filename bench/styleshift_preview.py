"""Preview of the style-shift benchmark: a few scenes (rows) in every style (columns).

The first column is the ground truth in the Cityscapes palette; the other columns render the
same layout in each style, so only appearance changes along a row. Also prints the render
time per layout and per style as JSON and a Markdown table.

Usage: python bench/styleshift_preview.py [--out logs/styleshift_preview.png] [--scenes 4]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.labels import colorize  # noqa: E402
from datasets.styleshift import STYLES, render_scene, render_style  # noqa: E402
from datasets.styleshift.benchmark import layout_rng, style_rng  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="logs/styleshift_preview.png", help="PNG to write")
    parser.add_argument("--scenes", type=int, default=4, help="number of scenes (rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--styles", nargs="*", default=None,
                        help=f"styles to show (default all: {' '.join(STYLES)})")
    return parser.parse_args()


def with_caption(image, text):
    """``image`` with a caption bar above it."""
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def main():
    args = parse_args()
    styles = list(STYLES) if args.styles is None else args.styles
    rows, scene_times, style_times = [], [], {name: [] for name in styles}
    for index in range(args.scenes):
        start = time.perf_counter()
        layout, train_ids = render_scene(layout_rng(args.seed, "preview", index), args.size)
        scene_times.append(time.perf_counter() - start)
        tiles = [colorize(train_ids)]
        for name in styles:
            start = time.perf_counter()
            tiles.append(render_style(layout, name, style_rng(args.seed, "preview", index, name)))
            style_times[name].append(time.perf_counter() - start)
        if index == 0:
            tiles = [with_caption(tile, caption)
                     for tile, caption in zip(tiles, ["ground truth"] + styles)]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], 1))
    grid = np.concatenate([np.pad(row, ((0, 4), (0, 0), (0, 0)), constant_values=255)
                           for row in rows], axis=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid[..., ::-1])

    timings = {"size": list(args.size), "scenes": args.scenes,
               "layout_ms": 1000 * float(np.mean(scene_times)),
               "style_ms": {name: 1000 * float(np.mean(t)) for name, t in style_times.items()},
               "preview": str(out)}
    print(json.dumps(timings, indent=2))
    print("\n| step | ms per image |\n|---|---:|")
    print(f"| layout (render_scene) | {timings['layout_ms']:.1f} |")
    for name, ms in timings["style_ms"].items():
        print(f"| style `{name}` | {ms:.1f} |")


if __name__ == "__main__":
    main()
