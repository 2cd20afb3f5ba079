"""What ``results.json`` / ``results.md`` add on top of the per-dataset metrics (issue 13).

:func:`results_extra` collects it; ``engine.evaluation.write_results(..., extra=...)`` writes
it with :func:`add_fields` (fields are only ever added, never replaced: the existing fields
stay as they are) and :func:`extra_markdown`. Top-level fields: ``training_run`` (from the
checkpoint's training arguments), ``tta`` and ``mean_over_targets``; per dataset:
``miou_16`` / ``miou_13`` (SYNTHIA source), ``foggy_beta`` (Foggy Cityscapes) and
``corruptions`` (a corruption sweep).
"""

import math

from engine.summary import is_synthia_source, mean_over_targets, synthia_subset_mious, \
    training_sources
from datasets import foggy_beta_string
from engine.tta import check_eval_scales, is_single_scale, tta_description
from transforms.corruptions import check_severities, resolve_corruptions

TRAINING_RUN_KEYS = ("exp", "date", "seed", "dataset", "arch")


def check_eval_settings(foggy_beta, scales, flip, corruptions, severities, script="valid"):
    """Validate the evaluation settings (``--foggy_beta``, ``--eval_scales``, ``--eval_flip``,
    ``--corruptions``, ``--severities``); corruptions belong to valid.py only, TTA to
    valid.py and infer.py.

    Raises ValueError naming the flag.
    """
    foggy_beta_string(foggy_beta)
    check_eval_scales(scales)
    check_severities(severities)
    if corruptions is not None:
        resolve_corruptions(corruptions)
    if script != "valid" and corruptions is not None:
        raise ValueError(f"--corruptions: read by valid.py only; {script}.py would ignore it")
    if script == "train" and not is_single_scale(scales, flip):
        raise ValueError("--eval_scales/--eval_flip: read by valid.py and infer.py only; "
                         "train.py would ignore them")


def training_run(checkpoint):
    """``{"exp", "date", "seed", "dataset", "arch", "iteration"}`` of a loaded checkpoint.

    From its ``args`` entry (written by train.py); an official checkpoint has none, only the
    ``command`` it was trained with, from which ``--dataset`` is read (the rest is None).
    None when the checkpoint says neither.
    """
    if not isinstance(checkpoint, dict):
        return None
    if isinstance(checkpoint.get("args"), dict):
        flags = checkpoint["args"]
    elif isinstance(checkpoint.get("command"), str):
        flags = {"dataset": _flag_values(checkpoint["command"].split(), "--dataset")}
    else:
        return None
    run = {key: flags.get(key) for key in TRAINING_RUN_KEYS}
    run["iteration"] = checkpoint.get("iteration")
    return run


def _flag_values(tokens, flag):
    """The values after ``flag`` in a command line (up to the next ``--`` option), or None."""
    if flag not in tokens:
        return None
    values = []
    for token in tokens[tokens.index(flag) + 1:]:
        if token.startswith("--"):
            break
        values.append(token)
    return values


def results_extra(results, class_names, *, training=None, scales=(1.0,), flip=False,
                  foggy_beta=None, corruptions=None, inference=None):
    """The ``extra`` of ``write_results``.

    Args:
        results: {dataset: result} (``miou``, ``iou``) as evaluated.
        training: :func:`training_run` of the checkpoint (None: unknown source).
        scales, flip: the TTA setting.
        foggy_beta: β of an evaluated ``foggy_cityscapes`` (recorded on that dataset).
        corruptions: {dataset: summary of ``engine.robustness.corruption_sweep``} or None.
        inference: ``engine.evaluation.inference_description`` (whole image or sliding
            windows); None leaves the field out.
    """
    sources = training_sources((training or {}).get("dataset"))
    per_dataset = {name: {} for name in results}
    if is_synthia_source(sources):
        for name, result in results.items():
            per_dataset[name].update(synthia_subset_mious(result["iou"], class_names))
    if "foggy_cityscapes" in results and foggy_beta is not None:
        per_dataset["foggy_cityscapes"]["foggy_beta"] = float(foggy_beta)
    for name, summary in (corruptions or {}).items():
        per_dataset[name]["corruptions"] = summary
    extra = {"training_run": training, "tta": tta_description(scales, flip),
             "mean_over_targets": mean_over_targets(results, sources, class_names),
             "per_dataset": per_dataset}
    if inference is not None:
        extra["inference"] = inference
    return extra


def add_fields(payload, extra):
    """Add ``extra`` to a results payload in place; an existing field is never overwritten."""
    for key, value in extra.items():
        if key == "per_dataset":
            for name, fields in value.items():
                _add(payload["datasets"][name], fields, f"datasets.{name}")
        else:
            _add(payload, {key: value}, "results")
    return payload


def _add(target, fields, where):
    clash = sorted(set(fields) & set(target))
    if clash:
        raise ValueError(f"results.json: {where} already has field(s) {clash}")
    target.update(fields)


def percent_text(value):
    """A fraction as a percentage with two decimals; ``n/a`` for None / NaN (absent class)."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{100.0 * value:.2f}"


def extra_markdown(extra):
    """``results.md`` lines: TTA, inference, mean over targets, SYNTHIA subsets, corruption
    tables."""
    mean = extra["mean_over_targets"]
    lines = [f"- test-time augmentation: `{extra['tta']['name']}`"]
    if "inference" in extra:
        lines.append(f"- inference: `{extra['inference']['name']}`")
    lines.append(f"- mean mIoU over the targets ({', '.join(mean['targets']) or 'none'}): "
                 f"{percent_text(mean['miou'])}")
    if "miou_16" in mean:
        lines.append(f"- SYNTHIA-source class subsets, mean over the targets: 16 classes "
                     f"{percent_text(mean['miou_16'])}, 13 classes {percent_text(mean['miou_13'])}")
    for name, fields in extra["per_dataset"].items():
        sweep = fields.get("corruptions")
        if sweep:
            lines += ["", *corruption_markdown(name, sweep)]
    return lines + [""]


def corruption_markdown(name, sweep):
    """One dataset's corruption table: mIoU per corruption and severity, mPC, rPC (in %)."""
    severities = [s for s in sweep["severities"]]
    header = ["corruption"] + [f"s{s}" for s in severities] + ["mean (s>=1)"]
    lines = [f"### {name}: corruptions", "",
             f"clean mIoU {percent_text(sweep['clean_miou'])}, "
             f"mPC {percent_text(sweep['mpc'])}, relative "
             f"robustness {percent_text(sweep['relative_robustness'])} % "
             f"({'the full benchmark' if sweep['benchmark_complete'] else 'a subset'})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for corruption, entry in sweep["corruptions"].items():
        cells = [percent_text(entry["per_severity"].get(str(s))) for s in severities]
        lines.append(f"| {corruption} | " + " | ".join(cells)
                     + f" | {percent_text(entry['miou'])} |")
    return lines
