"""Command line: ``python -m datasets.styleshift --root data/styleshift --seed 0 ...``."""

import argparse
import json
import sys

from config import data_root
from utils.output import describe

from .benchmark import generate_benchmark
from .styles import STYLES, TARGET_STYLES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m datasets.styleshift",
        description="Generate the style-shift benchmark: source style in GTAV format, unseen "
                    "target styles in Cityscapes / BDD-100K format. Cached: rerunning with "
                    "the same parameters does nothing.")
    parser.add_argument("--root", default=str(data_root() / "styleshift"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--n_train", type=int, default=400, help="source training images")
    parser.add_argument("--n_val", type=int, default=50, help="source validation images")
    parser.add_argument("--n_target", type=int, default=50, help="images per target style")
    parser.add_argument("--styles", nargs="+", default=None, choices=TARGET_STYLES,
                        metavar="STYLE",
                        help=f"target styles (default all: {' '.join(TARGET_STYLES)})")
    parser.add_argument("--bdd_style", default=None,
                        help="target style written in BDD-100K format (default: night, when "
                             "it is among --styles; 'none': all Cityscapes)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: CPU cores, at most 8; 1: no pool)")
    return parser.parse_args(argv)


def main(argv=None):
    # this tool's entry point: the namespace becomes plain arguments right here
    opts = parse_args(argv)
    bdd_style = "night" if opts.bdd_style is None else opts.bdd_style
    bdd_style = None if bdd_style.lower() == "none" else bdd_style
    if opts.bdd_style not in (None, "none") and opts.styles is not None \
            and opts.bdd_style not in opts.styles:  # given explicitly: never dropped silently
        print(f"python -m datasets.styleshift: error: --bdd_style {opts.bdd_style} is not "
              f"among --styles {' '.join(opts.styles)}", file=sys.stderr)
        return 2
    try:
        manifest = generate_benchmark(opts.root, seed=opts.seed, size=opts.size,
                                      n_train=opts.n_train, n_val=opts.n_val,
                                      n_target=opts.n_target, target_styles=opts.styles,
                                      bdd_style=bdd_style, workers=opts.workers)
    except (ValueError, OSError) as error:
        if isinstance(error, ValueError) or error.errno is None:  # a bad value or --root: 2
            print(f"python -m datasets.styleshift: error: {error}", file=sys.stderr)
            return 2
        # --root read-only, full, or a file where a folder must be: named, exit 1
        print(f"python -m datasets.styleshift: error: {describe(opts.root, '--root', error)}",
              file=sys.stderr)
        return 1
    summary = {"root": manifest["root"], "seconds": manifest["seconds"],
               "source": {k: manifest["source"][k] for k in ("dataset", "root", "splits")},
               "targets": {name: {k: entry[k] for k in ("dataset", "root", "count")}
                           for name, entry in manifest["targets"].items()},
               "styles": {name: STYLES[name].description for name in STYLES}}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
