"""What a style-shift scene is made of: train ids, parts, a pinhole camera and a z-buffer.

A scene is rendered once as a :class:`SceneLayout` (per-pixel class, instance, part, depth,
texture detail and lighting geometry) and then painted in any number of styles. Everything a
style may change (colours, lighting, weather, camera) lives in ``styles.py``; everything the
labels depend on lives here and in ``scene.py`` / ``objects.py``.
"""

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from utils.labels import TrainId


class Part(IntEnum):
    """Material of a pixel inside its object; a style gives each part its own colour rule."""

    BASE = 0         # the object's main surface: paint, plaster, asphalt, foliage, clothes
    GLASS = 1        # windows and windscreens; ``detail`` holds a per-window random value
    DARK = 2         # near-black rubber and hair: tyres, shoes, hair
    TRIM = 3         # frames, bumpers, kerbs, cornices, sign rims: a darker shade of BASE
    MARKING = 4      # white paint: lane markings, zebra stripes, sign faces, number plates
    PAINT_YELLOW = 5  # yellow road paint
    SKIN = 6
    LOWER = 7        # trousers: a second, per-instance garment colour
    TRUNK = 8        # tree trunks (labelled vegetation, as in Cityscapes)
    GAP = 9          # see-through gaps of a fence (labelled fence)
    LAMP_RED = 10    # lamps: ``detail`` 1 = always lit, 0.5 = lit when lights are on, 0 = off
    LAMP_AMBER = 11
    LAMP_GREEN = 12
    LAMP_WHITE = 13


LAMP_PARTS = (Part.LAMP_RED, Part.LAMP_AMBER, Part.LAMP_GREEN, Part.LAMP_WHITE)
LIT_ALWAYS = 1.0
LIT_WITH_LIGHTS = 0.5


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking along +Z, ``height`` metres above the ground plane Y = 0.

    World X points right, Y up, Z forward; the horizon is the image row ``horizon`` and the
    street's vanishing point is at column ``center_x``.
    """

    focal: float      # pixels
    height: float     # metres
    horizon: float    # row (pixels)
    center_x: float   # column (pixels)

    def ground_row(self, z):
        """Image row where the ground at depth ``z`` appears."""
        return self.horizon + self.focal * self.height / z

    def column(self, x, z):
        """Image column of world point (x, ., z)."""
        return self.center_x + self.focal * x / z

    def row(self, y, z):
        """Image row of world point (., y, z)."""
        return self.horizon + self.focal * (self.height - y) / z


@dataclass
class SceneLayout:
    """Per-pixel description of a scene; every array is (H, W).

    ``instance`` indexes ``instance_class`` (instance 0 is the sky). ``detail`` is a
    style-independent texture signal, roughly in [-1, 1] (window randomness for GLASS,
    lamp state for LAMP_* parts). ``shade`` is the direct-sunlight factor of the surface
    orientation in [0, 1]; ``shadow`` is 1 where the sun is blocked. ``world_x`` and
    ``world_y`` (metres) locate each pixel in the world together with ``depth`` (= Z; inf
    for the sky).
    """

    train_ids: np.ndarray   # uint8
    instance: np.ndarray    # int32
    part: np.ndarray        # uint8 (Part)
    depth: np.ndarray       # float32, metres
    detail: np.ndarray      # float32
    shade: np.ndarray       # float32
    shadow: np.ndarray      # float32
    world_x: np.ndarray     # float32
    world_y: np.ndarray     # float32
    camera: Camera
    sun_side: int = 1           # +1: the sun shines from the right (+X), -1: from the left
    sun_elevation: float = 0.8  # radians above the horizon
    sun_azimuth: float = 0.5    # radians between the sun and the X axis, towards the camera
    instance_class: list = field(default_factory=lambda: [int(TrainId.SKY)])

    @classmethod
    def empty(cls, height, width, camera, **sun):
        """All sky; ``sun`` may set ``sun_side``, ``sun_elevation``, ``sun_azimuth``."""
        shape = (height, width)
        return cls(
            train_ids=np.full(shape, TrainId.SKY, np.uint8),
            instance=np.zeros(shape, np.int32),
            part=np.zeros(shape, np.uint8),
            depth=np.full(shape, np.inf, np.float32),
            detail=np.zeros(shape, np.float32),
            shade=np.ones(shape, np.float32),
            shadow=np.zeros(shape, np.float32),
            world_x=np.zeros(shape, np.float32),
            world_y=np.zeros(shape, np.float32),
            camera=camera,
            **sun,
        )

    @property
    def shape(self):
        return self.train_ids.shape

    def pixel_centres(self):
        """Pixel-centre rows ``(H, 1)`` and column offsets from the principal point ``(W,)``."""
        height, width = self.shape
        rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
        offset = np.arange(width, dtype=np.float32) + 0.5 - self.camera.center_x
        return rows, offset

    def sun_direction(self):
        """Unit vector (X, Y, Z) pointing at the sun (behind the camera, to one side)."""
        cos_e = np.cos(self.sun_elevation)
        return (self.sun_side * cos_e * np.cos(self.sun_azimuth), np.sin(self.sun_elevation),
                -cos_e * np.sin(self.sun_azimuth))

    def new_instance(self, train_id):
        """Register an object (or stuff region) of class ``train_id``; returns its id."""
        self.instance_class.append(int(train_id))
        return len(self.instance_class) - 1

    def paint(self, region, mask, depth, instance, part=Part.BASE, detail=0.0, shade=1.0,
              world_x=0.0, world_y=0.0):
        """Z-buffered write of one surface into the window ``region`` = (row slice, col slice).

        ``mask`` is a bool array of the window's shape; every other value (``instance``
        included) is a scalar or an array broadcastable to it. Only pixels where ``depth``
        is nearer than what is already there are written, so surfaces may be painted in any
        order.
        """
        old_depth = self.depth[region]
        depth = np.broadcast_to(np.asarray(depth, np.float32), mask.shape)
        wins = mask & (depth < old_depth)
        if not wins.any():
            return
        instance = np.broadcast_to(np.asarray(instance, np.int32), mask.shape)[wins]
        self.train_ids[region][wins] = np.asarray(self.instance_class, np.uint8)[instance]
        self.instance[region][wins] = instance
        old_depth[wins] = depth[wins]
        for name, value in (("part", part), ("detail", detail), ("shade", shade),
                            ("world_x", world_x), ("world_y", world_y)):
            target = getattr(self, name)[region]
            target[wins] = np.broadcast_to(value, mask.shape)[wins]
        self.shadow[region][wins] = 0.0  # shadows are cast once everything is in place


def full_region(layout):
    """The whole image as a ``paint`` region."""
    return (slice(0, layout.shape[0]), slice(0, layout.shape[1]))


def periodic_noise(rng, size=256, cutoff=16.0):
    """Tileable band-limited noise, zero mean and unit std, ``size`` x ``size`` float32.

    ``cutoff`` is the highest spatial frequency kept, in cycles per texture: white noise is
    low-passed in the Fourier domain, so the result wraps around seamlessly.
    """
    white = rng.standard_normal((size, size))
    ky = np.fft.fftfreq(size)[:, None] * size
    kx = np.fft.rfftfreq(size)[None, :] * size
    spectrum = np.fft.rfft2(white) * np.exp(-(kx ** 2 + ky ** 2) / cutoff ** 2)
    noise = np.fft.irfft2(spectrum, s=(size, size))
    noise -= noise.mean()
    return (noise / (noise.std() + 1e-8)).astype(np.float32)


@dataclass(frozen=True)
class NoiseBank:
    """Three tileable noise textures of one scene, looked up in world units."""

    fine: np.ndarray
    medium: np.ndarray
    coarse: np.ndarray

    @classmethod
    def random(cls, rng, size=256):
        return cls(fine=periodic_noise(rng, size, 90.0),
                   medium=periodic_noise(rng, size, 30.0),
                   coarse=periodic_noise(rng, size, 6.0))

    @staticmethod
    def sample(texture, u, v, texels_per_unit):
        """Nearest-texel lookup of ``texture`` at coordinates (u, v) (any units), wrapping."""
        size = texture.shape[0]
        cols = np.floor(np.asarray(u) * texels_per_unit).astype(np.int64) % size
        rows = np.floor(np.asarray(v) * texels_per_unit).astype(np.int64) % size
        return texture[rows, cols]


def hash01(*keys):
    """Deterministic pseudo-random value in [0, 1) per element of integer arrays ``keys``."""
    value = np.zeros(np.broadcast_shapes(*(np.shape(k) for k in keys)), np.float64)
    for weight, key in zip((12.9898, 78.233, 37.719, 4.581), keys):
        value = value + weight * np.asarray(key, np.float64)
    return np.modf(np.abs(np.sin(value) * 43758.5453))[0].astype(np.float32)


def visibility_fade(pixels_per_period, low=2.0, high=5.0):
    """0 where a pattern's period is under ``low`` pixels, 1 above ``high``: kills moire."""
    return np.clip((pixels_per_period - low) / (high - low), 0.0, 1.0).astype(np.float32)
