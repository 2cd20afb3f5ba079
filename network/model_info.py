"""Parameters and FLOPs of a segmenter, counted with ``thop`` on the evaluation forward.

    python -m network.model_info --arch network.deepv3.DeepR50V3PlusD --size 768
    python -m network.model_info --arch all --size 512 1024

``gmacs`` is thop's count of multiply-accumulates (what many papers call "FLOPs");
``gflops`` = 2 x ``gmacs``. Bilinear upsampling is not counted by thop. ``params`` counts
every parameter (aux head and projection heads included, as saved in checkpoints);
``params_inference`` leaves out those training-only heads.
"""

import argparse
import json
import warnings

import torch

from network import FACTORIES, OFFICIAL_WT_LAYER, get_net
from utils.labels import NUM_CLASSES
from utils.wt_layer import as_wt_value

with warnings.catch_warnings():
    # thop still compares versions with distutils; its DeprecationWarning is noise here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import thop

TRAINING_ONLY = ("dsn", "ProjectionHead_cls_0", "ProjectionHead_cls_1", "ProjectionHead_cls_2")


def model_info(arch, crop=(768, 768), wt_layer=OFFICIAL_WT_LAYER, num_classes=NUM_CLASSES):
    """Params and GFLOPs of ``arch`` for one ``crop = (H, W)`` image in eval mode.

    Returns:
        dict with ``arch``, ``crop``, ``params``, ``params_inference``, ``gmacs``, ``gflops``.
    """
    height, width = crop
    model = get_net(arch, num_classes=num_classes, wt_layer=wt_layer, pretrained=False).eval()
    params = sum(p.numel() for p in model.parameters())
    training_only = sum(p.numel() for name in TRAINING_ONLY
                        for p in getattr(model, name).parameters())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        macs, _ = thop.profile(model, inputs=(torch.zeros(1, 3, height, width),), verbose=False)
    return {"arch": arch, "crop": [height, width], "params": params,
            "params_inference": params - training_only, "gmacs": macs / 1e9,
            "gflops": 2 * macs / 1e9}


def markdown_table(rows):
    lines = ["| arch | crop | params (M) | inference params (M) | GMACs | GFLOPs |",
             "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['arch']} | {row['crop'][0]}x{row['crop'][1]} | "
                     f"{row['params'] / 1e6:.3f} | {row['params_inference'] / 1e6:.3f} | "
                     f"{row['gmacs']:.2f} | {row['gflops']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="network.deepv3.DeepR50V3PlusD",
                        help="factory name, or 'all' for every factory")
    parser.add_argument("--size", type=int, nargs="+", default=[768],
                        help="input size: one value (square) or H W")
    parser.add_argument("--wt_layer", type=as_wt_value, nargs=7, default=list(OFFICIAL_WT_LAYER))
    parser.add_argument("--num_classes", type=int, default=NUM_CLASSES)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    opts = parser.parse_args(argv)
    if len(opts.size) not in (1, 2) or min(opts.size) <= 0:
        parser.error(f"--size takes one or two positive ints, got {opts.size}")
    crop = (opts.size[0], opts.size[-1])
    archs = list(FACTORIES) if opts.arch == "all" else [opts.arch]
    try:
        rows = [model_info(arch, crop, opts.wt_layer, opts.num_classes) for arch in archs]
    except ValueError as error:  # a bad --arch / --wt_layer, or a --size the trunk cannot take
        message = str(error).splitlines()[0]
        if "spatial element" in message:  # an instance norm met a 1x1 map (in eval too)
            message = (f"--size {crop[0]} {crop[1]} is too small for --arch {opts.arch} "
                       f"with --wt_layer {' '.join(map(str, opts.wt_layer))}: {message}")
        parser.error(message)
    print(json.dumps(rows, indent=2) if opts.json else markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
