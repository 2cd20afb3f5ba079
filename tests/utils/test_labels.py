"""The one labels module: class count, ignore label, names, train ids, palette, colorize."""

import numpy as np
import pytest

from datasets.label_codes import BDD_LUT, colour_lut, pack_rgb
from utils.labels import (CLASS_NAMES, IGNORE_LABEL, NUM_CLASSES, PALETTE, TRAIN_COLOURS,
                          TrainId, colorize)


def test_train_ids_names_and_colours_agree():
    assert NUM_CLASSES == len(TrainId) == len(CLASS_NAMES) == len(TRAIN_COLOURS) == 19
    assert [int(t) for t in TrainId] == list(range(NUM_CLASSES))
    assert CLASS_NAMES[TrainId.TRAFFIC_LIGHT] == "traffic light"
    assert CLASS_NAMES[TrainId.ROAD] == "road" and CLASS_NAMES[TrainId.BICYCLE] == "bicycle"
    assert IGNORE_LABEL == 255 and IGNORE_LABEL >= NUM_CLASSES


def test_palette_is_read_only_and_black_outside_the_classes():
    assert PALETTE.shape == (256, 3) and PALETTE.dtype == np.uint8
    assert not PALETTE.flags.writeable
    np.testing.assert_array_equal(PALETTE[:NUM_CLASSES], np.array(TRAIN_COLOURS))
    assert not PALETTE[NUM_CLASSES:].any()


def test_colorize_uses_the_cityscapes_palette_and_black_for_ignore():
    ids = np.array([[0, 10, 255], [13, 18, 19]], dtype=np.uint8)
    rgb = colorize(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[0, 1]) == (70, 130, 180)
    assert tuple(rgb[1, 0]) == (0, 0, 142) and tuple(rgb[1, 1]) == (119, 11, 32)
    assert tuple(rgb[0, 2]) == (0, 0, 0) and tuple(rgb[1, 2]) == (0, 0, 0)
    np.testing.assert_array_equal(rgb, np.asarray(PALETTE)[ids])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        colorize(np.zeros((2, 2, 3)))


def test_label_codes_use_the_one_label_space():
    # the encodings decode the palette colours back to their train ids, ignore elsewhere
    decoded = colour_lut()[pack_rgb(PALETTE[:NUM_CLASSES][None])][0]
    np.testing.assert_array_equal(decoded, np.arange(NUM_CLASSES))
    assert BDD_LUT[NUM_CLASSES] == IGNORE_LABEL and BDD_LUT[TrainId.SKY] == TrainId.SKY
