"""The one home of the label space: class count, ignore label, class names, train ids, palette.

Every module that needs one of these facts imports it from here. The per-dataset label
*encodings* (raw id -> train id tables, GTAV colours) live in ``datasets/label_codes.py``.
"""

from enum import IntEnum

import numpy as np

NUM_CLASSES = 19
IGNORE_LABEL = 255


class TrainId(IntEnum):
    """The 19 Cityscapes train ids (DATASETS.md §0.1)."""

    ROAD = 0
    SIDEWALK = 1
    BUILDING = 2
    WALL = 3
    FENCE = 4
    POLE = 5
    TRAFFIC_LIGHT = 6
    TRAFFIC_SIGN = 7
    VEGETATION = 8
    TERRAIN = 9
    SKY = 10
    PERSON = 11
    RIDER = 12
    CAR = 13
    TRUCK = 14
    BUS = 15
    TRAIN = 16
    MOTORCYCLE = 17
    BICYCLE = 18


CLASS_NAMES = tuple(member.name.lower().replace("_", " ") for member in TrainId)

# DATASETS.md §0.1: colour of each train id. The GTAV colour table is built from these 19
# entries only, never from the full Cityscapes label list: there, polegroup shares pole's
# colour and license plate shares car's, and a dict built from it would delete pole and car.
TRAIN_COLOURS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

# (256, 3) uint8: the 19 colours at their train ids, black elsewhere (incl. 255). Read-only.
PALETTE = np.zeros((256, 3), dtype=np.uint8)
PALETTE[:NUM_CLASSES] = TRAIN_COLOURS
PALETTE.flags.writeable = False


def colorize(train_ids):
    """(H, W) integer train ids -> (H, W, 3) uint8 RGB with :data:`PALETTE` (ignore is black)."""
    ids = np.asarray(train_ids)
    if ids.ndim != 2:
        raise ValueError(f"expected an (H, W) id map, got shape {ids.shape}")
    return PALETTE[ids.astype(np.uint8)]
