"""Summaries ``results.json`` carries on top of the per-dataset metrics.

* the mean over the evaluated **targets** (every evaluated dataset the model was not trained
  on; all of them when the checkpoint does not say what it was trained on);
* for a SYNTHIA source, the **16- and 13-class mIoU** of SYNTHIA-source tables
  (``datasets.synthia.SYNTHIA_16_CLASSES`` / ``SYNTHIA_13_CLASSES``, where the lists come
  from is documented there);
* the corruption sweep's per-corruption mIoU, **mPC** and relative robustness.

All values are fractions in [0, 1] (like ``miou``); NaN / None where undefined.
"""

import math

import numpy as np

from datasets import parse_dataset_name
from datasets.synthia import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES


def training_sources(dataset_names):
    """Canonical names of the training datasets (``["gtav_jitter"]`` -> ``("gtav",)``).

    Names this version does not know are kept as given (lower case), so they still never
    count as targets.
    """
    sources = []
    for name in dataset_names or ():
        try:
            base = parse_dataset_name(name)[0]
        except ValueError:
            base = str(name).lower()
        if base not in sources:
            sources.append(base)
    return tuple(sources)


def _nanmean(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def subset_miou(iou, class_names, subset):
    """Nan-mean of the IoUs (list in ``class_names`` order) of the classes in ``subset``."""
    index = {name: i for i, name in enumerate(class_names)}
    missing = [c for c in subset if c not in index]
    if missing:
        raise ValueError(f"classes {missing} are not among the evaluated classes {class_names}")
    return _nanmean([iou[index[c]] for c in subset])


def synthia_subset_mious(iou, class_names):
    """``{"miou_16": ..., "miou_13": ...}`` of one dataset's 19 IoUs."""
    return {"miou_16": subset_miou(iou, class_names, SYNTHIA_16_CLASSES),
            "miou_13": subset_miou(iou, class_names, SYNTHIA_13_CLASSES)}


def is_synthia_source(sources):
    return "synthia" in sources


def mean_over_targets(results, sources, class_names):
    """The ``mean_over_targets`` entry of ``results.json``.

    Args:
        results: {dataset: result with ``miou`` and ``iou``} in evaluation order.
        sources: canonical training dataset names (:func:`training_sources`); empty when
            unknown, then every evaluated dataset is a target.
        class_names: the evaluated classes, in ``iou`` order.

    Returns:
        {"targets": [...], "miou": mean of their mIoUs} plus ``miou_16`` / ``miou_13`` (means
        of the targets' 16- / 13-class mIoUs) for a SYNTHIA source.
    """
    targets = [name for name in results if name not in sources]
    summary = {"targets": targets,
               "miou": _nanmean([results[t]["miou"] for t in targets])}
    if is_synthia_source(sources):
        for key in ("miou_16", "miou_13"):
            summary[key] = _nanmean([synthia_subset_mious(results[t]["iou"], class_names)[key]
                                     for t in targets])
    return summary


def corruption_summary(clean_miou, mious, benchmark_corruptions=None):
    """Per-corruption mIoU, mPC and relative robustness of one dataset's sweep.

    Args:
        clean_miou: mIoU of the clean images.
        mious: {corruption: {severity: miou}}; severity 0 (the clean image through the
            corruption path) is kept in ``per_severity`` but not averaged.
        benchmark_corruptions: the benchmark's full list; ``benchmark_complete`` says
            whether this sweep covers all of it at severities 1..5 (the published mPC).

    Returns:
        {"clean_miou", "corruptions": {name: {"per_severity": {"1": miou, ...}, "miou":
        mean over severities >= 1}}, "mpc": mean of the per-corruption values,
        "relative_robustness": mpc / clean_miou, "severities", "benchmark_complete"}.
    """
    per_corruption = {}
    for name, by_severity in mious.items():
        corrupted = [m for s, m in by_severity.items() if int(s) >= 1]
        per_corruption[name] = {
            "per_severity": {str(s): m for s, m in sorted(by_severity.items())},
            "miou": _nanmean(corrupted)}
    mpc = _nanmean([c["miou"] for c in per_corruption.values()])
    relative = mpc / clean_miou if clean_miou and not math.isnan(mpc) else float("nan")
    severities = sorted({int(s) for by_severity in mious.values() for s in by_severity})
    complete = (benchmark_corruptions is not None
                and set(benchmark_corruptions) <= set(mious)
                and {1, 2, 3, 4, 5} <= set(severities))
    return {"clean_miou": clean_miou, "corruptions": per_corruption, "mpc": mpc,
            "relative_robustness": relative, "severities": severities,
            "benchmark_complete": bool(complete)}
