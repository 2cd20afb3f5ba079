"""Colour palettes of the styles (sRGB, 0..255): what each class is painted with.

Each class has a few swatches; every object (instance) draws one, so cars, buildings and
clothes vary inside a style while each palette keeps its own overall look. Parts shared by
many classes (glass, tyres, road paint, skin...) have their own colours.
"""

from dataclasses import dataclass
from types import MappingProxyType

from utils.labels import TrainId as T


@dataclass(frozen=True)
class Palette:
    classes: MappingProxyType   # train id -> tuple of RGB swatches
    clothes: tuple              # second garment (Part.LOWER) swatches
    skin: tuple
    glass: tuple
    dark: tuple
    marking: tuple
    paint_yellow: tuple
    trunk: tuple
    jitter: float = 0.06        # per-instance multiplicative colour noise (std)


def _palette(classes, **parts):
    return Palette(classes=MappingProxyType(dict(classes)), **parts)


# Clean synthetic daylight (GTAV-like): saturated paint, warm facades, bright greens.
SOURCE = _palette(
    {
        T.ROAD: ((90, 90, 96), (105, 100, 100), (82, 84, 90)),
        T.SIDEWALK: ((196, 170, 160), (205, 190, 172), (178, 150, 140), (190, 180, 175)),
        T.BUILDING: ((220, 196, 155), (196, 122, 92), (232, 222, 200), (176, 156, 134),
                     (205, 175, 120), (160, 170, 182), (215, 160, 130)),
        T.WALL: ((205, 198, 186), (176, 165, 152), (188, 150, 120)),
        T.FENCE: ((120, 112, 100), (155, 122, 82), (92, 104, 92)),
        T.POLE: ((125, 128, 128), (72, 92, 72), (64, 64, 70)),
        T.TRAFFIC_LIGHT: ((40, 46, 40), (70, 70, 52), (55, 55, 60)),
        T.TRAFFIC_SIGN: ((215, 30, 30), (30, 72, 195), (235, 190, 22), (30, 145, 72)),
        T.VEGETATION: ((72, 146, 40), (92, 156, 50), (60, 124, 44), (105, 150, 60)),
        T.TERRAIN: ((140, 172, 72), (162, 178, 92), (122, 152, 62)),
        T.PERSON: ((205, 42, 42), (42, 62, 165), (232, 202, 62), (52, 52, 52), (232, 232, 232),
                   (62, 142, 82), (152, 82, 162), (230, 120, 40)),
        T.RIDER: ((205, 42, 42), (42, 62, 165), (232, 202, 62), (52, 52, 52), (62, 142, 82)),
        T.CAR: ((185, 30, 30), (32, 62, 155), (232, 232, 232), (30, 30, 32), (162, 162, 168),
                (225, 182, 40), (40, 112, 62)),
        T.TRUCK: ((225, 225, 225), (205, 82, 40), (62, 92, 152), (232, 182, 40)),
        T.BUS: ((212, 40, 40), (240, 200, 40), (60, 122, 205), (232, 232, 232)),
        T.MOTORCYCLE: ((40, 40, 40), (185, 30, 30), (30, 62, 155)),
        T.BICYCLE: ((40, 40, 40), (195, 40, 40), (40, 92, 172), (222, 222, 222)),
    },
    clothes=((42, 52, 92), (32, 32, 32), (122, 112, 92), (82, 82, 82), (62, 62, 120)),
    skin=((232, 192, 162), (196, 142, 112), (122, 82, 62)),
    glass=(70, 92, 118), dark=(28, 28, 30), marking=(238, 238, 232),
    paint_yellow=(232, 192, 42), trunk=(96, 72, 52),
)

# A northern city under clouds (Cityscapes-like): greys, muted greens, dull cars and clothes.
OVERCAST = _palette(
    {
        T.ROAD: ((128, 128, 134), (116, 118, 124), (136, 134, 132)),
        T.SIDEWALK: ((150, 150, 152), (138, 140, 144), (160, 156, 150)),
        T.BUILDING: ((128, 126, 122), (156, 150, 142), (100, 104, 110), (176, 170, 160),
                     (136, 116, 104), (112, 120, 116)),
        T.WALL: ((150, 150, 148), (120, 118, 114)),
        T.FENCE: ((110, 112, 108), (90, 86, 80)),
        T.POLE: ((100, 102, 104), (80, 80, 84)),
        T.TRAFFIC_LIGHT: ((36, 38, 40), (50, 52, 50)),
        T.TRAFFIC_SIGN: ((190, 50, 50), (50, 80, 160), (210, 190, 60)),
        T.VEGETATION: ((66, 88, 52), (58, 78, 56), (84, 98, 62), (70, 80, 40)),
        T.TERRAIN: ((122, 118, 82), (108, 112, 74), (130, 120, 90)),
        T.PERSON: ((42, 42, 48), (72, 72, 82), (92, 72, 62), (52, 62, 82), (122, 122, 122),
                   (150, 40, 40)),
        T.RIDER: ((42, 42, 48), (72, 72, 82), (52, 62, 82), (150, 140, 60)),
        T.CAR: ((92, 92, 98), (32, 32, 36), (202, 202, 206), (42, 52, 82), (122, 34, 34),
                (150, 150, 155)),
        T.TRUCK: ((200, 200, 200), (90, 90, 95), (60, 70, 90)),
        T.BUS: ((200, 200, 190), (80, 110, 140), (200, 170, 60)),
        T.MOTORCYCLE: ((30, 30, 34), (90, 90, 96)),
        T.BICYCLE: ((30, 30, 34), (90, 90, 96), (60, 70, 90)),
    },
    clothes=((32, 32, 40), (60, 60, 70), (80, 70, 60), (40, 48, 70)),
    skin=((214, 176, 150), (170, 124, 100), (110, 76, 60)),
    glass=(55, 60, 70), dark=(30, 30, 32), marking=(205, 205, 200),
    paint_yellow=(200, 172, 70), trunk=(70, 62, 55),
)

# Autumn: foliage turns orange and red, grass dries, brick facades, warm low light.
AUTUMN = _palette(
    {
        **SOURCE.classes,
        T.ROAD: ((64, 62, 64), (74, 70, 70)),
        T.SIDEWALK: ((168, 156, 124), (150, 140, 120), (180, 170, 140)),
        T.BUILDING: ((152, 72, 52), (172, 92, 62), (122, 62, 52), (202, 172, 132),
                     (140, 100, 80), (110, 90, 80)),
        T.WALL: ((150, 90, 70), (170, 150, 120)),
        T.FENCE: ((110, 80, 50), (60, 60, 60)),
        T.VEGETATION: ((196, 104, 32), (214, 156, 42), (164, 62, 30), (150, 120, 40),
                       (180, 80, 40)),
        T.TERRAIN: ((156, 122, 72), (172, 140, 84), (140, 110, 70)),
        T.CAR: ((220, 220, 210), (60, 60, 60), (140, 30, 30), (30, 60, 60), (200, 140, 40)),
        T.PERSON: ((120, 60, 40), (60, 70, 50), (150, 120, 60), (40, 40, 60), (170, 40, 40)),
    },
    clothes=((50, 40, 30), (40, 40, 50), (90, 70, 50)),
    skin=SOURCE.skin, glass=(60, 70, 80), dark=(30, 26, 24), marking=(226, 220, 200),
    paint_yellow=(220, 170, 40), trunk=(60, 45, 35),
)

# A sunny southern city: sun-bleached plaster, sand-coloured ground, olive vegetation.
GLARE = _palette(
    {
        **SOURCE.classes,
        T.ROAD: ((120, 114, 108), (136, 128, 120)),
        T.SIDEWALK: ((214, 200, 170), (226, 214, 190)),
        T.BUILDING: ((232, 208, 160), (220, 190, 140), (240, 232, 214), (200, 160, 110),
                     (226, 200, 170)),
        T.WALL: ((230, 214, 180), (210, 190, 150)),
        T.VEGETATION: ((100, 120, 50), (120, 130, 60), (80, 100, 50)),
        T.TERRAIN: ((196, 172, 120), (210, 186, 132)),
        T.CAR: ((240, 240, 235), (200, 200, 200), (180, 40, 30), (40, 40, 45), (220, 200, 150)),
        T.PERSON: ((240, 240, 235), (200, 60, 50), (60, 110, 170), (230, 200, 100)),
    },
    clothes=((200, 190, 160), (50, 60, 90), (240, 240, 235)),
    skin=((206, 160, 120), (160, 110, 80), (110, 72, 52)),
    glass=(80, 100, 110), dark=(40, 36, 34), marking=(245, 245, 240),
    paint_yellow=(240, 200, 60), trunk=(110, 90, 70),
)
