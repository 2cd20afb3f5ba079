"""Styles: how a :class:`SceneLayout` looks. ``render_style`` paints a layout in one style.

A style changes appearance only (labels come from the layout): palette, texture contrast,
sky, sun and ambient light, shadows, lamps and lit windows, fog, and the camera (exposure,
contrast, saturation, hue, white balance, blur, sensor noise, vignetting). Every numeric
range is drawn per image, so no style is constant, the source included.

Painting pipeline: albedo (palette + parts + texture) -> lighting (ambient + sun x shade x
shadow) -> sky -> emission (lamps, windows, headlights, glow) -> fog -> camera.
"""

from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np

from utils.labels import TrainId

from . import palettes
from .layout import LAMP_PARTS, LIT_ALWAYS, LIT_WITH_LIGHTS, Part

# How strongly the scene's texture signal modulates each class's albedo (before the
# style's own ``texture`` gain): foliage and grass are textured, paint is smooth.
TEXTURE_GAIN = np.zeros(256, np.float32)
for _train_id, _gain in {TrainId.ROAD: 0.22, TrainId.SIDEWALK: 0.3, TrainId.BUILDING: 0.25,
                         TrainId.WALL: 0.3, TrainId.FENCE: 0.2, TrainId.VEGETATION: 0.5,
                         TrainId.TERRAIN: 0.4}.items():
    TEXTURE_GAIN[_train_id] = _gain
TEXTURED_PARTS = (Part.BASE, Part.TRIM)
LAMP_COLOURS = {Part.LAMP_RED: (1.0, 0.12, 0.08), Part.LAMP_AMBER: (1.0, 0.62, 0.08),
                Part.LAMP_GREEN: (0.15, 1.0, 0.5), Part.LAMP_WHITE: (1.0, 0.96, 0.85)}
WINDOW_LIGHT = np.array([1.0, 0.82, 0.52], np.float32)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Style:
    """Appearance parameters; (lo, hi) tuples are drawn uniformly per image."""

    name: str
    description: str
    palette: palettes.Palette
    texture: tuple = (0.9, 1.1)            # gain on the scene's texture signal
    sky_top: tuple = (70, 130, 215)        # sRGB at the top of the image
    sky_horizon: tuple = (185, 210, 235)   # sRGB at the horizon
    cloud: tuple = (245, 245, 248)
    cloud_cover: tuple = (0.0, 0.4)        # fraction of the sky
    ambient: tuple = (0.42, 0.55)          # skylight reaching every surface
    ambient_colour: tuple = (0.95, 0.98, 1.05)
    sun: tuple = (0.5, 0.7)                # direct sunlight on a surface facing the sun
    sun_colour: tuple = (1.05, 1.0, 0.92)
    shadow: float = 0.85                   # fraction of the sunlight a shadow removes
    lights: tuple = (0.0, 0.0)             # lamp / lit-window emission (0 by day)
    lit_windows: float = 0.0               # fraction of building windows lit
    glow: float = 0.0                      # halo around light sources
    headlights: float = 0.0                # ego-car headlights on the road ahead
    fog_distance: tuple | None = None      # metres where 63 % of the contrast is gone
    fog_colour: tuple = (200, 204, 208)
    exposure: tuple = (0.92, 1.08)
    contrast: tuple = (0.95, 1.08)
    saturation: tuple = (0.95, 1.15)
    hue_shift: tuple = (-6.0, 6.0)         # degrees, whole image
    tint: tuple = (1.0, 1.0, 1.0)          # white balance gains
    blur: tuple = (0.0, 0.35)              # Gaussian sigma, pixels at 512 px width
    noise: tuple = (0.0, 0.006)            # sensor noise std (image in [0, 1])
    vignette: float = 0.0                  # darkening of the corners


SOURCE_STYLE = "source"
STYLES = MappingProxyType({style.name: style for style in (
    Style("source", "clean synthetic daylight (GTAV-like): saturated palette, crisp, sunny",
          palettes.SOURCE),
    Style("overcast", "cloudy northern city (Cityscapes-like): grey palette, flat light, "
          "slight blur and noise", palettes.OVERCAST, texture=(1.2, 1.5),
          sky_top=(168, 176, 188), sky_horizon=(214, 218, 222), cloud=(232, 234, 236),
          cloud_cover=(0.4, 0.9), ambient=(0.85, 1.0), ambient_colour=(0.98, 1.0, 1.03),
          sun=(0.0, 0.12), shadow=0.5, exposure=(0.95, 1.1), contrast=(0.8, 0.95),
          saturation=(0.6, 0.85), hue_shift=(-10.0, 10.0), tint=(0.97, 1.0, 1.04),
          blur=(0.4, 0.9), noise=(0.008, 0.02), vignette=0.15),
    Style("night", "night: dark, blue ambient, lamps, lit windows and headlights, strong "
          "sensor noise (BDD-like)", palettes.SOURCE, texture=(0.6, 0.9),
          sky_top=(4, 6, 16), sky_horizon=(26, 28, 44), cloud=(36, 34, 44),
          cloud_cover=(0.0, 0.3), ambient=(0.08, 0.15), ambient_colour=(0.65, 0.75, 1.1),
          sun=(0.0, 0.0), shadow=0.0, lights=(0.9, 1.2), lit_windows=0.35, glow=0.6,
          headlights=0.9, exposure=(1.0, 1.4), contrast=(0.9, 1.05), saturation=(0.7, 0.9),
          hue_shift=(-10.0, 10.0), tint=(1.0, 0.95, 1.05), blur=(0.6, 1.2),
          noise=(0.025, 0.05), vignette=0.3),
    Style("fog", "dense fog: depth-dependent haze towards grey, flat light, soft",
          palettes.OVERCAST, texture=(0.8, 1.0), sky_top=(196, 200, 204),
          sky_horizon=(204, 206, 208), cloud=(210, 212, 214), cloud_cover=(0.0, 0.2),
          ambient=(0.8, 0.95), sun=(0.0, 0.1), shadow=0.3, lights=(0.2, 0.4), glow=0.4,
          fog_distance=(22.0, 55.0), fog_colour=(196, 200, 204), exposure=(0.95, 1.08),
          contrast=(0.8, 0.95), saturation=(0.6, 0.85), blur=(0.5, 1.0), noise=(0.005, 0.012)),
    Style("autumn", "autumn afternoon: orange foliage, dry grass, brick, warm low sun, "
          "hard shadows", palettes.AUTUMN, texture=(1.1, 1.4), sky_top=(100, 142, 200),
          sky_horizon=(246, 206, 160), cloud=(250, 226, 200), cloud_cover=(0.1, 0.5),
          ambient=(0.3, 0.4), ambient_colour=(0.85, 0.9, 1.1), sun=(0.75, 0.95),
          sun_colour=(1.1, 0.82, 0.55), shadow=0.95, exposure=(0.95, 1.1),
          contrast=(1.05, 1.2), saturation=(1.0, 1.2), hue_shift=(-8.0, 8.0),
          blur=(0.2, 0.6), noise=(0.004, 0.012)),
    Style("glare", "harsh midday sun in a southern city: bleached palette, over-exposed "
          "highlights, hazy, hard shadows", palettes.GLARE, texture=(0.5, 0.8),
          sky_top=(150, 190, 230), sky_horizon=(228, 234, 240), cloud_cover=(0.0, 0.1),
          ambient=(0.45, 0.55), sun=(0.8, 1.0), sun_colour=(1.08, 1.02, 0.9), shadow=0.9,
          fog_distance=(150.0, 300.0), fog_colour=(236, 232, 222), exposure=(1.15, 1.45),
          contrast=(1.05, 1.25), saturation=(0.6, 0.8), hue_shift=(-6.0, 6.0),
          tint=(1.04, 1.0, 0.92), blur=(0.3, 0.7), noise=(0.004, 0.01)),
)})
TARGET_STYLES = tuple(name for name in STYLES if name != SOURCE_STYLE)


def render_style(layout, style_name, rng):
    """Paint ``layout`` in style ``style_name``.

    Args:
        layout: a :class:`SceneLayout` from ``render_scene``.
        style_name: a key of :data:`STYLES`.
        rng: ``np.random.Generator`` for the per-image draws (palette picks, light, noise).

    Returns:
        uint8 (H, W, 3) RGB image.
    """
    if style_name not in STYLES:
        raise ValueError(f"unknown style {style_name!r}; expected one of {sorted(STYLES)}")
    style = STYLES[style_name]
    width = layout.shape[1]

    def draw(bounds):
        """One per-image parameter, uniform in ``bounds`` = (lo, hi)."""
        return rng.uniform(*bounds)

    albedo = _albedo(layout, style, rng, draw(style.texture))
    rgb = albedo * _lighting(layout, style, draw(style.ambient), draw(style.sun))
    rgb = _sky(layout, style, rgb, draw(style.cloud_cover))
    rgb = _emission(layout, style, rgb, albedo, draw(style.lights))
    if style.fog_distance is not None:
        rgb = _fog(layout, rgb, draw(style.fog_distance), _unit(style.fog_colour))
    rgb = _camera(rgb, style, draw, rng, width)
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _unit(rgb):
    return np.asarray(rgb, np.float32) / 255.0


def _instance_colours(instance_class, swatches_of, jitter, rng):
    """(n_instances, 3) colours: one swatch per instance, with brightness jitter ``jitter``
    (relative std) and a quarter of that per channel (a slight tint)."""
    instance_class = np.asarray(instance_class)
    colours = np.zeros((len(instance_class), 3), np.float32)
    for train_id in np.unique(instance_class):
        swatches = swatches_of(int(train_id))
        if swatches is None:
            continue
        members = np.flatnonzero(instance_class == train_id)
        colours[members] = _unit(swatches)[rng.integers(len(swatches), size=len(members))]
    brightness = 1.0 + jitter * rng.standard_normal((len(colours), 1))
    tint = 1.0 + 0.25 * jitter * rng.standard_normal(colours.shape)
    return np.clip(colours * brightness * tint, 0.0, 1.0).astype(np.float32)


def _albedo(layout, style, rng, texture_gain):
    """(H, W, 3) surface colour before lighting."""
    palette = style.palette
    classes = layout.instance_class
    base = _instance_colours(classes, palette.classes.get, palette.jitter, rng)
    clothes = _instance_colours(classes, lambda _: palette.clothes, palette.jitter, rng)
    skin = _instance_colours(classes, lambda _: palette.skin, 0.03, rng)
    instance, part = layout.instance, layout.part
    albedo = base[instance]
    fixed = {Part.GLASS: palette.glass, Part.DARK: palette.dark, Part.MARKING: palette.marking,
             Part.PAINT_YELLOW: palette.paint_yellow, Part.TRUNK: palette.trunk}
    for part_id, colour in fixed.items():
        albedo[part == part_id] = _unit(colour)
    for part_id, table in ((Part.LOWER, clothes), (Part.SKIN, skin)):
        where = part == part_id
        albedo[where] = table[instance[where]]
    albedo[part == Part.TRIM] *= 0.6
    albedo[part == Part.GAP] *= 0.3
    for lamp in LAMP_PARTS:
        albedo[part == lamp] = 0.35 * np.asarray(LAMP_COLOURS[lamp], np.float32)
    # Texture: a multiplicative modulation by the layout's detail signal.
    gain = TEXTURE_GAIN[layout.train_ids] * texture_gain * np.isin(part, TEXTURED_PARTS)
    albedo *= np.clip(1.0 + gain * layout.detail, 0.2, 2.0)[..., None]
    glass = part == Part.GLASS
    albedo[glass] *= (0.7 + 0.6 * layout.detail[glass])[:, None]  # varied reflections
    return albedo


def _lighting(layout, style, ambient, sun):
    """(H, W, 3) light reaching each surface: coloured skylight plus coloured sunlight."""
    direct = sun * layout.shade * (1.0 - style.shadow * layout.shadow)
    return (ambient * np.asarray(style.ambient_colour, np.float32)
            + direct[..., None] * np.asarray(style.sun_colour, np.float32))


def _sky(layout, style, rgb, cloud_cover):
    """Replace sky pixels with a vertical gradient and clouds."""
    sky = layout.train_ids == TrainId.SKY
    rows, _ = np.nonzero(sky)
    horizon = max(layout.camera.horizon, 1.0)
    up = np.clip((horizon - rows) / horizon, 0.0, 1.0)[:, None] ** 0.7
    gradient = (1.0 - up) * _unit(style.sky_horizon) + up * _unit(style.sky_top)
    threshold = 1.2 - 2.4 * cloud_cover  # detail is ~N(0, 1)
    clouds = np.clip((layout.detail[sky] - threshold) * 1.5, 0.0, 1.0)[:, None] * (cloud_cover > 0)
    rgb[sky] = (1.0 - clouds) * gradient + clouds * _unit(style.cloud)
    return rgb


def _emission(layout, style, rgb, albedo, lights):
    """Add lamps, lit windows, headlights and their glow."""
    part, detail = layout.part, layout.detail
    light = np.zeros_like(rgb)
    for lamp in LAMP_PARTS:
        on = (part == lamp) & ((detail >= LIT_ALWAYS) | ((detail >= LIT_WITH_LIGHTS) & (
            lights > 0)))
        strength = np.where(detail[on] >= LIT_ALWAYS, max(lights, 0.8), lights)[:, None]
        light[on] = strength * np.asarray(LAMP_COLOURS[lamp], np.float32)
    if style.lit_windows > 0 and lights > 0:
        windows = ((part == Part.GLASS) & (layout.train_ids == TrainId.BUILDING)
                   & (detail > 1.0 - style.lit_windows))
        light[windows] = 0.8 * lights * WINDOW_LIGHT
    rgb = rgb + light
    if style.glow > 0:
        sigma = 0.012 * layout.shape[1]
        rgb += style.glow * cv2.GaussianBlur(light, (0, 0), sigma)
    if style.headlights > 0:
        on_ground = (layout.world_y == 0.0) & np.isfinite(layout.depth)
        beam = (np.exp(-(layout.world_x / 3.5) ** 2) * np.exp(-layout.depth / 22.0)
                * on_ground)
        rgb += style.headlights * beam[..., None] * albedo
    return rgb


def _fog(layout, rgb, distance, colour):
    visible = np.exp(-layout.depth / distance)[..., None]  # depth inf -> 0: the sky is fog
    return rgb * visible + colour * (1.0 - visible)


def _camera(rgb, style, draw, rng, width):
    """Exposure, white balance, hue, saturation, contrast, vignette, blur, sensor noise."""
    rgb = rgb * draw(style.exposure) * np.asarray(style.tint, np.float32)
    rgb = np.clip(rgb, 0.0, 1.0)  # the sensor saturates before any processing
    luma = rgb @ LUMA
    chroma = rgb - luma[..., None]
    angle = np.deg2rad(draw(style.hue_shift))
    chroma = _rotate_hue(chroma, angle) * draw(style.saturation)
    mean = luma.mean()
    luma = mean + (luma - mean) * draw(style.contrast)
    rgb = luma[..., None] + chroma
    if style.vignette > 0:
        height = rgb.shape[0]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
        rgb *= (1.0 - style.vignette * 0.5 * r2)[..., None]
    sigma = draw(style.blur) * width / 512.0
    if sigma > 0.05:
        rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), sigma)
    noise_std = draw(style.noise)
    if noise_std > 0:
        # Shot noise grows with the signal; read noise does not.
        level = np.sqrt(np.clip(rgb, 0.0, 1.0) + 0.05)
        rgb = rgb + noise_std * level * rng.standard_normal(rgb.shape).astype(np.float32)
    return rgb


def _rotate_hue(chroma, angle):
    """Rotate colour around the grey axis by ``angle`` radians (Rodrigues, axis (1,1,1))."""
    cos, sin = np.cos(angle), np.sin(angle)
    k = 1.0 / 3.0
    rotation = np.array([
        [cos + k * (1 - cos), k * (1 - cos) - np.sqrt(k) * sin, k * (1 - cos) + np.sqrt(k) * sin],
        [k * (1 - cos) + np.sqrt(k) * sin, cos + k * (1 - cos), k * (1 - cos) - np.sqrt(k) * sin],
        [k * (1 - cos) - np.sqrt(k) * sin, k * (1 - cos) + np.sqrt(k) * sin, cos + k * (1 - cos)],
    ], np.float32)
    return chroma @ rotation.T
