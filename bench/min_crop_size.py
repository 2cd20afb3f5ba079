"""Smallest training crop every ``--arch`` accepts (measured, feeds utils/flag_checks.py).

    python bench/min_crop_size.py                 # every factory, crops 1..160, batch 2
    python bench/min_crop_size.py --max_crop 96 --arch DeepR18V3PlusD

For each factory and each ``--wt_layer`` (none / the official 0 0 1 1 1 0 0) runs one
training-mode forward of two views with embeddings plus a backward, batch 2, for every
square crop size, and prints the crops that fail with the error PyTorch gives. Prints JSON and
a Markdown table: the smallest crop from which every larger one works.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import network  # noqa: E402

WT_LAYERS = {"none": [0] * 7, "official": [0, 0, 1, 1, 1, 0, 0]}


def try_crop(model, crop, batch):
    images = torch.randn(batch, 3, crop, crop)
    try:
        out = model(images, images.clone(), with_embeddings=True)
        (out.original.logits.sum() + out.augmented.logits.sum()).backward()
        return None
    except (RuntimeError, ValueError) as exc:
        return str(exc).splitlines()[0][:90]


def measure(arch, wt_layer, max_crop, batch):
    torch.manual_seed(0)
    model = network.get_net(arch, 19, wt_layer, pretrained=False).train()
    failures = {}
    for crop in range(1, max_crop + 1):
        error = try_crop(model, crop, batch)
        if error is not None:
            failures[crop] = error
        model.zero_grad(set_to_none=True)
    smallest = max(failures, default=0) + 1
    return {"arch": arch, "wt_layer": wt_layer, "smallest_ok": smallest,
            "errors": sorted(set(failures.values()))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", default=list(network.FACTORIES))
    parser.add_argument("--max_crop", type=int, default=160)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(arch, wt, args.max_crop, args.batch)
            for arch in args.arch for wt in WT_LAYERS.values()]
    print(json.dumps(rows, indent=2))
    print("| arch | wt_layer | smallest crop that works (and every larger one) | errors below |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['arch']} | {' '.join(map(str, row['wt_layer']))} | {row['smallest_ok']} "
              f"| {'; '.join(row['errors'])} |")


if __name__ == "__main__":
    main()
