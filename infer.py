"""Write colourized predictions of a checkpoint (DECISIONS.md D17, D18).

    python infer.py --snapshot best.pth --val_dataset cityscapes bdd-100k --mod blindnet
    python infer.py --snapshot best.pth --images 'photos/*.jpg' --overlay --results out

For every image: ``<results>/<mod>/<dataset>/<stem>_color.png`` (Cityscapes palette),
``<stem>_trainid.png`` (8-bit train ids) and, with ``--overlay``, ``<stem>_overlay.png``.
``--images`` runs on a folder or glob of arbitrary images (no labels needed); its outputs go
to ``<results>/<mod>/images``. ``--sliding_window`` bounds memory on very large images.
"""

from pathlib import Path

import torch
from tqdm import tqdm

import datasets
from config import cfg
from transforms import eval_normalization
from utils import dist as dist_utils
from utils.args import parse_args
from utils.evaluation import ShardSampler, load_eval_model, predict_logits
from utils.logging import setup_logging
from utils.precision import autocast
from utils.viz import colorize, denormalize, overlay, save_png


def sources(args):
    """(output folder name, dataset, (mean, std) of its inputs) for everything to segment."""
    if args.images:
        yield "images", datasets.ImageFolder(args.images), (cfg.MEAN, cfg.STD)
        return
    for name in args.val_dataset:
        base, dataset = datasets.build_eval_dataset(name, args)
        yield base, dataset, eval_normalization(base, args.eval_protocol)


@torch.no_grad()
def main(argv=None):
    args = parse_args("infer", argv)
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    logger = setup_logging(state.rank, Path(args.ckpt) / args.date / args.exp / "infer.log")
    model = load_eval_model(args, state.device, logger)
    out_root = Path(args.results) / (args.mod or args.exp)
    written = 0
    for folder, dataset, (mean, std) in sources(args):
        out_dir = out_root / folder
        n = len(dataset) if args.max_val_images is None else min(len(dataset),
                                                                  args.max_val_images)
        shard = ShardSampler(n, state.rank, state.world_size)
        for index in tqdm(shard, desc=f"infer {folder}", disable=not state.is_main):
            item = dataset[index]
            image, name = item[0], item[-1]
            batch = image.unsqueeze(0).to(state.device)
            with autocast(state.device, args.amp):
                logits = predict_logits(model, batch, args.sliding_window, args.crop_size,
                                        args.stride)
            pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            stem = Path(name).stem if "." in name else name
            save_png(colorize(pred), out_dir / f"{stem}_color.png")
            save_png(pred, out_dir / f"{stem}_trainid.png")
            if args.overlay:
                save_png(overlay(denormalize(image, mean, std), pred),
                         out_dir / f"{stem}_overlay.png")
            written += 1
        logger.info(f"{folder}: wrote predictions of {len(shard)} images to {out_dir}")
    dist_utils.cleanup()
    return written


if __name__ == "__main__":
    main()
