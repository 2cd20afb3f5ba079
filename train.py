"""Entry point: see `python train.py --help`. Implemented in the train/valid/infer issue."""

import sys

from utils.args import parse_args


def main(argv=None):
    args = parse_args("train", argv)
    sys.exit(f"train.py is not implemented yet (parsed {len(vars(args))} options)")


if __name__ == "__main__":
    main()
