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

The model is the one the checkpoint records (``--arch``, ``--wt_layer``, ``--norm_semantics``,
``--norm_layer``, ``--head_norm_layer``; official checkpoints need the flags). An unreadable
input is named and skipped, and the run exits 1 after writing all the others.
"""

from pathlib import Path

import torch

import cli
import datasets
from datasets.image_folder import unique_output_stems
from engine.evaluation import ShardSampler, predict_logits
from engine.inputs import model_images
from engine.protocols import inference_settings
from engine.tta import tta_logits
from utils import dist as dist_utils
from utils.labels import colorize
from utils.logging import setup_logging
from utils.output import ensure_writable_dir, writing
from utils.precision import autocast
from utils.preemption import exit_on_second_signal
from utils.progress import progress
from utils.viz import overlay, save_png


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
    """Run inference; returns the number of images written (over all ranks).

    Every readable image is written; each unreadable one is named, and the run then exits 1
    (``infer.py: error: ...``) after writing the others. An output that cannot be written
    stops the run at once, naming it (docs/FAILURES.md).
    """
    args = cli.parse_args("infer", argv)
    with exit_on_second_signal(), cli.one_line_errors("infer"):
        return run_inference(args)


def run_inference(args):
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    torch.backends.cudnn.benchmark = True  # few input shapes: cuDNN times its kernels once each
    if state.is_main:
        ensure_writable_dir(cli.run_dir(args), "--ckpt")
    with writing(cli.run_dir(args) / "infer.log", "--ckpt"):
        logger = setup_logging(state.rank, cli.run_dir(args) / "infer.log")
    model, _, _ = cli.load_eval_model(args, state.device, logger)
    try:  # every source up front: a bad root fails before any output is written
        todo = list(sources(args))
    except (datasets.DatasetLayoutError, FileNotFoundError) as error:  # names root / --images
        raise SystemExit(f"infer.py: error: {error}") from None
    out_root = Path(args.results) / (args.mod or args.exp)
    if state.is_main:  # an unwritable output fails before any image is processed
        ensure_writable_dir(out_root, "--results")
    written, failed = 0, []
    for folder, dataset, normalization in todo:
        images, unreadable = infer_source(args, model, state, folder, dataset, normalization,
                                          out_root / folder, logger)
        written += images
        failed += unreadable
    dist_utils.cleanup()
    if failed:
        raise SystemExit(f"infer.py: error: {len(failed)} input(s) could not be read and have "
                         f"no outputs (the others were written): {'; '.join(failed[:3])}"
                         + (" ..." if len(failed) > 3 else ""))
    return written


def infer_source(args, model, state, folder, dataset, normalization, out_dir, logger):
    """Predict and write every image of one source (this rank's shard).

    Returns ``(images written over all ranks, messages of the unreadable inputs)``.
    """
    n = len(dataset) if args.max_val_images is None else min(len(dataset), args.max_val_images)
    names, stems = output_stems(dataset)
    renamed = [stem for stem, name in zip(stems[:n], names) if stem != name]
    if renamed and state.is_main:
        logger.info(f"{folder}: {len(renamed)} inputs share their stem with another; "
                    f"their outputs keep the source extension, e.g. {renamed[0]}_color.png")
    counts = torch.zeros(2, dtype=torch.int64, device=state.device)  # images, files
    unreadable = []
    shard = ShardSampler(n, state.rank, state.world_size)
    for index in progress(shard, desc=f"infer {folder}", disable=not state.is_main):
        try:
            image = dataset[index]["image"]
        except datasets.DatasetReadError as error:  # named; the other images go on
            unreadable.append(str(error))
            logger.error(f"{folder}: {error}; skipped")
            continue
        files = write_prediction(args, model, state, image, normalization,
                                 out_dir, stems[index])
        counts += torch.tensor([1, files], device=state.device)
    dist_utils.all_reduce_sum(counts)
    unreadable = [m for rank_messages in dist_utils.all_gather_object(unreadable)
                  for m in rank_messages]
    images, files = (int(v) for v in counts.tolist())
    logger.info(f"{folder}: wrote {files} files for {images} of {n} images to {out_dir}"
                + (f"; {len(unreadable)} could not be read" if unreadable else ""))
    return images, unreadable


def write_prediction(args, model, state, image, normalization, out_dir, stem):
    """Predict one uint8 image (3, H, W), normalised on the device with ``normalization``
    (``(mean, std)``); write its PNGs; returns how many."""
    batch = model_images(image.unsqueeze(0), state.device, *normalization)
    inference = inference_settings(args.eval_protocol, args.sliding_window, args.crop_size,
                                   args.stride)  # --eval_protocol rein: Rein's windows
    with autocast(state.device, args.amp):
        logits = tta_logits(lambda inputs: predict_logits(model, inputs, **inference),
                            batch, args.eval_scales, args.eval_flip)
    pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
    outputs = {"color": colorize(pred), "trainid": pred}
    if args.overlay:
        outputs["overlay"] = overlay(image.permute(1, 2, 0).numpy(), pred)
    for kind, array in outputs.items():
        save_png(array, out_dir / f"{stem}_{kind}.png")
    return len(outputs)


if __name__ == "__main__":
    main()
