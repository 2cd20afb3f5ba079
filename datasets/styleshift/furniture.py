"""Street furniture and plants: street lamps, traffic signs, traffic lights, trees, bushes.

Same conventions as ``objects.py``: billboards in local metres (``s`` right, ``t`` up).
"""

import numpy as np

from utils.labels import TrainId

from .layout import LIT_ALWAYS, LIT_WITH_LIGHTS, NoiseBank, Part
from .objects import Billboard, blob, box, disc, segment


def _shaft(bb, s, t, height, radius):
    """A vertical cylinder (pole, trunk): its mask and a left-to-right rounded shade."""
    radius = bb.thick(radius)
    across = np.clip(s / radius, -1.0, 1.0)
    mask = (np.abs(s) < radius) & (t < height)
    return mask, 0.45 + 0.55 * np.sqrt(1.0 - across ** 2)


def draw_street_lamp(layout, rng, x, z, arm_direction):
    """A lamp post whose arm reaches over the road (``arm_direction`` -1 left / +1 right)."""
    height, arm = rng.uniform(6.0, 9.0), rng.uniform(1.0, 2.5)
    bb = Billboard.at(layout, x, z, arm + 0.5, height + 0.6)
    if bb is None:
        return
    s, t = bb.s * arm_direction, bb.t
    shaft, shade = _shaft(bb, s, t, height, rng.uniform(0.08, 0.13))
    arm_mask = segment(s, t, (0.0, height - 0.2), (arm, height + 0.3), bb.thick(0.05))
    head = blob(s, t, arm, height + 0.22, 0.35, 0.1, 4.0)
    lamp = head & (t < height + 0.2)
    part = np.select([lamp, head], [Part.LAMP_WHITE, Part.TRIM], Part.BASE).astype(np.uint8)
    bb.paint(shaft | arm_mask | head, layout.new_instance(TrainId.POLE), part,
             np.where(lamp, LIT_WITH_LIGHTS, 0.0), np.where(shaft, shade, 0.8))


SIGN_SHAPES = ("circle", "triangle", "rectangle", "diamond")


def draw_traffic_sign(layout, rng, x, z):
    """One or two sign panels on a thin pole."""
    pole_height = rng.uniform(2.2, 3.0)
    size = rng.uniform(0.55, 0.8)
    n_panels = 2 if rng.random() < 0.25 else 1
    top = pole_height + 1.1 * size * n_panels
    bb = Billboard.at(layout, x, z, 1.0 * size + 0.1, top)
    if bb is None:
        return
    s, t = bb.s, bb.t
    shaft, shade = _shaft(bb, s, t, top - 0.5 * size, rng.uniform(0.04, 0.06))
    bb.paint(shaft, layout.new_instance(TrainId.POLE), Part.BASE, shade=shade)
    for k in range(n_panels):
        centre = pole_height + 0.5 * size + 1.1 * size * k
        shape = SIGN_SHAPES[rng.integers(len(SIGN_SHAPES))]
        mask, part = _sign_panel(s, t - centre, shape, size)
        bb.paint(mask, layout.new_instance(TrainId.TRAFFIC_SIGN), part, depth_offset=-0.03)


def _sign_panel(s, t, shape, size):
    """Mask and parts of a sign panel centred at (0, 0): rim, face and symbol differ."""
    r = 0.5 * size
    if shape == "circle":
        d = np.hypot(s, t) / r
        inside, rim = d < 1.0, d > 0.75
        symbol = (np.abs(s) < 0.5 * r) & (np.abs(t) < 0.13 * r)
        parts = [(symbol & ~rim, Part.DARK), (rim, Part.BASE)]
        face = Part.MARKING
    elif shape == "triangle":
        side = 2.2 * r
        tri_h = side * np.sqrt(3.0) / 2.0
        base, apex = -tri_h / 3.0, 2.0 * tri_h / 3.0
        inside = (t >= base) & (t <= apex) & (np.abs(s) <= (apex - t) / np.sqrt(3.0))
        m = 0.14 * side
        inner = (t >= base + m) & (t <= apex - 2 * m) & (np.abs(s) <= (apex - 2 * m - t) /
                                                        np.sqrt(3.0))
        symbol = box(s, t, -0.04 * side, 0.04 * side, base + 2 * m, base + 0.5 * tri_h)
        parts = [(symbol & inner, Part.DARK), (~inner, Part.BASE)]
        face = Part.MARKING
    elif shape == "rectangle":
        hw, hh = 0.9 * size, 0.42 * size
        inside = (np.abs(s) < hw) & (np.abs(t) < hh)
        border = (np.abs(s) > hw - 0.06) | (np.abs(t) > hh - 0.06)
        arrow = (segment(s, t, (-0.6 * hw, 0.0), (0.55 * hw, 0.0), 0.05)
                 | segment(s, t, (0.25 * hw, 0.45 * hh), (0.6 * hw, 0.0), 0.05)
                 | segment(s, t, (0.25 * hw, -0.45 * hh), (0.6 * hw, 0.0), 0.05))
        parts = [(border | arrow, Part.MARKING)]
        face = Part.BASE
    else:
        d = (np.abs(s) + np.abs(t)) / (1.1 * r)
        inside = d < 1.0
        parts = [(d > 0.72, Part.MARKING), (d > 0.55, Part.DARK)]
        face = Part.BASE
    part = np.select([m for m, _ in parts], [p for _, p in parts], face).astype(np.uint8)
    return inside, part


def draw_traffic_light(layout, rng, x, z, arm=0.0):
    """A traffic light on a post, or hanging from an arm of lateral length ``arm`` (metres)."""
    hanging = arm != 0.0
    pole_height = rng.uniform(5.5, 6.5) if hanging else rng.uniform(2.4, 3.4)
    housing_s = arm
    bottom = pole_height - 0.95 if hanging else pole_height
    bb = Billboard.at(layout, x, z, abs(arm) + 0.4, max(pole_height, bottom + 0.9) + 0.1)
    if bb is None:
        return
    s, t = bb.s, bb.t
    shaft, shade = _shaft(bb, s, t, pole_height, rng.uniform(0.07, 0.12))
    pole = shaft
    if hanging:
        pole = pole | segment(s, t, (0.0, pole_height - 0.1), (arm, pole_height - 0.1),
                              bb.thick(0.06))
    bb.paint(pole, layout.new_instance(TrainId.POLE), Part.BASE, shade=np.where(shaft, shade,
                                                                                 0.8))
    ds = s - housing_s
    housing = box(ds, t, -0.17, 0.17, bottom, bottom + 0.85)
    back = box(ds, t, -0.25, 0.25, bottom - 0.05, bottom + 0.9)
    lit = rng.integers(3)
    lamps, lit_mask = [], np.zeros_like(housing)
    for k, lamp_part in enumerate((Part.LAMP_RED, Part.LAMP_AMBER, Part.LAMP_GREEN)):
        lamp = disc(ds, t, 0.0, bottom + 0.7 - 0.275 * k, bb.thick(0.1))
        lamps.append((lamp, lamp_part))
        if k == lit:
            lit_mask = lamp
    part = np.select([m for m, _ in lamps] + [~housing], [p for _, p in lamps] + [Part.TRIM],
                     Part.BASE).astype(np.uint8)
    bb.paint(housing | back, layout.new_instance(TrainId.TRAFFIC_LIGHT), part,
             np.where(lit_mask, LIT_ALWAYS, 0.0), depth_offset=-0.03)


def draw_tree(layout, rng, noise, x, z, trunk_height=None, crown_radius=None):
    """A tree: trunk plus a ragged, leafy crown (round or conical); both are vegetation."""
    trunk_height = rng.uniform(1.2, 2.8) if trunk_height is None else trunk_height
    crown_radius = rng.uniform(1.3, 3.2) if crown_radius is None else crown_radius
    conifer = trunk_height > 0 and rng.random() < 0.2
    crown_top = trunk_height + crown_radius * (3.2 if conifer else 2.0)
    bb = Billboard.at(layout, x, z, 1.35 * crown_radius, crown_top)
    if bb is None:
        return (x, z, 0.6 * crown_radius, 1.2 * crown_radius)
    s, t = bb.s, bb.t
    centre = trunk_height + crown_radius
    # Leaf texture in the tree's own frame; the offsets make every tree look different.
    leaves = (0.8 * NoiseBank.sample(noise.medium, s + 7.3 * x, t + 3.1 * z, 30.0)
              + 0.5 * NoiseBank.sample(noise.fine, s + 7.3 * x, t + 3.1 * z, 30.0))
    if conifer:
        along = np.clip((crown_top - t) / (crown_top - trunk_height), 0.0, 1.0)
        closeness = np.abs(s) / (0.9 * crown_radius * along + 1e-6)
        crown = (closeness < 1.0) & (t > 0.7 * trunk_height)
        sphere = np.sqrt(np.clip(1.0 - closeness ** 2, 0.0, 1.0))
    else:
        n_lobes = rng.integers(5, 11)
        offsets = rng.normal(0.0, 0.35 * crown_radius, (n_lobes, 2))
        radii = crown_radius * rng.uniform(0.45, 0.75, n_lobes)
        closeness = np.hypot(s, t - centre) / (0.7 * crown_radius)
        for (ds, dt), radius in zip(offsets, radii):
            closeness = np.minimum(closeness, np.hypot(s - ds, t - centre - dt) / radius)
        crown = closeness < 1.0
        sphere = np.sqrt(np.clip(1.0 - (np.hypot(s, t - centre) / (1.3 * crown_radius)) ** 2,
                                 0.0, 1.0))
    crown &= ~((closeness > 0.75) & (leaves < -0.5))  # ragged, see-through outline
    trunk, trunk_shade = _shaft(bb, s, t, centre if not conifer else 0.8 * crown_top,
                                rng.uniform(0.1, 0.22) * max(crown_radius / 2.2, 0.6))
    if trunk_height == 0:
        trunk = np.zeros_like(crown)
    shown_trunk = trunk & (~crown | (leaves < -0.9))
    shade = np.where(shown_trunk, 0.6 * trunk_shade,
                     0.35 + 0.65 * sphere * (0.75 + 0.25 * np.clip((t - centre) / crown_radius,
                                                                   -1.0, 1.0)))
    part = np.where(shown_trunk, Part.TRUNK, Part.BASE).astype(np.uint8)
    bb.paint(crown | trunk, layout.new_instance(TrainId.VEGETATION), part,
             np.where(shown_trunk, 0.0, leaves), shade)
    return (x, z, 0.6 * crown_radius, 1.2 * crown_radius)


def draw_bush(layout, rng, noise, x, z):
    radius = rng.uniform(0.5, 1.2)
    return draw_tree(layout, rng, noise, x, z, trunk_height=0.0, crown_radius=radius)
