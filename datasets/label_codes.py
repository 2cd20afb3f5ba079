"""The label encodings of every dataset: lookup tables from raw labels to train ids.

Every decoder maps a raw label to Cityscapes train ids (0..18, 255 = ignore) with ONE
table lookup (DATASETS.md §1.2, §2.2, §3.2, §4, §5.2):

* id labels (Cityscapes labelIds, Synthia class ids, BDD train ids, Mapillary v1.2 ids):
  a 256-entry ``uint8`` table indexed by the raw id;
* GTAV colour labels: the RGB triplet is packed into one 24-bit integer and looked up in a
  2**24-entry table (:func:`decode_colour_label`); palette PNGs are decoded even faster by
  running the palette's 256 colours through that table once (:func:`palette_to_trainid_lut`)
  and then looking up the palette indices.

All tables are read-only module constants (the 16 MiB colour table is built on first use).
The label space itself (class count, ignore label, names, colours) is ``utils/labels.py``.
"""

import functools

import cv2
import numpy as np

from utils.labels import CLASS_NAMES, IGNORE_LABEL, NUM_CLASSES, TRAIN_COLOURS


def _readonly(array):
    array.flags.writeable = False
    return array


def _id_lut(pairs):
    """256-entry uint8 table: raw id -> train id, 255 for every id not in ``pairs``."""
    lut = np.full(256, IGNORE_LABEL, dtype=np.uint8)
    for raw_id, train_id in pairs.items():
        lut[raw_id] = train_id
    return _readonly(lut)


# DATASETS.md §3.2: Cityscapes labelId -> trainId (ids not listed, incl. 34..255, -> 255).
CITYSCAPES_ID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
CITYSCAPES_LUT = _id_lut(CITYSCAPES_ID_TO_TRAINID)

# DATASETS.md §2.2: Synthia class id -> trainId. The reference passes unlisted ids through
# unchanged; none occur in the data, and we map them to 255 so a stray value can never
# reach the loss as an out-of-range class.
SYNTHIA_ID_TO_TRAINID = {
    1: 10, 2: 2, 3: 0, 4: 1, 5: 4, 6: 8, 7: 5, 8: 13, 9: 7, 10: 11, 11: 18, 12: 17,
    15: 6, 16: 9, 17: 12, 18: 14, 19: 15, 20: 16, 21: 3,
}
SYNTHIA_LUT = _id_lut(SYNTHIA_ID_TO_TRAINID)

# DATASETS.md §4: BDD labels already hold train ids; anything else becomes 255.
BDD_LUT = _id_lut({train_id: train_id for train_id in range(NUM_CLASSES)})

# DATASETS.md §5.2: the reference's hard-coded Mapillary v1.2 id -> trainId table.
MAPILLARY_ID_TO_TRAINID = {
    2: 1, 3: 4, 6: 3, 13: 0, 15: 1, 17: 2, 19: 11, 20: 12, 21: 12, 22: 12, 24: 0, 27: 10,
    29: 9, 30: 8, 41: 0, 45: 5, 47: 5, 48: 6, 50: 7, 52: 18, 54: 15, 55: 13, 57: 17,
    58: 16, 61: 14,
}
MAPILLARY_LUT = _id_lut(MAPILLARY_ID_TO_TRAINID)

# DATASETS.md §5.2: the v1.2 "readable" name of every id 0..65.
MAPILLARY_READABLE = (
    "Bird", "Ground Animal", "Curb", "Fence", "Guard Rail", "Barrier", "Wall", "Bike Lane",
    "Crosswalk - Plain", "Curb Cut", "Parking", "Pedestrian Area", "Rail Track", "Road",
    "Service Lane", "Sidewalk", "Bridge", "Building", "Tunnel", "Person", "Bicyclist",
    "Motorcyclist", "Other Rider", "Lane Marking - Crosswalk", "Lane Marking - General",
    "Mountain", "Sand", "Sky", "Snow", "Terrain", "Vegetation", "Water", "Banner", "Bench",
    "Bike Rack", "Billboard", "Catch Basin", "CCTV Camera", "Fire Hydrant", "Junction Box",
    "Mailbox", "Manhole", "Phone Booth", "Pothole", "Street Light", "Pole",
    "Traffic Sign Frame", "Utility Pole", "Traffic Light", "Traffic Sign (Back)",
    "Traffic Sign (Front)", "Trash Can", "Bicycle", "Boat", "Bus", "Car", "Caravan",
    "Motorcycle", "On Rails", "Other Vehicle", "Trailer", "Truck", "Wheeled Slow",
    "Car Mount", "Ego Vehicle", "Unlabeled")
# docs/VFM_METHODS.md §4.2: the name rules of Rein's Mapillary conversion, in their order.
_REIN_NAME_RULES = ((("trafficsign", "front", "back"), 7), (("onrail",), 16),
                    (("cyclist", "rider"), 12), (("pole", "streetlight"), 5),
                    (("curb", "pedestrianarea"), 1),
                    (("crosswalkplain", "parking", "bikelane", "servicelane", "lanemarking"), 0))


def rein_mapillary_train_id(readable, class_names):
    """Rein's train id of a Mapillary class (§4.2): its readable name in lower case without
    spaces or hyphens equal to a Cityscapes class name (``class_names`` normalised alike),
    else the first substring rule that matches, else 255."""
    name = readable.lower().replace(" ", "").replace("-", "")
    names = [n.replace(" ", "") for n in class_names]
    if name in names:
        return names.index(name)
    for parts, train_id in _REIN_NAME_RULES:
        if any(part in name for part in parts):
            return train_id
    return IGNORE_LABEL


def _rein_mapillary_table():
    table = {i: rein_mapillary_train_id(r, CLASS_NAMES) for i, r in enumerate(MAPILLARY_READABLE)}
    return {raw_id: train_id for raw_id, train_id in table.items() if train_id != IGNORE_LABEL}


# Mapillary as Rein evaluates it (--eval_protocol rein): 34 ids, e.g. bike lane, parking and
# lane markings are road, street lights pole, and manhole is ignored (RobustNet: road).
MAPILLARY_REIN_ID_TO_TRAINID = _rein_mapillary_table()
MAPILLARY_REIN_LUT = _id_lut(MAPILLARY_REIN_ID_TO_TRAINID)


def _ids(table):
    return ", ".join(str(raw_id) for raw_id in sorted(table))


# What the label files of each dataset must contain for a pixel to get a train id (named in
# the error for a split whose labels are all ignore).
EXPECTED_LABEL_VALUES = {
    "gtav": "palette or RGB label PNGs with the colours of the 19 Cityscapes train classes "
            "(DATASETS.md §1.2)",
    "synthia": f"16-bit label PNGs with a Synthia class id in the first channel, one of "
               f"{_ids(SYNTHIA_ID_TO_TRAINID)}",
    "cityscapes": f"*_gtFine_labelIds.png with Cityscapes labelIds "
                  f"{_ids(CITYSCAPES_ID_TO_TRAINID)}",
    "bdd100k": f"8-bit label PNGs holding train ids 0..{NUM_CLASSES - 1}",
    "mapillary": f"v1.2 label PNGs with Mapillary ids {_ids(MAPILLARY_ID_TO_TRAINID)}",
}


def pack_rgb(rgb):
    """Pack RGB (..., 3) uint8 into one uint32 per pixel: R | G << 8 | B << 16.

    OpenCV appends the alpha byte (a SIMD copy), so each pixel's four bytes can be read as
    one little-endian uint32; dropping alpha leaves the packed colour. About 3x faster than
    shifting and or-ing three widened channels.
    """
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3], dtype=np.uint8)
    rgba = cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2RGBA)
    packed = rgba.view("<u4").reshape(rgb.shape[:-1])
    np.bitwise_and(packed, 0xFFFFFF, out=packed)
    return packed


@functools.cache
def colour_lut():
    """Read-only (2**24,) uint8 table: packed RGB colour -> train id (255 if not a class colour)."""
    lut = np.full(1 << 24, IGNORE_LABEL, dtype=np.uint8)
    lut[pack_rgb(np.array(TRAIN_COLOURS, dtype=np.uint8))] = np.arange(NUM_CLASSES)
    return _readonly(lut)


def apply_lut(ids, lut):
    """``lut[ids]`` for a uint8 id array and a 256-entry uint8 table (OpenCV's SIMD lookup)."""
    ids = np.ascontiguousarray(ids, dtype=np.uint8)
    return cv2.LUT(ids, lut).reshape(ids.shape)


def decode_colour_label(rgb):
    """GTAV colour label (H, W, 3 or 4) uint8 -> train ids (H, W) uint8.

    A pixel gets train id c iff its R, G and B all equal the colour of c (alpha ignored).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) colour label, got shape {rgb.shape}")
    return np.take(colour_lut(), pack_rgb(rgb))


def palette_to_trainid_lut(palette):
    """256-entry uint8 table mapping palette indices to train ids by the palette's colours.

    ``palette`` is PIL's flat ``getpalette()`` list (or an (n, 3) array, n <= 256); missing
    entries count as black. Indexing a palette image's index array with this table gives
    exactly what decoding its RGB rendering by colour would.
    """
    colours = np.zeros((256, 3), dtype=np.uint8)
    flat = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
    colours[:len(flat)] = flat
    return np.take(colour_lut(), pack_rgb(colours))

