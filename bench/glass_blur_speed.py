"""glass_blur: ours (transforms/glass_blur.py) against the ``imagecorruptions`` original.

    python bench/glass_blur_speed.py                 # 256x512 and 512x1024, severities 1..5
    python bench/glass_blur_speed.py --sizes 1024x2048 --severities 3

Both run in this process, one after the other, on the same image and seed (the machine is
shared: the ratio is the number to read). Prints the seconds per call, the ratio, and
whether the outputs are bit-identical.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transforms import corruptions  # noqa: E402  (needs the repository root on sys.path)
from transforms.glass_blur import glass_blur  # noqa: E402


def timed(function, *args):
    np.random.seed(0)
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"], metavar="HxW")
    parser.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)
    original = corruptions._load_package().corruptions.glass_blur
    gaussian = original.__globals__["gaussian"]
    print("| image | severity | package s | ours s | speed-up | identical |")
    print("|---|---:|---:|---:|---:|---|")
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        for severity in args.severities:
            t_pkg, expected = timed(original, image, severity)
            t_ours, ours = timed(glass_blur, image, severity, gaussian)
            print(f"| {size} | {severity} | {t_pkg:.2f} | {t_ours:.2f} | {t_pkg / t_ours:.1f}x "
                  f"| {np.array_equal(ours, expected)} |", flush=True)


if __name__ == "__main__":
    main()
