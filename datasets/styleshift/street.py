"""The static street: its random plan, road, sidewalks, terrain, barriers, sun shadows.

The street runs along +Z. From its centre outwards each side has: road (half width R),
sidewalk, an optional terrain strip (setback) and a row of building facades (``buildings.py``)
i.e. vertical planes X = const seen in perspective. All painting is vectorized over the
image; the only Python loops run over the two sides.
"""

from dataclasses import dataclass

import numpy as np

from utils.labels import TrainId

from .buildings import Blocks
from .layout import NoiseBank, Part, full_region, visibility_fade


@dataclass(frozen=True)
class Barrier:
    """A fence, wall or hedge along the outer edge of a sidewalk, from ``start`` to ``end``."""

    kind: str      # "fence" | "wall" | "hedge"
    start: float
    end: float
    height: float
    spacing: float  # fence bar / wall block spacing (metres)


@dataclass(frozen=True)
class Side:
    sign: int            # -1 left, +1 right
    sidewalk: float      # width (metres)
    setback: float       # terrain between sidewalk and facades (metres)
    blocks: Blocks
    barrier: Barrier | None


@dataclass(frozen=True)
class Street:
    centre: float            # X of the road centre line (the camera is at X = 0)
    lane_width: float
    n_lanes: int
    yellow_centre: bool
    tile: float              # sidewalk paving slab size (metres)
    left: Side
    right: Side
    crossing: tuple | None   # (z_start, z_end) of a cross street
    skyline_depth: float
    skyline: Blocks          # along X at Z = skyline_depth
    tree_line: float         # height of a distant tree line in front of the skyline (0: none)

    @property
    def half_width(self):
        return 0.5 * self.n_lanes * self.lane_width

    def side(self, sign):
        return self.right if sign > 0 else self.left

    def kerb_x(self, sign):
        return self.centre + sign * self.half_width

    def sidewalk_outer_x(self, sign):
        return self.kerb_x(sign) + sign * self.side(sign).sidewalk

    def facade_x(self, sign):
        return self.sidewalk_outer_x(sign) + sign * self.side(sign).setback

    def lane_centre(self, lane):
        return self.centre - self.half_width + (lane + 0.5) * self.lane_width

    def in_crossing(self, z, margin=0.0):
        if self.crossing is None:
            return np.zeros(np.shape(z), bool)
        return (z > self.crossing[0] - margin) & (z < self.crossing[1] + margin)


def random_street(rng):
    n_lanes = int(rng.choice([2, 2, 3, 4]))
    lane_width = rng.uniform(3.0, 3.6)
    ego_lane = rng.integers(n_lanes // 2, n_lanes)
    centre = -(-0.5 * n_lanes * lane_width + (ego_lane + 0.5) * lane_width)
    centre += rng.uniform(-0.4, 0.4)
    crossing = None
    if rng.random() < 0.45:
        z0 = rng.uniform(16.0, 45.0)
        crossing = (z0, z0 + rng.uniform(10.0, 18.0))
    sides = [_random_side(rng, sign, crossing) for sign in (-1, 1)]
    skyline_depth = rng.uniform(120.0, 220.0)
    skyline = Blocks.random(rng, -1.5 * skyline_depth, 1.5 * skyline_depth, 0.1,
                            (10.0, 40.0), (6.0, 60.0))
    return Street(centre=centre, lane_width=lane_width, n_lanes=n_lanes,
                  yellow_centre=bool(rng.random() < 0.5), tile=rng.uniform(0.4, 0.8),
                  left=sides[0], right=sides[1], crossing=crossing,
                  skyline_depth=skyline_depth, skyline=skyline,
                  tree_line=rng.uniform(8.0, 16.0) if rng.random() < 0.4 else 0.0)


def _random_side(rng, sign, crossing):
    first = rng.uniform(-15.0, 3.0)
    gap_probability = 1.0 if rng.random() < 0.08 else 0.18  # 1.0: a park, few buildings
    blocks = Blocks.random(rng, first, 260.0, gap_probability, (8.0, 35.0), (5.0, 35.0))
    if gap_probability == 1.0:
        blocks = blocks.without(first, first + rng.uniform(60.0, 200.0))
    if crossing is not None:
        blocks = blocks.without(*crossing)
    barrier = None
    if rng.random() < 0.45:
        kind = str(rng.choice(["fence", "wall", "hedge"], p=[0.45, 0.35, 0.2]))
        start = rng.uniform(1.0, 30.0)
        height = {"fence": rng.uniform(1.0, 2.0), "wall": rng.uniform(0.6, 2.5),
                  "hedge": rng.uniform(0.8, 1.6)}[kind]
        barrier = Barrier(kind, start, start + rng.uniform(8.0, 40.0), height,
                          spacing=rng.uniform(0.12, 0.3))
    setback = 0.0 if rng.random() < 0.55 else rng.uniform(1.5, 8.0)
    return Side(sign=sign, sidewalk=rng.uniform(1.8, 5.0), setback=setback, blocks=blocks,
                barrier=barrier)


def paint_ground(layout, street, noise):
    """Road (with markings), sidewalks (slabs, kerb) and terrain on the plane Y = 0."""
    cam = layout.camera
    height, width = layout.shape
    first_row = int(np.floor(cam.horizon + 1.0))
    if first_row >= height:
        return
    rows = np.arange(first_row, height, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(width, dtype=np.float32)[None, :] + 0.5
    z = np.minimum(cam.focal * cam.height / (rows - cam.horizon), 2000.0)
    x = (cols - cam.center_x) * z / cam.focal
    z = np.broadcast_to(z, x.shape)
    lateral = x - street.centre
    dist = np.abs(lateral)
    half = street.half_width
    sidewalk = np.where(lateral < 0, street.left.sidewalk, street.right.sidewalk)
    crossing = street.in_crossing(z)
    road = (dist < half) | crossing
    paved = ~road & (dist < half + sidewalk)
    # Pixels per metre across and along the street: patterns finer than a pixel fade out.
    px_across = cam.focal / z
    px_along = cam.focal * cam.height / z ** 2
    px_min = np.minimum(px_across, px_along)

    road_id = layout.new_instance(TrainId.ROAD)
    sidewalk_id = layout.new_instance(TrainId.SIDEWALK)
    terrain_id = layout.new_instance(TrainId.TERRAIN)
    instance = np.where(road, road_id, np.where(paved, sidewalk_id, terrain_id))

    # The medium noise has features ~8.5 texels wide: 0.4 m at 20 texels/m (asphalt grain),
    # 0.2 m at 40 texels/m (grass tufts); the coarse noise gives metre-scale stains.
    grain = NoiseBank.sample(noise.medium, x, z, 20.0) * visibility_fade(px_min * 0.42)
    tufts = NoiseBank.sample(noise.medium, x, z, 40.0) * visibility_fade(px_min * 0.21)
    stains = NoiseBank.sample(noise.coarse, x, z, 1.0)
    tile = street.tile
    joint = ((np.modf(np.abs(x) / tile)[0] < 0.08) | (np.modf(z / tile)[0] < 0.08))
    joint_detail = -1.5 * joint * visibility_fade(px_min * tile)
    detail = np.where(road, 0.45 * grain + 0.35 * stains,
                      np.where(paved, joint_detail + 0.25 * grain + 0.2 * stains,
                               0.7 * tufts + 0.5 * stains))

    part = np.full(x.shape, Part.BASE, np.uint8)
    part[paved & (dist < half + 0.25)] = Part.TRIM  # kerb stones
    white, yellow = _road_markings(street, lateral, z)
    on_lane = road & ~crossing
    part[on_lane & white] = Part.MARKING
    part[on_lane & yellow] = Part.PAINT_YELLOW

    region = (slice(first_row, height), slice(0, width))
    layout.paint(region, np.ones(x.shape, bool), z, instance, part, detail,
                 shade=np.sin(layout.sun_elevation), world_x=x, world_y=0.0)


def _road_markings(street, lateral, z):
    """Bool masks of white and yellow paint on the road surface (metres, from the centre)."""
    half, lane = street.half_width, street.lane_width
    from_left = lateral + half
    boundary = np.clip(np.round(from_left / lane), 1, street.n_lanes - 1)
    on_boundary = np.abs(from_left - boundary * lane) < 0.08
    is_centre = boundary == street.n_lanes // 2
    dashes = np.modf(z / 9.0)[0] < 0.35
    yellow = on_boundary & is_centre & street.yellow_centre
    white = on_boundary & ~yellow & dashes
    white |= np.abs(np.abs(lateral) - (half - 0.3)) < 0.08  # edge lines
    if street.crossing is not None:
        start = street.crossing[0]
        zebra = ((z > start - 4.5) & (z < start - 1.0) & (np.abs(lateral) < half - 0.5)
                 & (np.modf(np.abs(lateral) / 1.1)[0] < 0.5))
        white |= zebra
    return white, yellow


def paint_barriers(layout, street, noise):
    """Fences, walls and hedges along the outer sidewalk edges."""
    cam = layout.camera
    rows, offset = layout.pixel_centres()
    sun_x, _, _ = layout.sun_direction()
    for sign in (-1, 1):
        barrier = street.side(sign).barrier
        if barrier is None:
            continue
        # Just inside the sidewalk, so that it stands in front of a facade with no setback.
        plane_x = street.sidewalk_outer_x(sign) - sign * 0.25
        with np.errstate(divide="ignore", invalid="ignore"):
            z = cam.focal * plane_x / offset
        columns = ((offset * sign > 0.5) & (z > barrier.start) & (z < barrier.end)
                   & ~street.in_crossing(z))
        if not columns.any():
            continue
        z = np.where(columns, z, 1.0)[None, :]
        y = cam.height - (rows - cam.horizon) * z / cam.focal
        px_per_m = cam.focal * abs(plane_x) / z ** 2  # along the plane
        top = barrier.height
        if barrier.kind == "hedge":
            top = top + 0.25 * NoiseBank.sample(noise.coarse, z, 0.0, 2.0)
        mask = columns[None, :] & (y >= 0.0) & (y < top)
        part, detail, train_id = _barrier_surface(barrier, z, y, px_per_m, noise)
        instance = layout.new_instance(train_id)
        layout.paint(full_region(layout), mask, z, instance, part, detail,
                     max(0.0, -sign * sun_x), world_x=plane_x, world_y=y)


def _barrier_surface(barrier, u, v, px_per_m, noise):
    """(part, detail, train id) of a barrier in plane coordinates (u along, v up)."""
    spacing = barrier.spacing
    shape = np.broadcast_shapes(np.shape(u), np.shape(v))
    if barrier.kind == "hedge":
        leaves = (0.8 * NoiseBank.sample(noise.medium, u, v, 30.0)
                  + 0.5 * NoiseBank.sample(noise.fine, u, v, 30.0))
        return np.full(shape, Part.BASE, np.uint8), leaves, TrainId.VEGETATION
    if barrier.kind == "wall":
        joints = ((np.modf(v / (0.5 * spacing + 0.15))[0] < 0.08)
                  | (np.modf(u / (2.0 * spacing + 0.3))[0] < 0.04))
        detail = -1.0 * joints * visibility_fade(px_per_m * 0.3) + 0.3 * NoiseBank.sample(
            noise.medium, u, v, 5.0)
        part = np.where(v > barrier.height - 0.12, Part.TRIM, Part.BASE).astype(np.uint8)
        return part, detail, TrainId.WALL
    bars = np.modf(u / spacing)[0] < 0.35
    rails = (np.abs(v - (barrier.height - 0.08)) < 0.06) | (np.abs(v - 0.2) < 0.06)
    resolved = np.broadcast_to(px_per_m * spacing > 2.5, shape)
    part = np.where(resolved & ~(bars | rails), Part.GAP, Part.BASE).astype(np.uint8)
    part = np.where(rails, Part.TRIM, part).astype(np.uint8)
    detail = 0.3 * NoiseBank.sample(noise.fine, u, v, 10.0)
    return part, detail, TrainId.FENCE



def cast_shadows(layout, street):
    """Mark pixels whose path to the sun is blocked by a building on the sun's side."""
    sun_x, sun_y, sun_z = layout.sun_direction()
    sign = layout.sun_side
    blocks = street.side(sign).blocks
    if len(blocks.start) == 0:
        return
    finite = np.isfinite(layout.depth)
    # Follow the ray towards the sun until it reaches the sun-side facade plane.
    distance = sign * (street.facade_x(sign) - layout.world_x)
    steps = distance / abs(sun_x)
    y_at_plane = layout.world_y + steps * sun_y
    z_at_plane = np.where(finite, layout.depth, 0.0) + steps * sun_z
    blocked = finite & (distance > 0.05) & (blocks.height_at(z_at_plane) > y_at_plane)
    layout.shadow[blocked] = 1.0
