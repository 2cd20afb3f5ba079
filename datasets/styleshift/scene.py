"""``render_scene``: one random street scene as a style-independent :class:`SceneLayout`.

A scene is a straight street seen from a car: road with lanes and markings, sidewalks,
terrain strips, facades with windows, a distant skyline, an optional cross street with a
zebra crossing and traffic lights, and objects placed where they belong (cars in lanes,
pedestrians on sidewalks and crossings, lamps at the kerb, trees along the sidewalk...).
Everything is drawn in metric world coordinates through a random pinhole camera, so object
sizes follow perspective and nearer objects occlude farther ones.
"""

import numpy as np

from utils.labels import TrainId

from .furniture import draw_bush, draw_street_lamp, draw_traffic_light, draw_traffic_sign, draw_tree
from .layout import Camera, NoiseBank, SceneLayout
from .objects import contact_shadow, draw_cyclist, draw_person, draw_vehicle
from .buildings import paint_facades, paint_skyline
from .street import cast_shadows, paint_barriers, paint_ground, random_street

MIN_SIZE = 32
VEHICLE_KINDS = ("car", "truck", "bus")
VEHICLE_ODDS = (0.78, 0.1, 0.12)


def render_scene(rng, size=(256, 512)):
    """Draw a random street scene.

    Args:
        rng: ``np.random.Generator``; the scene is a pure function of its state.
        size: (H, W) in pixels, each at least 32.

    Returns:
        ``(layout, train_ids)``: the :class:`SceneLayout` that ``render_style`` paints, and
        its uint8 (H, W) Cityscapes train-id map (values 0..18; no void pixels).
    """
    height, width = _checked_size(size)
    camera = Camera(focal=width * rng.uniform(0.8, 1.1), height=rng.uniform(1.3, 1.8),
                    horizon=height * rng.uniform(0.36, 0.5),
                    center_x=width * rng.uniform(0.38, 0.62))
    layout = SceneLayout.empty(height, width, camera, sun_side=int(rng.choice([-1, 1])),
                               sun_elevation=rng.uniform(0.35, 1.1),
                               sun_azimuth=rng.uniform(0.2, 0.9))
    noise = NoiseBank.random(rng)
    street = random_street(rng)
    paint_ground(layout, street, noise)
    paint_facades(layout, street, noise)
    paint_barriers(layout, street, noise)
    paint_skyline(layout, street, noise)
    for footprint in _place_objects(layout, street, rng, noise):
        contact_shadow(layout, *footprint)
    cast_shadows(layout, street)
    _sky_detail(layout, noise)
    return layout, layout.train_ids.copy()


def _checked_size(size):
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W) integers, got {size!r}") from None
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}x{MIN_SIZE} pixels, got {size!r}")
    return height, width


def _sky_detail(layout, noise):
    """Cloud texture for the sky, stretched horizontally like clouds seen at a low angle."""
    sky = layout.train_ids == TrainId.SKY
    rows, cols = np.nonzero(sky)
    scale = 256.0 / layout.shape[1]
    layout.detail[rows, cols] = NoiseBank.sample(noise.coarse, cols * 0.5 * scale,
                                                 rows * 1.5 * scale, 1.0)


def _place_objects(layout, street, rng, noise):
    """Draw every object; returns the footprints of those standing on the ground."""
    footprints = []
    for sign in (-1, 1):
        footprints += _place_side(layout, street, sign, rng, noise)
    footprints += _place_traffic(layout, street, rng)
    footprints += _place_people(layout, street, rng)
    for _ in range(rng.integers(0, 4)):
        sign = int(rng.choice([-1, 1]))
        draw_traffic_sign(layout, rng, street.kerb_x(sign) + sign * rng.uniform(0.3, 0.8),
                          rng.uniform(4.0, 50.0))
    if street.crossing is not None:
        z = street.crossing[0] - 0.8
        for sign in (-1, 1):
            if rng.random() < 0.8:
                draw_traffic_light(layout, rng, street.kerb_x(sign) + sign * 0.6, z)
        if rng.random() < 0.4:
            draw_traffic_light(layout, rng, street.kerb_x(1) + 0.6, z,
                               arm=-rng.uniform(2.5, max(street.half_width, 2.6)))
    elif rng.random() < 0.15:
        sign = int(rng.choice([-1, 1]))
        draw_traffic_light(layout, rng, street.kerb_x(sign) + sign * 0.6, rng.uniform(8, 40))
    return [footprint for footprint in footprints if footprint is not None]


def _place_side(layout, street, sign, rng, noise):
    """Trees, bushes and street lamps along one side."""
    side = street.side(sign)
    footprints = []
    if rng.random() < 0.55:
        if side.setback > 1.5:
            x = street.sidewalk_outer_x(sign) + sign * 0.5 * side.setback
        else:
            x = street.sidewalk_outer_x(sign) - sign * 0.7
        z, spacing = rng.uniform(2.0, 9.0), rng.uniform(6.0, 13.0)
        while z < 90.0:
            if rng.random() > 0.25 and not street.in_crossing(z, 2.0):
                footprints.append(draw_tree(layout, rng, noise, x + rng.uniform(-0.3, 0.3), z))
            z += spacing * rng.uniform(0.8, 1.2)
    if side.setback > 1.5:
        for _ in range(rng.integers(0, 5)):
            x = street.sidewalk_outer_x(sign) + sign * rng.uniform(0.5, side.setback - 0.3)
            footprints.append(draw_bush(layout, rng, noise, x, rng.uniform(3.0, 40.0)))
    if rng.random() < 0.6:
        z, spacing = rng.uniform(4.0, 20.0), rng.uniform(18.0, 32.0)
        while z < 120.0:
            if not street.in_crossing(z, 1.0):
                draw_street_lamp(layout, rng, street.kerb_x(sign) + sign * 0.5, z, -sign)
            z += spacing
    return footprints


def _place_traffic(layout, street, rng):
    """Cars, trucks and buses: moving in lanes, parked at the kerb, crossing."""
    footprints = []
    oncoming = street.n_lanes // 2
    for lane in range(street.n_lanes):
        x = street.lane_centre(lane)
        previous = -np.inf
        for z in np.sort(rng.uniform(5.0, 75.0, rng.poisson(1.2))):
            if z - previous < 8.0 or (abs(x) < 1.5 and z < 8.0):
                continue
            kind = VEHICLE_KINDS[rng.choice(3, p=VEHICLE_ODDS)]
            view = "front" if lane < oncoming else "rear"
            footprints.append(draw_vehicle(layout, rng, x + rng.uniform(-0.3, 0.3), z, kind,
                                           view))
            previous = z
    for sign in (-1, 1):
        if rng.random() < 0.35:
            x, z = street.kerb_x(sign) - sign * 1.1, rng.uniform(3.0, 12.0)
            while z < 60.0:
                if rng.random() < 0.7 and not street.in_crossing(z, 3.0):
                    footprints.append(draw_vehicle(layout, rng, x, z, "car", "rear"))
                z += rng.uniform(5.5, 8.0)
    if street.crossing is not None:
        start, end = street.crossing
        for _ in range(rng.integers(0, 4)):
            kind = VEHICLE_KINDS[rng.choice(3, p=VEHICLE_ODDS)]
            footprints.append(draw_vehicle(layout, rng, rng.uniform(-25.0, 25.0),
                                           rng.uniform(start + 2.0, end - 2.0), kind, "side",
                                           int(rng.choice([-1, 1]))))
    return footprints


def _place_people(layout, street, rng):
    """Pedestrians on sidewalks and crossings, cyclists and motorcyclists, parked bicycles."""
    footprints = []
    for _ in range(rng.integers(0, 9)):
        sign = int(rng.choice([-1, 1]))
        width = street.side(sign).sidewalk
        x = street.kerb_x(sign) + sign * rng.uniform(0.4, max(0.5, width - 0.3))
        view = "side" if rng.random() < 0.5 else "front"
        footprints.append(draw_person(layout, rng, x, rng.uniform(3.0, 45.0), view,
                                      int(rng.choice([-1, 1]))))
    if street.crossing is not None:
        start = street.crossing[0]
        for _ in range(rng.integers(0, 5)):
            x = street.centre + rng.uniform(-street.half_width, street.half_width)
            footprints.append(draw_person(layout, rng, x, rng.uniform(start - 4.3, start - 1.2),
                                          "side", int(rng.choice([-1, 1]))))
    for _ in range(rng.integers(0, 3)):
        sign = int(rng.choice([-1, 1]))
        x = street.kerb_x(sign) - sign * rng.uniform(0.6, 1.2)
        footprints.append(draw_cyclist(layout, rng, x, rng.uniform(5.0, 40.0),
                                       int(rng.choice([-1, 1])), motor=rng.random() < 0.3))
    for _ in range(rng.integers(0, 3)):
        sign = int(rng.choice([-1, 1]))
        x = street.kerb_x(sign) + sign * rng.uniform(0.3, 1.0)
        footprints.append(draw_cyclist(layout, rng, x, rng.uniform(3.0, 30.0),
                                       int(rng.choice([-1, 1])), with_rider=False))
    return footprints
