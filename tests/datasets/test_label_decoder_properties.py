"""Property-based tests (hypothesis) of the label decoders: any input gives 0..18 or 255.

Covers the four 256-entry id tables (Cityscapes, Synthia, BDD, Mapillary) and the GTAV
colour table on arbitrary arrays, GTAV palettes of any length, and each dataset's file
decoder on arbitrary label files of its format (8-bit ids, 16-bit Synthia, palette/RGB
GTAV), checked against the documented tables.
"""

import tempfile
from pathlib import Path

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from datasets.bdd100k import decode_bdd_label
from datasets.cityscapes import decode_cityscapes_label
from datasets.gtav import decode_gtav_label
from datasets.label_codes import (BDD_LUT, CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_LUT,
                                  MAPILLARY_ID_TO_TRAINID, MAPILLARY_LUT, SYNTHIA_ID_TO_TRAINID,
                                  SYNTHIA_LUT, apply_lut, decode_colour_label,
                                  palette_to_trainid_lut)
from datasets.mapillary import decode_mapillary_label
from datasets.synthia import decode_synthia_label
from utils.labels import IGNORE_LABEL, NUM_CLASSES, TRAIN_COLOURS

SETTINGS = settings(max_examples=30, deadline=None)
SHAPES = st.tuples(st.integers(1, 9), st.integers(1, 9))
TABLES = {"cityscapes": (CITYSCAPES_LUT, CITYSCAPES_ID_TO_TRAINID),
          "synthia": (SYNTHIA_LUT, SYNTHIA_ID_TO_TRAINID),
          "bdd100k": (BDD_LUT, {i: i for i in range(NUM_CLASSES)}),
          "mapillary": (MAPILLARY_LUT, MAPILLARY_ID_TO_TRAINID)}
ID_DECODERS = {"cityscapes": decode_cityscapes_label, "bdd100k": decode_bdd_label,
               "mapillary": decode_mapillary_label}


def _valid(train_ids):
    train_ids = np.asarray(train_ids)
    return train_ids.dtype == np.uint8 and bool(((train_ids < NUM_CLASSES)
                                                 | (train_ids == IGNORE_LABEL)).all())


def _expected(ids, table):
    return np.vectorize(lambda i: table.get(int(i), IGNORE_LABEL), otypes=[np.uint8])(ids)


@SETTINGS
@given(name=st.sampled_from(sorted(TABLES)), ids=arrays(np.uint8, SHAPES))
def test_id_tables_map_any_id_to_a_train_id_or_ignore(name, ids):
    lut, table = TABLES[name]
    out = apply_lut(ids, lut)
    assert out.shape == ids.shape and _valid(out)
    np.testing.assert_array_equal(out, _expected(ids, table))


@SETTINGS
@given(rgb=arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6),
                                      st.sampled_from([3, 4]))),
       plant=st.booleans())
def test_colour_decoder_maps_any_colour_to_a_train_id_or_ignore(rgb, plant):
    if plant:  # make sure some real class colours are present too
        rgb[0, 0, :3] = TRAIN_COLOURS[rgb[0, 0, 0] % NUM_CLASSES]
    out = decode_colour_label(rgb)
    assert out.shape == rgb.shape[:2] and _valid(out)
    colour_ids = {colour: i for i, colour in enumerate(TRAIN_COLOURS)}
    for (y, x), value in np.ndenumerate(out):
        assert value == colour_ids.get(tuple(int(c) for c in rgb[y, x, :3]), IGNORE_LABEL)


@SETTINGS
@given(palette=st.lists(st.integers(0, 255), max_size=800))
def test_any_palette_gives_a_valid_table(palette):
    palette = palette[:len(palette) // 3 * 3]
    lut = palette_to_trainid_lut(palette)
    assert lut.shape == (256,) and _valid(lut)


@SETTINGS
@given(name=st.sampled_from(sorted(ID_DECODERS)), ids=arrays(np.uint8, SHAPES),
       palette_mode=st.booleans())
def test_id_label_files_decode_to_train_ids_or_ignore(name, ids, palette_mode):
    picture = Image.fromarray(ids)
    if palette_mode:  # the index, not its colour, is the id
        picture.putpalette(list(range(256)) * 3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.png"
        picture.save(path)
        out = ID_DECODERS[name](path)
    assert _valid(out)
    np.testing.assert_array_equal(out, _expected(ids, TABLES[name][1]))


@SETTINGS
@given(class_ids=arrays(np.uint16, SHAPES), channels=st.sampled_from([1, 3]))
def test_synthia_files_with_any_16_bit_class_id_decode_to_train_ids_or_ignore(class_ids,
                                                                            channels):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.png"
        # OpenCV writes B, G, R: the class id goes last so that it is the file's R channel.
        data = class_ids if channels == 1 else np.dstack([class_ids * 0, class_ids * 0 + 300,
                                                          class_ids])
        assert cv2.imwrite(str(path), data)
        out = decode_synthia_label(path)
    assert _valid(out)
    clipped = np.minimum(class_ids, 255)  # ids above 255 are no Synthia class
    np.testing.assert_array_equal(out, _expected(clipped, SYNTHIA_ID_TO_TRAINID))


@SETTINGS
@given(indices=arrays(np.uint8, SHAPES), palette=st.lists(st.integers(0, 255), min_size=3,
                                                         max_size=60), as_rgb=st.booleans())
def test_gtav_files_with_any_palette_or_colours_decode_to_train_ids_or_ignore(indices, palette,
                                                                            as_rgb):
    palette = palette[:len(palette) // 3 * 3] + [c for colour in TRAIN_COLOURS for c in colour]
    picture = Image.fromarray(indices)
    picture.putpalette(palette[:768])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.png"
        (picture.convert("RGB") if as_rgb else picture).save(path)
        out = decode_gtav_label(path)
        expected = decode_colour_label(np.asarray(Image.open(path).convert("RGB")))
    assert _valid(out)
    np.testing.assert_array_equal(out, expected)
