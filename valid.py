"""Evaluate a checkpoint on every ``--val_dataset`` (mIoU, per-class IoU, pixel accuracy).

    python valid.py --snapshot logs/ckpt/0326/exp/best_cityscapes.pth \\
        --val_dataset cityscapes bdd100k mapillary acdc dark_zurich foggy_cityscapes
    python valid.py --snapshot official.pth --arch network.deepv3.DeepR50V3PlusD \\
        --wt_layer 0 0 1 1 1 0 0 --val_dataset cityscapes      # files that record no model
    python valid.py ... --eval_scales 0.5 0.75 1.0 1.25 1.5 1.75 --eval_flip   # TTA
    python valid.py ... --corruptions all --severities 1 2 3 4 5              # Cityscapes-C
    torchrun --nproc_per_node 2 valid.py ...        # each rank evaluates a shard

Writes ``results.json``, ``results.md`` and ``confusion_<dataset>.png`` to
``<ckpt>/<date>/<exp>/`` (DECISIONS.md D19). The model is the one the checkpoint records
(``--arch``, ``--wt_layer``, ``--norm_semantics``, ``--norm_layer``, ``--head_norm_layer``; a
contradicting flag is refused); official
checkpoints, which record none, load too with the flags (D15).
"""

import torch

import cli
import datasets
from engine.evaluation import (build_eval_loader, evaluate, format_table,
                               inference_description, write_results)
from engine.protocols import inference_settings
from engine.report import results_extra, training_run
from engine.robustness import corruption_sweep
from utils import dist as dist_utils
from utils.checkpoint import CheckpointError
from utils.labels import CLASS_NAMES, NUM_CLASSES
from utils.logging import setup_logging
from utils.output import ensure_writable_dir, writing
from utils.preemption import exit_on_second_signal
from utils.viz import confusion_matrix_png


def main(argv=None):
    """``python valid.py ARGV`` in-process; returns {dataset: result}. Failures exit with one
    ``valid.py: error: ...`` line (docs/FAILURES.md)."""
    args = cli.parse_args("valid", argv)
    with exit_on_second_signal(), cli.one_line_errors("valid"):
        return evaluate_checkpoint(args)


def evaluate_checkpoint(args):
    """Evaluate ``--snapshot`` on every ``--val_dataset``; write the results (rank 0)."""
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    torch.backends.cudnn.benchmark = True  # few input shapes: cuDNN times its kernels once each
    out_dir = cli.run_dir(args)
    if state.is_main:  # a results folder that cannot be written fails now, not at the end
        ensure_writable_dir(out_dir, "--ckpt")
    with writing(out_dir / "valid.log", "--ckpt"):
        logger = setup_logging(state.rank, out_dir / "valid.log")
    if not args.val_dataset:
        raise SystemExit("valid.py needs at least one --val_dataset name")
    # Loaded once here: the model and results.json's training_run both come from it.
    try:  # Rein's released files too (network.vfm archs)
        checkpoint = cli.read_snapshot(args) if args.snapshot else None
    except (CheckpointError, FileNotFoundError) as error:  # the message names the file
        raise SystemExit(f"valid.py: error: {error}") from None
    model, norm_semantics, trained_norm_semantics = cli.load_eval_model(
        args, state.device, logger, checkpoint=checkpoint)
    inference = inference_settings(args.eval_protocol, args.sliding_window, args.crop_size,
                                   args.stride)
    workers = 2 if args.num_workers is None else args.num_workers
    roots, options = cli.root_overrides(args), cli.eval_dataset_options(args)
    tta = {"scales": tuple(args.eval_scales), "flip": args.eval_flip}  # test-time augmentation

    def run(dataset, desc):
        loader = build_eval_loader(dataset, args.bs_mult_val, workers, args.max_val_images,
                                   datasets.worker_init_fn)
        return evaluate(model, loader, state.device, NUM_CLASSES, amp=args.amp, desc=desc,
                        **inference, **tta)

    results, sweeps = {}, {}
    for name in args.val_dataset:
        try:
            base, dataset = datasets.build_eval_dataset(
                name, roots[datasets.parse_dataset_name(name)[0]], **options)
        except datasets.DatasetLayoutError as error:  # the message shows the expected tree
            raise SystemExit(f"valid.py: error: {error}") from None
        result = results[base] = run(dataset, f"valid {base}")
        logger.info(f"{base}: mIoU {100 * result['miou']:.2f}, pixel acc "
                    f"{100 * result['pixel_acc']:.2f} over {result['images']} images "
                    f"(protocol {args.eval_protocol})"
                    + (f"; {result['empty_labels']} of them have no valid label pixel, e.g. "
                       f"{', '.join(result['empty_label_names'])}"
                       if result["empty_labels"] else ""))
        if args.corruptions:
            sweeps[base] = _corruption_sweep(run, base, dataset, args, result["miou"], logger)

    if state.is_main:
        extra = results_extra(results, CLASS_NAMES, training=training_run(checkpoint),
                              foggy_beta=args.foggy_beta, corruptions=sweeps,
                              inference=inference_description(**inference), **tta)
        json_path, md_path = write_results(results, out_dir, CLASS_NAMES, args.eval_protocol,
                                           args.snapshot, norm_semantics,
                                           trained_norm_semantics, extra=extra)
        for base, result in results.items():
            confusion_matrix_png(result["hist"], CLASS_NAMES, out_dir / f"confusion_{base}.png",
                                 title=f"{base} ({args.eval_protocol} protocol), rows: ground "
                                       f"truth, columns: prediction, % of row")
        logger.info(f"evaluation protocol: {args.eval_protocol}, norm semantics "
                    f"{norm_semantics}, TTA {extra['tta']['name']}, "
                    f"{extra['inference']['name']}\n"
                    + format_table(results, CLASS_NAMES))
        logger.info(f"wrote {json_path}, {md_path}")
    dist_utils.cleanup()
    return results


def _corruption_sweep(run, base, dataset, args, clean_miou, logger):
    """``--corruptions`` x ``--severities`` of one dataset, logged as it goes."""
    sweep = corruption_sweep(
        run, dataset, args.corruptions, args.severities, clean_miou,
        on_result=lambda c, s, r: logger.info(f"{base} {c} severity {s}: mIoU "
                                              f"{100 * r['miou']:.2f}"))
    logger.info(f"{base}: mPC {100 * sweep['mpc']:.2f}, relative robustness "
                f"{100 * sweep['relative_robustness']:.2f} %")
    return sweep


if __name__ == "__main__":
    main()
