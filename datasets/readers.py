"""File readers with clear errors: RGB images, 8-bit label PNGs and 16-bit label PNGs.

Every reader raises :class:`DatasetReadError` naming the file when it cannot be decoded, so
a truncated download surfaces as "which file" rather than a bare PIL traceback from a worker.
"""

import cv2
import numpy as np
from PIL import Image

from utils.logging import printable


class DatasetReadError(OSError):
    """A dataset file exists but cannot be read or has an unexpected format.

    The message is made :func:`~utils.logging.printable`, so a file name that is not valid
    UTF-8 is named (backslash-escaped) instead of breaking the log that reports it.
    """

    def __init__(self, message):
        super().__init__(printable(message))


# PIL modes of one-channel images with more than 8 bits per sample (16-bit PNG/TIFF
# grayscale opens as "I;16"; older Pillow and 32-bit files give "I", floats give "F").
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_UINT16_MAX = 65535


def to_rgb8(image):
    """Any PIL image -> 8-bit RGB ``PIL.Image`` with the full range scaled, never clipped.

    ``convert("RGB")`` clips wide grayscale samples to 0..255 (a 16-bit PNG becomes almost
    all white), so those are scaled by 255 / 65535 (rounded; 32-bit and float samples are
    taken as 16-bit ranged and clipped to it) and replicated to three channels. Every other
    mode (RGB, 16-bit RGB, which PIL already reduces to its high bytes, L, P, LA, RGBA,
    CMYK, 1) goes through ``convert("RGB")``.
    """
    if image.mode not in _WIDE_GRAY_MODES:
        return image.convert("RGB")
    samples = np.clip(np.asarray(image, dtype=np.float64), 0, _UINT16_MAX)
    gray = np.rint(samples * (255 / _UINT16_MAX)).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2))


def read_rgb_image(path):
    """Read an image file as an 8-bit RGB ``PIL.Image`` (fully decoded, file closed).

    Grayscale, palette and 16-bit images are converted by :func:`to_rgb8`.
    """
    try:
        with Image.open(path) as image:
            return to_rgb8(image)
    except (OSError, ValueError, SyntaxError) as error:
        raise DatasetReadError(f"cannot read image {path}: {error}") from error


def read_image_size(path, what="image"):
    """(width, height) of an image (``what``: ``image`` or ``label``, for the message) from
    its header only (no pixel decoding)."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError) as error:
        raise DatasetReadError(f"cannot read {what} {path} (its header): {error}") from error


def read_pil_label(path):
    """Open a label PNG and load its pixels; returns the PIL image (any mode)."""
    try:
        with Image.open(path) as label:
            label.load()
            return label
    except (OSError, ValueError, SyntaxError) as error:
        raise DatasetReadError(f"cannot read label {path}: {error}") from error


def read_id_label(path):
    """Read a single-channel 8-bit label PNG (mode L, or P whose indices are the ids).

    Returns the raw ids as (H, W) uint8. For a palette PNG the palette index is returned,
    not its colour, which is what Mapillary's and Cityscapes' id labels need.
    """
    label = read_pil_label(path)
    if label.mode not in ("L", "P"):
        raise DatasetReadError(
            f"label {path} has PIL mode {label.mode!r}; expected a single-channel 8-bit "
            "id PNG (mode 'L' or palette mode 'P')")
    return np.asarray(label)


def read_png_unchanged(path):
    """Read a PNG losslessly with OpenCV (keeps 16-bit samples); channels in B, G, R order.

    Pillow cannot be used for 16-bit multi-channel PNGs: it keeps only the high byte of
    each sample, which turns every Synthia class id into 0 (DATASETS.md §2.2).
    """
    # cv2.imread takes the path as UTF-8 text and crashes the process on a name that is not
    # valid UTF-8; reading the bytes in Python and decoding them in memory works for any name.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DatasetReadError(f"cannot read label {path}: {error}") from error
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise DatasetReadError(f"cannot read label {path}: OpenCV could not decode it "
                               "(missing, truncated or not an image)")
    return array


def load_train_ids(label_decoder, label_path, resize_to=None):
    """Decode a label with ``label_decoder``; resize it (nearest) to ``resize_to`` = (W, H).

    The one path from a label file to the train ids used for training, evaluation and
    centroids, so the three always agree.
    """
    train_ids = label_decoder(label_path)
    if resize_to is not None and (train_ids.shape[1], train_ids.shape[0]) != tuple(resize_to):
        train_ids = np.asarray(Image.fromarray(train_ids).resize(tuple(resize_to),
                                                                Image.NEAREST))
    return train_ids
