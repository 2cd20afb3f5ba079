"""Evaluate a checkpoint on every ``--val_dataset`` (mIoU, per-class IoU, pixel accuracy).

    python valid.py --snapshot logs/ckpt/0326/exp/best_cityscapes.pth \\
        --arch network.deepv3.DeepR50V3PlusD --wt_layer 0 0 1 1 1 0 0 \\
        --val_dataset cityscapes bdd100k mapillary
    torchrun --nproc_per_node 2 valid.py ...        # each rank evaluates a shard

Writes ``results.json``, ``results.md`` and ``confusion_<dataset>.png`` to
``<ckpt>/<date>/<exp>/`` (DECISIONS.md D19). Official checkpoints load too (D15).
"""

import cli
import datasets
from engine.evaluation import build_eval_loader, evaluate, format_table, write_results
from utils import dist as dist_utils
from utils.labels import CLASS_NAMES, NUM_CLASSES
from utils.logging import setup_logging
from utils.viz import confusion_matrix_png


def main(argv=None):
    args = cli.parse_args("valid", argv)
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    out_dir = cli.run_dir(args)
    logger = setup_logging(state.rank, out_dir / "valid.log")
    if not args.val_dataset:
        raise SystemExit("valid.py needs at least one --val_dataset name")
    model, norm_semantics, trained_norm_semantics = cli.load_eval_model(args, state.device,
                                                                        logger)
    workers = 2 if args.num_workers is None else args.num_workers
    roots, options = cli.root_overrides(args), cli.eval_dataset_options(args)

    results = {}
    for name in args.val_dataset:
        base, dataset = datasets.build_eval_dataset(
            name, roots[datasets.parse_dataset_name(name)[0]], **options)
        loader = build_eval_loader(dataset, args.bs_mult_val, workers, args.max_val_images,
                                   datasets.worker_init_fn)
        result = evaluate(model, loader, state.device, NUM_CLASSES, amp=args.amp,
                          sliding_window=args.sliding_window, crop_size=args.crop_size,
                          stride=args.stride, desc=f"valid {base}")
        results[base] = result
        logger.info(f"{base}: mIoU {100 * result['miou']:.2f}, pixel acc "
                    f"{100 * result['pixel_acc']:.2f} over {result['images']} images "
                    f"(protocol {args.eval_protocol})"
                    + (f"; {result['empty_labels']} of them have no valid label pixel, e.g. "
                       f"{', '.join(result['empty_label_names'])}"
                       if result["empty_labels"] else ""))

    if state.is_main:
        json_path, md_path = write_results(results, out_dir, CLASS_NAMES, args.eval_protocol,
                                           args.snapshot, norm_semantics,
                                           trained_norm_semantics)
        for base, result in results.items():
            confusion_matrix_png(result["hist"], CLASS_NAMES, out_dir / f"confusion_{base}.png",
                                 title=f"{base} ({args.eval_protocol} protocol), rows: ground "
                                       f"truth, columns: prediction, % of row")
        logger.info(f"evaluation protocol: {args.eval_protocol}, norm semantics "
                    f"{norm_semantics}\n"
                    + format_table(results, CLASS_NAMES))
        logger.info(f"wrote {json_path}, {md_path}")
    dist_utils.cleanup()
    return results


if __name__ == "__main__":
    main()
