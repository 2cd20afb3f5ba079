"""The paper table from several evaluation runs: methods x seeds, mean ± std.

    python tools/results_table.py logs/ckpt/eval/baseline_seed* logs/ckpt/eval/blindnet_seed*
    python tools/results_table.py RUN_DIR... --targets cityscapes bdd100k mapillary --classes 16
    python tools/results_table.py RUN_DIR... --metric mpc     # runs of valid.py --corruptions
    python tools/results_table.py RUN_DIR... --metric miou mpc rpc   # clean, mPC, rPC together

Each RUN_DIR is a folder holding the ``results.json`` of ``valid.py`` (or that file itself).
Runs are grouped by **method**; the seeds of a method give mean ± sample standard deviation
(``ddof=1``, as ``bench/demo_seeds.py``) of every target's mIoU and of the mean over the
targets, and the number of seeds. The table is printed as Markdown and LaTeX.

How a run is named (in this order):

* method: ``training_run.exp`` of ``results.json`` (the ``--exp`` the checkpoint was trained
  with, which ``valid.py`` copies from the checkpoint) with a trailing seed tag
  (``_seed304``, ``-seed304``, ``_s304``) removed -- so ``blindnet_seed304`` and
  ``blindnet_seed305`` are two seeds of ``blindnet`` (the demo names its runs so); without
  it, the RUN_DIR's folder name, treated the same way;
* seed: ``training_run.seed`` (the checkpoint's ``--seed``), else the seed tag of that name;
  a run without either is refused.

Columns are the run's targets (``mean_over_targets.targets`` of ``results.json``: every
evaluated dataset except the training source; every dataset in older files), or
``--targets``; every run must have every column. Foggy Cityscapes columns name their β.

``--metric mpc`` / ``--metric rpc`` tabulate the corruption sweep (``valid.py --corruptions``)
instead: mPC, or the relative robustness mPC / clean mIoU, per target; every run must have
swept the same corruptions and severities. ``--metric miou mpc rpc`` puts them side by side:
one column per (target, metric), ``cityscapes mIoU | cityscapes mPC | cityscapes rPC | ...``.

One table is one evaluation setting: every run must share the evaluation protocol, the
test-time augmentation (``tta.name``; older files are ``single-scale``) and the inference mode
(``inference.name``: whole-image or ``--sliding_window``; older files are whole-image). A
mix is refused, naming the runs of each setting; ``--split_settings`` prints one table per
setting instead. So is a column whose runs evaluated different numbers of images
(``--max_val_images``).
"""

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.synthia import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES  # noqa: E402
from engine.evaluation import WHOLE_IMAGE  # noqa: E402

CLASS_SETS = {"19": None, "16": SYNTHIA_16_CLASSES, "13": SYNTHIA_13_CLASSES}
# --metric -> (field of a dataset's "corruptions" entry or None for the clean mIoU, caption,
# and, when several metrics share one table (--metric miou mpc rpc), column suffix and caption)
METRICS = {
    "miou": (None, "mIoU", "mIoU", "mIoU (clean)"),
    "mpc": ("mpc", "mPC (mean mIoU under corruption)", "mPC", "mPC (mean mIoU under corruption)"),
    "rpc": ("relative_robustness", "relative robustness mPC / clean mIoU", "rPC",
            "rPC (relative robustness mPC / clean mIoU)"),
}
SEED_TAG = re.compile(r"^(?P<method>.+?)[_-](?:seed|s)(?P<seed>\d+)$")
MEAN_COLUMN = "mean"


class ResultsTableError(ValueError):
    """Runs that cannot form one table (mixed settings, missing targets, unnamed seeds)."""


@dataclass
class Run:
    """One evaluation run: where it is, what it is, and its per-column results."""

    path: Path
    method: str
    seed: int
    setting: tuple  # (eval_protocol, tta name, inference name)
    targets: list
    datasets: dict = field(repr=False)  # column name -> result entry of results.json


def results_path(run_dir):
    """``RUN_DIR/results.json`` (or RUN_DIR itself when it is a file)."""
    path = Path(run_dir)
    path = path if path.is_file() else path / "results.json"
    if not path.is_file():
        raise ResultsTableError(f"{run_dir}: no results.json (write one with valid.py)")
    return path


def _column(name, result):
    beta = result.get("foggy_beta")
    return f"{name} (β={beta:g})" if beta is not None else name


def method_and_seed(payload, path):
    """(method, seed) of a run; see the module docstring for the rules."""
    training = payload.get("training_run") or {}
    name = training.get("exp") or (path.parent.name if path.name == "results.json"
                                   else path.stem)
    match = SEED_TAG.match(str(name))
    method = match.group("method") if match else str(name)
    seed = training.get("seed")
    if seed is None and match:
        seed = int(match.group("seed"))
    if seed is None:
        raise ResultsTableError(
            f"{path}: cannot tell the seed of this run (no training_run.seed in results.json "
            f"and no _seed<N> suffix in {name!r}); re-run valid.py on a checkpoint of this "
            f"version or name the folder <method>_seed<N>")
    return method, int(seed)


def load_run(run_dir):
    """Read one run's ``results.json`` into a :class:`Run`."""
    path = results_path(run_dir)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ResultsTableError(f"{path}: not a readable results.json ({error})") from error
    if "datasets" not in payload or "eval_protocol" not in payload:
        raise ResultsTableError(f"{path}: not a valid.py results.json (no 'datasets' / "
                                f"'eval_protocol')")
    method, seed = method_and_seed(payload, path)
    tta = (payload.get("tta") or {}).get("name", "single-scale")
    # Files from before the field existed were whole-image evaluations unless they say else.
    inference = (payload.get("inference") or {}).get("name", WHOLE_IMAGE)
    datasets = {_column(name, result): result for name, result in payload["datasets"].items()}
    names = (payload.get("mean_over_targets") or {}).get("targets")
    targets = [_column(n, payload["datasets"][n]) for n in names] if names is not None \
        else list(datasets)
    return Run(path, method, seed, (payload["eval_protocol"], tta, inference), targets,
               datasets)


def describe_setting(setting):
    """``protocol P, TTA T`` (and the inference mode unless whole-image)."""
    text = f"protocol {setting[0]}, TTA {setting[1]}"
    return text if setting[2] == WHOLE_IMAGE else f"{text}, {setting[2]}"


def group_by_setting(runs):
    """{setting: [runs]} in first-seen order."""
    groups = {}
    for run in runs:
        groups.setdefault(run.setting, []).append(run)
    return groups


def check_one_setting(runs):
    """Raise :class:`ResultsTableError` when the runs mix protocols or TTA settings."""
    groups = group_by_setting(runs)
    if len(groups) > 1:
        lines = [f"  {describe_setting(s)}: " + ", ".join(str(r.path) for r in group)
                 for s, group in groups.items()]
        raise ResultsTableError(
            "refusing to put runs of different evaluation settings into one column "
            "(their numbers are not comparable):\n" + "\n".join(lines)
            + "\nevaluate them alike, or pass --split_settings for one table per setting")


def run_value(run, column, classes="19", metric="miou"):
    """mIoU (fraction) of ``run`` on ``column`` over the 19 classes or a SYNTHIA subset; or
    its corruption ``metric`` (``mpc``, ``rpc``)."""
    if column not in run.datasets:
        raise ResultsTableError(
            f"{run.path}: no result for {column!r} (it has {list(run.datasets)}); every run "
            f"of a table needs every column; choose them with --targets")
    result = run.datasets[column]
    if metric != "miou":
        value = _sweep(run, column)[METRICS[metric][0]]
        return float("nan") if value is None else float(value)
    subset = CLASS_SETS[classes]
    if subset is None:
        value = result["miou"]
    else:
        per_class = result.get("iou_per_class") or {}
        values = [per_class.get(c) for c in subset]
        values = [v for v in values if v is not None and not math.isnan(v)]
        value = float(np.mean(values)) if values else None
    return float("nan") if value is None else float(value)


def _sweep(run, column):
    sweep = run.datasets[column].get("corruptions")
    if not sweep:
        raise ResultsTableError(f"{run.path}: {column!r} has no corruption sweep (evaluate it "
                                f"with valid.py --corruptions ...)")
    return sweep


def check_same_sweep(runs, columns):
    """Refuse mPC columns over different corruption sets or severities."""
    kinds = {}
    for run in runs:
        for column in columns:
            sweep = _sweep(run, column)
            key = (tuple(sweep["corruptions"]), tuple(sweep["severities"]))
            kinds.setdefault(key, []).append(f"{run.path} ({column})")
    if len(kinds) > 1:
        lines = [f"  corruptions {list(c)}, severities {list(s)}: " + ", ".join(where)
                 for (c, s), where in kinds.items()]
        raise ResultsTableError("refusing to compare corruption sweeps of different "
                                "corruptions or severities:\n" + "\n".join(lines))


def check_same_images(runs, columns):
    """Refuse a column whose runs evaluated different numbers of images (e.g. one with
    ``--max_val_images``): their mIoUs are not over the same set."""
    for column in columns:
        counts = {}
        for run in runs:
            images = run.datasets.get(column, {}).get("images")
            if images is not None:
                counts.setdefault(int(images), []).append(str(run.path))
        if len(counts) > 1:
            lines = [f"  {n} images: " + ", ".join(paths) for n, paths in sorted(counts.items())]
            raise ResultsTableError(f"refusing to average {column!r} over runs that evaluated "
                                    f"different numbers of images:\n" + "\n".join(lines)
                                    + "\nevaluate every run on the whole set (no "
                                      "--max_val_images)")


def _mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def build_table(runs, targets=None, classes="19", metric="miou"):
    """The table of runs of ONE setting.

    Returns:
        dict with ``setting``, ``classes``, ``columns`` (targets then ``mean``) and ``rows``:
        [{"method", "seeds", "cells": {column: (mean %, std %, [per-seed %])}}] in
        first-seen method order.
    """
    if not runs:
        raise ResultsTableError("no runs given")
    check_one_setting(runs)
    if classes not in CLASS_SETS:
        raise ResultsTableError(f"--classes must be one of {list(CLASS_SETS)}, got {classes!r}")
    if metric not in METRICS or (metric != "miou" and classes != "19"):
        raise ResultsTableError(f"--metric must be one of {list(METRICS)} (mpc / rpc with the "
                                f"19 classes only), got {metric!r} with --classes {classes}")
    if targets is None:
        targets = []
        for run in runs:
            targets += [t for t in run.targets if t not in targets]
    check_same_images(runs, targets)
    by_method = {}
    for run in runs:
        by_method.setdefault(run.method, []).append(run)
    rows = []
    for method, method_runs in by_method.items():
        seeds = [r.seed for r in method_runs]
        if len(set(seeds)) != len(seeds):
            twice = sorted({s for s in seeds if seeds.count(s) > 1})
            raise ResultsTableError(
                f"method {method!r} has seed(s) {twice} more than once: "
                + ", ".join(str(r.path) for r in method_runs if r.seed in twice))
        method_runs = sorted(method_runs, key=lambda r: r.seed)
        per_run = [[100 * run_value(r, t, classes, metric) for t in targets]
                   for r in method_runs]
        means = [float(np.mean(v)) for v in per_run]
        cells = {t: _mean_std([v[i] for v in per_run]) + ([v[i] for v in per_run],)
                 for i, t in enumerate(targets)}
        cells[MEAN_COLUMN] = _mean_std(means) + (means,)
        rows.append({"method": method, "seeds": sorted(seeds), "cells": cells})
    if metric != "miou":
        check_same_sweep(runs, targets)
    return {"setting": runs[0].setting, "classes": classes, "metrics": [metric],
            "columns": list(targets) + [MEAN_COLUMN], "rows": rows}


def build_combined_table(runs, targets=None, classes="19", metrics=("miou",)):
    """One table with a column per (target, metric): e.g. ``cityscapes mIoU``,
    ``cityscapes mPC``, ``cityscapes rPC`` ... ``mean rPC`` (the robustness table of a
    corruption paper). One metric gives :func:`build_table`'s table unchanged."""
    metrics = list(dict.fromkeys(metrics))
    if len(metrics) == 1:
        return build_table(runs, targets, classes, metrics[0])
    tables = [build_table(runs, targets, classes, metric) for metric in metrics]
    columns = [f"{column} {METRICS[m][2]}" for column in tables[0]["columns"]
               for m in metrics]
    rows = []
    for i, row in enumerate(tables[0]["rows"]):  # same runs: same methods in the same order
        cells = {f"{column} {METRICS[m][2]}": table["rows"][i]["cells"][column]
                 for column in tables[0]["columns"] for m, table in zip(metrics, tables)}
        rows.append({"method": row["method"], "seeds": row["seeds"], "cells": cells})
    return {"setting": tables[0]["setting"], "classes": classes, "metrics": metrics,
            "columns": columns, "rows": rows}


def _cell(mean, std, digits, plus_minus):
    if math.isnan(mean):
        return "n/a"
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}{plus_minus}{std:.{digits}f}"


def _caption(table):
    classes = "" if table["classes"] == "19" else f", {table['classes']}-class mIoU"
    metrics = table["metrics"]
    names = METRICS[metrics[0]][1] if len(metrics) == 1 else ", ".join(
        METRICS[m][3] for m in metrics)
    return (f"{names} (%), {describe_setting(table['setting'])}{classes}; "
            f"mean ± std over seeds "
            f"(sample std, n seeds)")


def to_markdown(table, digits=2):
    columns = table["columns"]
    lines = [_caption(table), "", "| method | n | " + " | ".join(columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for row in table["rows"]:
        cells = [_cell(*row["cells"][c][:2], digits, " ± ") for c in columns]
        lines.append(f"| {row['method']} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latex_escape(text):
    return re.sub(r"([_&%#$])", r"\\\1", str(text)).replace("β", r"$\beta$")


def to_latex(table, digits=2):
    columns = table["columns"]
    header = " & ".join(["method", "$n$"] + [_latex_escape(c) for c in columns])
    lines = [f"% {_caption(table)}", r"\begin{tabular}{l r " + "r " * len(columns) + "}",
             r"\toprule", header + r" \\", r"\midrule"]
    for row in table["rows"]:
        cells = [_cell(*row["cells"][c][:2], digits, r" $\pm$ ") for c in columns]
        lines.append(" & ".join([_latex_escape(row["method"]), str(len(row["seeds"]))] + cells)
                     + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def render(runs, targets=None, classes="19", digits=2, split_settings=False, fmt="both",
           metric="miou"):
    """The printed text: one table (or one per setting with ``split_settings``)."""
    groups = group_by_setting(runs) if split_settings else {None: runs}
    parts = []
    for group in groups.values():
        table = build_combined_table(group, targets, classes,
                                     [metric] if isinstance(metric, str) else metric)
        if fmt in ("markdown", "both"):
            parts.append(to_markdown(table, digits))
        if fmt in ("latex", "both"):
            parts.append(to_latex(table, digits))
    return "\n\n".join(parts) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="folders holding valid.py's results.json (or the files)")
    parser.add_argument("--targets", nargs="+", default=None,
                        help="columns, in order (default: the runs' targets)")
    parser.add_argument("--classes", choices=list(CLASS_SETS), default="19",
                        help="19 classes, or the 16 / 13 of SYNTHIA-source tables")
    parser.add_argument("--metric", choices=list(METRICS), nargs="+", default=["miou"],
                        help="clean mIoU, or mPC / relative robustness of the corruption sweep; "
                             "several give one column per (target, metric)")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--format", choices=("markdown", "latex", "both"), default="both")
    parser.add_argument("--split_settings", action="store_true",
                        help="one table per (protocol, TTA) setting instead of refusing a mix")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        runs = [load_run(path) for path in args.runs]
        text = render(runs, args.targets, args.classes, args.digits, args.split_settings,
                      args.format, args.metric)
    except ResultsTableError as error:
        print(f"results_table.py: error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
