"""Corruption sweep: evaluate one dataset under every (corruption, severity).

``valid.py --corruptions all --severities 1 2 3 4 5`` calls :func:`corruption_sweep` per
evaluated dataset with its evaluation function; the summary (per-corruption mIoU, mPC,
relative robustness; :func:`engine.summary.corruption_summary`) goes to ``results.json``.
"""

from datasets.corrupted import CorruptedDataset
from engine.summary import corruption_summary
from transforms.corruptions import BENCHMARK_CORRUPTIONS, check_severities, resolve_corruptions


def corruption_sweep(evaluate_dataset, dataset, corruptions, severities, clean_miou,
                     on_result=None):
    """Evaluate ``dataset`` under each corruption and severity.

    Args:
        evaluate_dataset: callable ``(dataset, desc) -> result`` with ``result["miou"]``
            (e.g. building a loader and calling ``evaluate``).
        dataset: an evaluation dataset (clean).
        corruptions: names, or ``["all"]`` (:func:`transforms.corruptions.resolve_corruptions`).
        severities: 0..5 (0 = clean image through the same path).
        clean_miou: mIoU of the clean evaluation (the robustness reference).
        on_result: optional ``(corruption, severity, result)`` callback (logging).

    Returns:
        the summary dict of :func:`engine.summary.corruption_summary`.
    """
    corruptions = resolve_corruptions(corruptions)
    severities = check_severities(severities)
    mious = {}
    for corruption in corruptions:
        mious[corruption] = {}
        for severity in severities:
            result = evaluate_dataset(CorruptedDataset(dataset, corruption, severity),
                                      f"{dataset.name} {corruption} {severity}")
            mious[corruption][severity] = result["miou"]
            if on_result is not None:
                on_result(corruption, severity, result)
    return corruption_summary(clean_miou, mious, BENCHMARK_CORRUPTIONS)
