"""Things standing in the street, drawn as camera-facing cut-outs (billboards).

Every drawer works in the object's local metric frame over its own pixel window: ``s`` is
metres to the right of the anchor point, ``t`` metres above the ground. Shapes are unions of
boxes, superellipses, discs, rings and thick segments, so each object class has its own
silhouette (cars: body + cabin + wheels; persons: head, torso, legs; poles: thin and tall...).
Drawers that stand on the ground return a footprint ``(x, z, half_width, length)`` for
contact shadows.
"""

from dataclasses import dataclass

import numpy as np

from utils.labels import TrainId

from .layout import LIT_WITH_LIGHTS, Part, SceneLayout


@dataclass(frozen=True)
class Billboard:
    """Pixel window of an object at world (x, 0, z) with its local coordinates (s, t)."""

    layout: SceneLayout
    region: tuple
    s: np.ndarray     # (h, w) metres right of the anchor
    t: np.ndarray     # (h, w) metres above the ground
    ppm: float        # pixels per metre at this depth
    x: float
    z: float

    @classmethod
    def at(cls, layout, x, z, half_width, top, bottom=0.0):
        """The window covering |s| <= half_width, bottom <= t <= top; None if off-screen."""
        cam = layout.camera
        ppm = cam.focal / z
        col, ground = cam.column(x, z), cam.ground_row(z)
        height, width = layout.shape
        c0 = max(int(np.floor(col - half_width * ppm)) - 1, 0)
        c1 = min(int(np.ceil(col + half_width * ppm)) + 1, width)
        r0 = max(int(np.floor(ground - top * ppm)) - 1, 0)
        r1 = min(int(np.ceil(ground - bottom * ppm)) + 1, height)
        if c0 >= c1 or r0 >= r1:
            return None
        s = (np.arange(c0, c1, dtype=np.float32) + 0.5 - col) / ppm
        t = (ground - np.arange(r0, r1, dtype=np.float32) - 0.5) / ppm
        s, t = np.broadcast_arrays(s[None, :], t[:, None])
        return cls(layout, (slice(r0, r1), slice(c0, c1)), s, t, ppm, x, z)

    def thick(self, half_width):
        """``half_width`` widened so that thin parts stay at least ~1.5 pixels wide."""
        return max(half_width, 0.75 / self.ppm)

    def paint(self, mask, instance, part=Part.BASE, detail=0.0, shade=1.0, depth_offset=0.0):
        _, sun_y, sun_z = self.layout.sun_direction()
        light = 0.5 * (sun_y - sun_z)  # half facing the camera, half lit from above
        self.layout.paint(self.region, mask, self.z + depth_offset, instance, part, detail,
                          np.asarray(shade, np.float32) * light, world_x=self.x + self.s,
                          world_y=self.t)


def blob(s, t, cs, ct, hs, ht, power=4.0):
    """Superellipse centred at (cs, ct) with half axes (hs, ht); power 2 = ellipse."""
    return (np.abs((s - cs) / hs) ** power + np.abs((t - ct) / ht) ** power) < 1.0


def box(s, t, s0, s1, t0, t1):
    return (s >= s0) & (s < s1) & (t >= t0) & (t < t1)


def disc(s, t, cs, ct, radius):
    return (s - cs) ** 2 + (t - ct) ** 2 < radius ** 2


def ring(s, t, cs, ct, radius, half_width):
    return np.abs(np.hypot(s - cs, t - ct) - radius) < half_width


def segment(s, t, p, q, half_width):
    """Points within ``half_width`` of the segment p-q."""
    ds, dt = q[0] - p[0], q[1] - p[1]
    along = np.clip(((s - p[0]) * ds + (t - p[1]) * dt) / (ds * ds + dt * dt + 1e-12), 0, 1)
    return np.hypot(s - p[0] - along * ds, t - p[1] - along * dt) < half_width


def vertical_gradient(t, bottom, top, low=0.55):
    """Shade rising from ``low`` at ``bottom`` to 1 at ``top`` (rounded bodies lit from above)."""
    return low + (1.0 - low) * np.clip((t - bottom) / (top - bottom), 0.0, 1.0)


def contact_shadow(layout, x, z, half_width, length):
    """Darken the ground under an object occupying [x +- half_width] x [z, z + length]."""
    cam = layout.camera
    height, width = layout.shape
    r0 = max(int(np.floor(cam.ground_row(z + length))), 0)
    r1 = min(int(np.ceil(cam.ground_row(z))) + 2, height)
    c0 = max(int(np.floor(min(cam.column(x - half_width, z), cam.column(x - half_width,
                                                                         z + length)))), 0)
    c1 = min(int(np.ceil(max(cam.column(x + half_width, z), cam.column(x + half_width,
                                                                        z + length)))) + 1, width)
    if r0 >= r1 or c0 >= c1:
        return
    region = (slice(r0, r1), slice(c0, c1))
    depth = layout.depth[region]
    under = ((layout.world_y[region] == 0.0) & (depth >= z - 0.2) & (depth <= z + length)
             & (np.abs(layout.world_x[region] - x) < half_width))
    layout.shadow[region][under] = 0.8


# --- vehicles ---------------------------------------------------------------------------

def draw_vehicle(layout, rng, x, z, kind, view, direction=1):
    """A car, truck or bus seen from the rear, the front or the side (facing ``direction``)."""
    train_id = {"car": TrainId.CAR, "truck": TrainId.TRUCK, "bus": TrainId.BUS}[kind]
    if kind == "car":
        width, height, length = rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.75), rng.uniform(3.9,
                                                                                           4.8)
    elif kind == "truck":
        width, height, length = 2.5, rng.uniform(3.0, 3.8), rng.uniform(6.5, 9.0)
    else:
        width, height, length = 2.55, rng.uniform(3.0, 3.4), rng.uniform(10.0, 12.0)
    half = 0.5 * (length if view == "side" else width)
    bb = Billboard.at(layout, x, z, half, height)
    if bb is not None:
        shapes = _vehicle_side if view == "side" else _vehicle_end
        mask, part, detail, shade = shapes(bb.s * direction, bb.t, kind, width, height, length,
                                           view)
        bb.paint(mask, layout.new_instance(train_id), part, detail, shade)
    if view == "side":
        return (x, z, half, width)
    return (x, z, half, length)


def _vehicle_end(s, t, kind, width, height, length, view):
    hw = 0.5 * width
    a = np.abs(s)
    if kind == "car":
        body = blob(s, t, 0.0, 0.63, hw, 0.36, 6.0)
        cabin_half = hw * (0.9 - 0.25 * (t - 0.95) / (height - 0.95))
        cabin = (t >= 0.9) & (t < height) & (a < cabin_half)
        glass = cabin & (t > 1.0) & (t < height - 0.07) & (a < cabin_half - 0.08)
        lamp_t = (0.68, 0.84)
    else:
        body = blob(s, t, 0.0, 0.5 * (height + 0.45), hw, 0.5 * (height - 0.45), 10.0)
        cabin = np.zeros_like(body)
        glass_low = height - (1.0 if kind == "truck" else 1.3)
        glass = body & (a < hw - 0.15) & (t > glass_low) & (t < height - 0.25)
        if kind == "truck" and view == "rear":
            glass = np.zeros_like(body)
        lamp_t = (0.5, 0.7)
    wheels = (a > hw - 0.32) & (a < hw - 0.04) & (t < 0.38)
    lamps = body & (t > lamp_t[0]) & (t < lamp_t[1]) & (a > hw - 0.3)
    lower = body & (t < lamp_t[0] - 0.12)
    plate = (a < 0.25) & (t > lamp_t[0] - 0.2) & (t < lamp_t[0] - 0.06)
    seam = body & (a < 0.03) & (t > 0.6) if kind == "truck" and view == "rear" else False
    lamp = Part.LAMP_RED if view == "rear" else Part.LAMP_WHITE
    part = np.select([glass, lamps, plate, lower | seam, wheels & ~body],
                     [Part.GLASS, lamp, Part.MARKING, Part.TRIM, Part.DARK], Part.BASE)
    detail = np.where(lamps, LIT_WITH_LIGHTS, 0.0)
    return body | cabin | wheels, part.astype(np.uint8), detail, vertical_gradient(t, 0.2, height)


def _vehicle_side(s, t, kind, width, height, length, view):
    hl = 0.5 * length
    if kind == "car":
        body = blob(s, t, 0.0, 0.62, hl, 0.33, 6.0)
        rise = (t - 0.9) / (height - 0.9)
        cabin = (t >= 0.85) & (t < height) & (s > -hl * (0.75 - 0.2 * rise)) & (
            s < hl * (0.4 - 0.35 * rise))
        glass = (cabin & (t > 0.98) & (t < height - 0.07) & (s > -hl * (0.75 - 0.2 * rise) + 0.1)
                 & (s < hl * (0.4 - 0.35 * rise) - 0.1) & (np.abs(s + 0.1 * hl) > 0.05))
        wheel_s, radius = (-0.64 * hl, 0.64 * hl), 0.32
    elif kind == "truck":
        cab = box(s, t, hl - 1.9, hl, 0.5, height - 0.5)
        cargo = box(s, t, -hl, hl - 2.0, 0.9, height)
        body = cab | cargo | box(s, t, -hl, hl, 0.5, 0.9)
        cabin = np.zeros_like(body)
        glass = box(s, t, hl - 1.1, hl - 0.12, height - 1.5, height - 0.75)
        wheel_s, radius = (hl - 1.2, -hl + 1.0, -hl + 2.2), 0.5
    else:
        body = blob(s, t, 0.0, 0.5 * (height + 0.3), hl, 0.5 * (height - 0.3), 12.0)
        cabin = np.zeros_like(body)
        pillars = np.modf((s + hl) / 1.3)[0] < 0.1
        glass = body & (t > 1.5) & (t < height - 0.35) & ~pillars & (np.abs(s) < hl - 0.3)
        glass |= box(s, t, hl - 1.6, hl - 0.5, 0.45, height - 0.35)  # the front door
        wheel_s, radius = (hl - 2.3, -hl + 2.6), 0.5
    wheels = np.zeros_like(body)
    hubs = np.zeros_like(body)
    for centre in wheel_s:
        wheels |= disc(s, t, centre, radius, radius)
        hubs |= disc(s, t, centre, radius, 0.45 * radius)
    head = body & (s > hl - 0.22) & (t > 0.6) & (t < 0.8)
    tail = body & (s < -hl + 0.15) & (t > 0.6) & (t < 0.85)
    lower = body & (t < 0.45)
    part = np.select([hubs, wheels, glass, head, tail, lower],
                     [Part.TRIM, Part.DARK, Part.GLASS, Part.LAMP_WHITE, Part.LAMP_RED, Part.TRIM],
                     Part.BASE)
    detail = np.where(head | tail, LIT_WITH_LIGHTS, 0.0)
    return body | cabin | wheels, part.astype(np.uint8), detail, vertical_gradient(t, 0.2, height)


# --- people -----------------------------------------------------------------------------

def draw_person(layout, rng, x, z, view, direction=1):
    """A pedestrian, front/back view (standing) or side view (walking)."""
    height = rng.uniform(1.55, 1.92)
    build = rng.uniform(0.9, 1.2)
    bb = Billboard.at(layout, x, z, 0.35 * height, height)
    if bb is not None:
        u, v = bb.s * direction / height, bb.t / height
        thin = bb.thick(0.02 * height) / height
        mask, part = _person_shape(u, v, view, build, rng.uniform(0.0, 0.17), thin,
                                   rng.random() < 0.3)
        bb.paint(mask, layout.new_instance(TrainId.PERSON), part,
                 shade=vertical_gradient(bb.t, 0.0, height, 0.7))
    return (x, z, 0.3, 0.4)


def _person_shape(u, v, view, build, stride, thin, long_hair):
    """Person silhouette in height-normalised coordinates (u across, v up; 1 = height)."""
    head = disc(u, v, 0.0, 0.932, 0.066)
    hair = head & (v > (0.94 if not long_hair else 0.9)) | (long_hair & box(u, v, -0.07, 0.07,
                                                                               0.8, 0.94)
                                                             & (np.abs(u) > 0.045))
    if view == "side":
        torso = blob(u, v, 0.0, 0.665, 0.075 * build, 0.2, 4.0)
        hip, shoulder = (0.0, 0.5), (0.0, 0.82)
        legs = (segment(u, v, hip, (stride, 0.02), max(0.04, thin))
                | segment(u, v, hip, (-stride, 0.02), max(0.04, thin)))
        arms = (segment(u, v, shoulder, (-0.8 * stride, 0.47), max(0.028, thin))
                | segment(u, v, shoulder, (0.8 * stride, 0.47), max(0.028, thin)))
        hands = disc(u, v, -0.8 * stride, 0.46, 0.03) | disc(u, v, 0.8 * stride, 0.46, 0.03)
    else:
        torso = blob(u, v, 0.0, 0.665, 0.125 * build, 0.2, 4.0)
        legs = box(np.abs(u), v, 0.01, 0.01 + 0.095 * build, 0.02, 0.5)
        arm_u = 0.125 * build + 0.04
        arms = blob(np.abs(u), v, arm_u, 0.64, max(0.035, thin), 0.19, 4.0)
        hands = disc(np.abs(u), v, arm_u, 0.44, 0.032)
    feet = legs & (v < 0.04)
    mask = head | torso | legs | arms | hands
    part = np.select([hair, head | hands, feet, legs & ~torso],
                     [Part.DARK, Part.SKIN, Part.DARK, Part.LOWER], Part.BASE)
    return mask, part.astype(np.uint8)


def draw_cyclist(layout, rng, x, z, direction=1, motor=False, with_rider=True):
    """A bicycle or motorcycle in side view, with or without its rider."""
    bb = Billboard.at(layout, x, z, 1.1, 1.9)
    if bb is None:
        return (x, z, 0.9, 0.5)
    s, t = bb.s * direction, bb.t
    radius = 0.33 if not motor else 0.31
    wheels = (ring(s, t, -0.55, radius, radius, bb.thick(0.09 if motor else 0.04))
              | ring(s, t, 0.55, radius, radius, bb.thick(0.09 if motor else 0.04)))
    hubs = disc(s, t, -0.55, radius, bb.thick(0.05)) | disc(s, t, 0.55, radius, bb.thick(0.05))
    frame_w = bb.thick(0.025)
    if motor:
        frame = (blob(s, t, 0.0, 0.62, 0.5, 0.2, 4.0) | blob(s, t, -0.3, 0.8, 0.35, 0.06, 2.0)
                 | segment(s, t, (0.55, radius), (0.45, 1.0), frame_w * 1.5))
        engine = blob(s, t, -0.05, 0.42, 0.22, 0.12, 4.0)
        lamp = disc(s, t, 0.6, 0.85, 0.07)
        seat, bar = (-0.25, 0.9), (0.42, 1.02)
    else:
        rear, front, crank = (-0.55, radius), (0.55, radius), (-0.05, 0.3)
        seat, head_tube, bar = (-0.2, 0.95), (0.4, 0.92), (0.35, 1.04)
        frame = (segment(s, t, rear, seat, frame_w) | segment(s, t, seat, crank, frame_w)
                 | segment(s, t, rear, crank, frame_w) | segment(s, t, crank, head_tube, frame_w)
                 | segment(s, t, seat, head_tube, frame_w) | segment(s, t, head_tube, front,
                                                                    frame_w)
                 | segment(s, t, head_tube, bar, frame_w))
        engine = lamp = np.zeros_like(frame)
    vehicle = wheels | hubs | frame | engine | lamp
    part = np.select([lamp, engine, hubs & ~frame, wheels], [Part.LAMP_WHITE, Part.TRIM,
                                                             Part.TRIM, Part.DARK], Part.BASE)
    train_id = TrainId.MOTORCYCLE if motor else TrainId.BICYCLE
    bb.paint(vehicle, layout.new_instance(train_id), part.astype(np.uint8),
             np.where(lamp, LIT_WITH_LIGHTS, 0.0), vertical_gradient(t, 0.0, 1.1, 0.7))
    if with_rider:
        _draw_rider(bb, s, t, seat, bar, motor, rng)
    return (x, z, 0.9, 0.5)


def _draw_rider(bb, s, t, seat, bar, motor, rng):
    lean = rng.uniform(0.1, 0.3)
    hip = (seat[0], seat[1] + 0.08)
    shoulder = (hip[0] + lean, hip[1] + 0.52)
    head_r = 0.14 if motor else 0.11
    head = disc(s, t, shoulder[0] + 0.08, shoulder[1] + 0.15, head_r)
    torso = segment(s, t, hip, shoulder, 0.14)
    arm = segment(s, t, shoulder, bar, bb.thick(0.045))
    knee, foot = (hip[0] + 0.32, hip[1] - 0.25), (hip[0] + 0.2, 0.25)
    leg = segment(s, t, hip, knee, bb.thick(0.07)) | segment(s, t, knee, foot, bb.thick(0.06))
    helmet = head & (motor | (t > shoulder[1] + 0.15))
    part = np.select([helmet, head, leg], [Part.TRIM if motor else Part.DARK, Part.SKIN,
                                           Part.LOWER], Part.BASE)
    # The rider sits in front of the frame, as in Cityscapes annotations.
    bb.paint(head | torso | arm | leg, bb.layout.new_instance(TrainId.RIDER),
             part.astype(np.uint8), shade=vertical_gradient(t, 0.3, 1.8, 0.7), depth_offset=-0.05)
