"""Labels without a single valid pixel: one report and one error for training and evaluation.

A label whose every pixel maps to the ignore id (255) contributes nothing: a training set of
only such labels trains with loss 0 and an evaluation set of them gives mIoU NaN. This is
almost always a format problem (wrong dataset, wrong label files, a decoder that does not
match the files), so some such labels are reported and a set of nothing but such labels
is refused.
"""

import warnings

from utils.logging import printable

MAX_NAMES = 5  # how many file names a report lists


class EmptyLabelsError(ValueError):
    """Every label of a dataset split has no pixel of a valid train id."""


def empty_labels_message(dataset, split, root, empty_names, total, expected):
    """One-line description of ``len(empty_names)`` of ``total`` labels without a valid pixel.

    Args:
        dataset, split, root: what was read (named in the message).
        empty_names: names (paths or stems) of the labels without a valid pixel.
        total: number of labels checked.
        expected: what the labels should contain (e.g. ``"Cityscapes labelIds 7, 8, ..."``).
    """
    shown = ", ".join(printable(name) for name in list(empty_names)[:MAX_NAMES])
    more = f" and {len(empty_names) - MAX_NAMES} more" if len(empty_names) > MAX_NAMES else ""
    return (f"{dataset} ({split}, root {printable(root)}): {len(empty_names)} of {total} "
            f"label(s) have no pixel of a valid train id (0..18; every pixel maps to ignore "
            f"255): {shown}{more}. Expected {expected or 'labels of this dataset format'}")


def check_empty_labels(dataset, split, root, empty_names, total, expected):
    """Warn when some labels have no valid pixel; raise :class:`EmptyLabelsError` if all have.

    ``total == 0`` (nothing checked) passes silently.
    """
    if not empty_names or total == 0:
        return
    message = empty_labels_message(dataset, split, root, empty_names, total, expected)
    if len(empty_names) >= total:
        raise EmptyLabelsError(message + "; there is nothing to train on or evaluate. Check "
                               "the dataset root and that the label files are the ones this "
                               "dataset reads.")
    warnings.warn(message, RuntimeWarning, stacklevel=2)
