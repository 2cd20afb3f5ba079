"""Entry point: see `python valid.py --help`. Implemented in the train/valid/infer issue."""

import sys

from utils.args import parse_args


def main(argv=None):
    args = parse_args("valid", argv)
    sys.exit(f"valid.py is not implemented yet (parsed {len(vars(args))} options)")


if __name__ == "__main__":
    main()
