"""Label tables and decoders: exact train ids, colour traps, the 16-bit Synthia reader."""

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets.bdd100k import decode_bdd_label
from datasets.cityscapes import decode_cityscapes_label
from datasets.gtav import decode_gtav_label
from datasets.label_codes import (
    CITYSCAPES_LUT,
    MAPILLARY_LUT,
    SYNTHIA_LUT,
    decode_colour_label,
    palette_to_trainid_lut,
)
from datasets.mapillary import decode_mapillary_label
from datasets.readers import DatasetReadError
from datasets.styleshift.formats import CITYSCAPES_ID_COLOURS, write_synthia_sample
from datasets.synthia import decode_synthia_label
from utils.labels import CLASS_NAMES, PALETTE, TRAIN_COLOURS


def test_palette_and_names():
    assert len(CLASS_NAMES) == 19 and CLASS_NAMES[0] == "road" and CLASS_NAMES[18] == "bicycle"
    assert PALETTE.shape == (256, 3) and PALETTE.dtype == np.uint8
    assert tuple(PALETTE[13]) == (0, 0, 142) and tuple(PALETTE[5]) == (153, 153, 153)
    assert not PALETTE[19:].any()  # 19..255 (incl. ignore) black
    with pytest.raises(ValueError):
        PALETTE[0, 0] = 1  # read-only


def test_colour_decoding_exact_and_traps():
    colours = np.array(TRAIN_COLOURS + (
        (153, 153, 154),  # reference's edited polegroup colour
        (0, 0, 143),      # reference's edited license-plate colour
        (0, 0, 0), (111, 74, 0), (0, 0, 90), (0, 0, 110), (250, 170, 160)),
        dtype=np.uint8)
    decoded = decode_colour_label(colours[None])[0]
    assert decoded[:19].tolist() == list(range(19))
    assert decoded[5] == 5 and decoded[13] == 13  # pole and car survive (collision trap)
    assert (decoded[19:] == 255).all()


def test_colour_decoding_matches_masking_loop():
    rng = np.random.default_rng(0)
    palette = np.array(TRAIN_COLOURS + ((0, 0, 0), (1, 2, 3)), dtype=np.uint8)
    rgb = palette[rng.integers(0, len(palette), size=(30, 40))]
    rgb[0, 0] = (128, 64, 129)  # one channel off: not road
    expected = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for train_id, colour in enumerate(TRAIN_COLOURS):
        expected[(rgb == colour).all(axis=-1)] = train_id
    np.testing.assert_array_equal(decode_colour_label(rgb), expected)
    assert decode_colour_label(rgb)[0, 0] == 255


def test_gtav_palette_and_rgb_files_decode_alike(tmp_path):
    """Palette fast path == RGB path; palette index 18 (polegroup) has pole's colour."""
    ids = np.array([[7, 17, 18, 26, 0], [33, 5, 9, 23, 29]], dtype=np.uint8)
    palette_png = Image.fromarray(ids)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:34] = CITYSCAPES_ID_COLOURS
    palette_png.putpalette(palette.ravel().tolist())
    palette_png.save(tmp_path / "p.png")
    palette_png.convert("RGB").save(tmp_path / "rgb.png")
    from_palette = decode_gtav_label(tmp_path / "p.png")
    np.testing.assert_array_equal(from_palette, decode_gtav_label(tmp_path / "rgb.png"))
    # Decoding is by colour like the reference: polegroup's (153,153,153) reads as pole.
    assert from_palette.tolist() == [[0, 5, 5, 13, 255], [18, 255, 255, 10, 255]]


def test_palette_lut_handles_short_palettes():
    lut = palette_to_trainid_lut([128, 64, 128, 0, 0, 142])
    assert lut[0] == 0 and lut[1] == 13 and (lut[2:] == 255).all()


def test_id_tables():
    assert CITYSCAPES_LUT[[7, 17, 18, 26, 33, 0, 34, 255]].tolist() == [
        0, 5, 255, 13, 18, 255, 255, 255]
    assert SYNTHIA_LUT[[0, 1, 3, 10, 11, 13, 14, 21, 22, 23]].tolist() == [
        255, 10, 0, 11, 18, 255, 255, 3, 255, 255]
    # Mapillary ids that map to rider, road and pole.
    assert MAPILLARY_LUT[[20, 21, 22]].tolist() == [12, 12, 12]
    assert MAPILLARY_LUT[[13, 24, 41]].tolist() == [0, 0, 0]
    assert MAPILLARY_LUT[[45, 47]].tolist() == [5, 5]
    assert MAPILLARY_LUT[[0, 23, 44, 49, 65, 66]].tolist() == [255] * 6
    assert int((MAPILLARY_LUT != 255).sum()) == 25


def test_synthia_16bit_reader_where_pillow_fails(tmp_path):
    train_ids = np.array([[0, 10, 18, 255], [3, 12, 255, 16]], dtype=np.uint8)
    image = np.zeros((2, 4, 3), dtype=np.uint8)
    _, label_path = write_synthia_sample(tmp_path, "train", "0000001", image, train_ids)
    raw = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (2, 4, 3)
    assert (raw[..., 1] > 255).all()  # instance ids need the low byte too
    # Pillow keeps the high byte of each 16-bit sample: every class id reads as 0.
    assert not np.asarray(Image.open(label_path).convert("RGB"))[..., 0].any()
    np.testing.assert_array_equal(decode_synthia_label(label_path), train_ids)


def test_synthia_single_channel_and_out_of_range_ids(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.array([[3, 8, 300, 22]], dtype=np.uint16))
    assert decode_synthia_label(tmp_path / "gray.png").tolist() == [[0, 13, 255, 255]]


def test_id_decoders_read_palette_indices(tmp_path):
    ids = np.array([[13, 20, 45, 65]], dtype=np.uint8)
    png = Image.fromarray(ids)
    png.putpalette([200, 10, 10] * 256)  # colours are irrelevant for id labels
    png.save(tmp_path / "m.png")
    assert decode_mapillary_label(tmp_path / "m.png").tolist() == [[0, 12, 5, 255]]
    Image.fromarray(np.array([[7, 26, 1]], dtype=np.uint8)).save(tmp_path / "c.png")
    assert decode_cityscapes_label(tmp_path / "c.png").tolist() == [[0, 13, 255]]
    Image.fromarray(np.array([[0, 18, 19, 255]], dtype=np.uint8)).save(tmp_path / "b.png")
    assert decode_bdd_label(tmp_path / "b.png").tolist() == [[0, 18, 255, 255]]


def test_id_decoder_rejects_colour_png(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetReadError, match="rgb.png.*single-channel"):
        decode_cityscapes_label(tmp_path / "rgb.png")
