"""Write colourized predictions of a checkpoint (DECISIONS.md D17, D18).

    python infer.py --snapshot best.pth --val_dataset cityscapes bdd-100k --mod blindnet
    python infer.py --snapshot best.pth --images 'photos/*.jpg' --overlay --results out

For every image: ``<results>/<mod>/<dataset>/<stem>_color.png`` (Cityscapes palette),
``<stem>_trainid.png`` (8-bit train ids) and, with ``--overlay``, ``<stem>_overlay.png``.
``--images`` runs on a folder or glob of arbitrary images (no labels needed); its outputs go
to ``<results>/<mod>/images``. ``--sliding_window`` bounds memory on very large images;
``--eval_scales`` / ``--eval_flip`` predict with test-time augmentation, as valid.py does.

Output names never collide: inputs that share a stem (``coffee.png``, ``coffee.jpg``) keep
their extension (``coffee.png_color.png``, ``coffee.jpg_color.png``; see
``datasets.image_folder.unique_output_stems``). Images smaller than the network needs are
zero-padded and the prediction cropped back (``engine.evaluation.forward_padded``); 16-bit
and grayscale inputs are scaled to 8-bit RGB. The log counts the files and images written.
"""

from pathlib import Path

import torch
from tqdm import tqdm

import cli
import datasets
from datasets.image_folder import unique_output_stems
from engine.evaluation import ShardSampler, predict_logits
from engine.protocols import inference_settings
from engine.tta import tta_logits
from utils import dist as dist_utils
from utils.labels import colorize
from utils.logging import setup_logging
from utils.precision import autocast
from utils.viz import denormalize, overlay, save_png


def sources(args):
    """(output folder name, dataset, (mean, std) of its inputs) for everything to segment."""
    if args.images:
        dataset = datasets.ImageFolder(args.images)
        yield "images", dataset, dataset.normalization
        return
    roots, options = cli.root_overrides(args), cli.eval_dataset_options(args)
    for name in args.val_dataset:
        base, dataset = datasets.build_eval_dataset(
            name, roots[datasets.parse_dataset_name(name)[0]], **options)
        yield base, dataset, dataset.normalization


def output_stems(dataset):
    """(item names, one collision-free output stem per item) of an ImageFolder or dataset."""
    if isinstance(dataset, datasets.ImageFolder):
        names, paths = [p.stem for p in dataset.paths], dataset.paths
    else:
        names, paths = [s.name for s in dataset.samples], [s.image for s in dataset.samples]
    return names, unique_output_stems(names, paths)


@torch.no_grad()
def main(argv=None):
    """Run inference; returns the number of images written (over all ranks)."""
    args = cli.parse_args("infer", argv)
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    torch.backends.cudnn.benchmark = True  # few input shapes: cuDNN times its kernels once each
    logger = setup_logging(state.rank, cli.run_dir(args) / "infer.log")
    model, _, _ = cli.load_eval_model(args, state.device, logger)
    inference = inference_settings(args.eval_protocol, args.sliding_window, args.crop_size,
                                   args.stride)
    out_root = Path(args.results) / (args.mod or args.exp)
    try:  # every source up front: a bad root fails before any output is written
        todo = list(sources(args))
    except (datasets.DatasetLayoutError, FileNotFoundError) as error:  # names root / --images
        raise SystemExit(f"infer.py: error: {error}") from None
    written = 0
    for folder, dataset, (mean, std) in todo:
        out_dir = out_root / folder
        n = len(dataset) if args.max_val_images is None else min(len(dataset),
                                                                  args.max_val_images)
        names, stems = output_stems(dataset)
        renamed = [stem for stem, name in zip(stems[:n], names) if stem != name]
        if renamed and state.is_main:
            logger.info(f"{folder}: {len(renamed)} inputs share their stem with another; "
                        f"their outputs keep the source extension, e.g. {renamed[0]}_color.png")
        counts = torch.zeros(2, dtype=torch.int64, device=state.device)  # images, files
        shard = ShardSampler(n, state.rank, state.world_size)
        for index in tqdm(shard, desc=f"infer {folder}", disable=not state.is_main):
            image = dataset[index]["image"]
            batch = image.unsqueeze(0).to(state.device)
            with autocast(state.device, args.amp):
                logits = tta_logits(lambda inputs: predict_logits(model, inputs, **inference),
                                    batch, args.eval_scales, args.eval_flip)
            pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            outputs = {"color": colorize(pred), "trainid": pred}
            if args.overlay:
                outputs["overlay"] = overlay(denormalize(image, mean, std), pred)
            for kind, array in outputs.items():
                save_png(array, out_dir / f"{stems[index]}_{kind}.png")
            counts += torch.tensor([1, len(outputs)], device=state.device)
        dist_utils.all_reduce_sum(counts)
        images, files = (int(v) for v in counts.tolist())
        logger.info(f"{folder}: wrote {files} files for {images} of {n} images to {out_dir}")
        written += images
    dist_utils.cleanup()
    return written


if __name__ == "__main__":
    main()
