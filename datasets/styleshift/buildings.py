"""Buildings: rows of facades along the street and the distant skyline closing it.

A facade is a vertical plane seen in perspective; windows, sills, cornices and brick courses
are drawn in facade coordinates (u along the facade, v up, metres) and only where they span
a few pixels, so distant facades turn plain instead of aliasing into noise.
"""

from dataclasses import dataclass

import numpy as np

from utils.labels import TrainId

from .layout import NoiseBank, Part, full_region, hash01, visibility_fade


@dataclass(frozen=True)
class Blocks:
    """Buildings along one axis (Z for a street side, X for the skyline), sorted by start."""

    start: np.ndarray          # (n,) metres
    end: np.ndarray            # (n,)
    height: np.ndarray         # (n,) metres
    floor_height: np.ndarray   # (n,) metres
    bay_width: np.ndarray      # (n,) metres between window axes
    window_width: np.ndarray   # (n,) fraction of a bay
    window_height: np.ndarray  # (n,) fraction of a floor
    shop: np.ndarray           # (n,) bool: large ground-floor windows
    brick: np.ndarray          # (n,) bool: brick courses instead of plaster

    @classmethod
    def random(cls, rng, first, last, gap_probability, length_range, height_range):
        starts, ends = [], []
        pos = first
        while pos < last:
            if rng.random() < gap_probability:
                pos += rng.uniform(4.0, 15.0)
            length = rng.uniform(*length_range)
            starts.append(pos)
            ends.append(pos + length)
            pos += length
        n = len(starts)
        return cls(start=np.asarray(starts), end=np.asarray(ends),
                   height=rng.uniform(*height_range, n),
                   floor_height=rng.uniform(2.8, 3.8, n),
                   bay_width=rng.uniform(1.8, 4.0, n),
                   window_width=rng.uniform(0.3, 0.75, n),
                   window_height=rng.uniform(0.35, 0.7, n),
                   shop=rng.random(n) < 0.5,
                   brick=rng.random(n) < 0.35)

    def without(self, cut_start, cut_end):
        """The blocks with the interval [cut_start, cut_end) removed (a cross street)."""
        keep_left = np.minimum(self.end, cut_start)
        keep_right = np.maximum(self.start, cut_end)
        starts = np.concatenate([self.start, keep_right])
        ends = np.concatenate([keep_left, self.end])
        source = np.concatenate([np.arange(len(self.start))] * 2)
        keep = ends - starts > 1.0
        order = np.argsort(starts[keep], kind="stable")
        pick = source[keep][order]
        fields = {name: getattr(self, name)[pick] for name in self.__dataclass_fields__}
        fields.update(start=starts[keep][order], end=ends[keep][order])
        return Blocks(**fields)

    def lookup(self, pos):
        """Index of the block covering each position, and whether one does."""
        pos = np.asarray(pos)
        if len(self.start) == 0:
            return np.zeros(pos.shape, np.int64), np.zeros(pos.shape, bool)
        index = np.searchsorted(self.start, pos, side="right") - 1
        safe = np.maximum(index, 0)
        return safe, (index >= 0) & (pos < self.end[safe])

    def height_at(self, pos):
        """Building height at each position (0 between buildings)."""
        if len(self.start) == 0:
            return np.zeros(np.shape(pos))
        index, inside = self.lookup(pos)
        return np.where(inside, self.height[index], 0.0)


def facade_pattern(u, v, top, blocks, index, keys, px_per_bay, px_per_floor, noise):
    """Parts and detail of facades in facade coordinates (u along, v up, metres).

    ``index`` selects each pixel's block parameters, ``keys`` is a per-pixel integer that
    makes window randomness differ between buildings. Windows are drawn only where a bay
    and a floor span at least a few pixels.
    """
    floor_h = blocks.floor_height[index]
    ground_h = 1.25 * floor_h
    bay = u / blocks.bay_width[index]
    bay_i = np.floor(bay)
    bay_f = bay - bay_i
    floor = (v - ground_h) / floor_h
    floor_i = np.floor(floor)
    floor_f = floor - floor_i
    half_w = 0.5 * blocks.window_width[index]
    half_h = 0.5 * blocks.window_height[index]
    resolved = (px_per_bay > 4.0) & (px_per_floor > 4.0)
    in_column = np.abs(bay_f - 0.5) < half_w
    upper = (v > ground_h) & (v < top - 0.8) & in_column & (np.abs(floor_f - 0.5) < half_h)
    shop = (blocks.shop[index] & (v > 0.5) & (v < ground_h - 0.4)
            & (np.abs(bay_f - 0.5) < 0.42))
    windows = resolved & (upper | shop)
    sills = (resolved & (v > ground_h) & (v < top - 0.8) & (np.abs(bay_f - 0.5) < half_w + 0.06)
             & (floor_f > 0.5 - half_h - 0.07) & (floor_f < 0.5 - half_h))
    trim = (v > top - 0.45) | ((v > ground_h - 0.25) & (v < ground_h)) | sills

    part = np.where(windows, Part.GLASS, np.where(trim, Part.TRIM, Part.BASE)).astype(np.uint8)
    fade = visibility_fade(px_per_floor * 0.3)
    plaster = (0.4 * NoiseBank.sample(noise.medium, u, v, 6.0) * fade
               + 0.3 * NoiseBank.sample(noise.coarse, u, v, 0.3))
    course = np.floor(v / 0.15)
    mortar = ((np.modf(v / 0.15)[0] < 0.18)
              | (np.modf((u + 0.15 * (course % 2)) / 0.3)[0] < 0.1))
    brick = (-1.0 * mortar + 0.3 * NoiseBank.sample(noise.fine, u, v, 12.0)) * visibility_fade(
        px_per_floor * 0.06)
    wall_detail = np.where(blocks.brick[index], brick + 0.3 * plaster, plaster)
    window_value = hash01(keys, bay_i, floor_i)
    detail = np.where(windows, window_value, wall_detail).astype(np.float32)
    return part, detail


def paint_facades(layout, street, noise):
    """Both rows of building facades (vertical planes X = const)."""
    cam = layout.camera
    rows, offset = layout.pixel_centres()
    sun_x, _, _ = layout.sun_direction()
    for sign in (-1, 1):
        blocks = street.side(sign).blocks
        if len(blocks.start) == 0:
            continue
        plane_x = street.facade_x(sign)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = cam.focal * plane_x / offset
        columns = (offset * sign > 0.5) & (z > 0.5) & (z < 400.0)
        z = np.where(columns, z, 1.0)
        index, inside = blocks.lookup(z)
        columns &= inside
        if not columns.any():
            continue
        instances = np.array([layout.new_instance(TrainId.BUILDING) for _ in blocks.start])
        y = cam.height - (rows - cam.horizon) * z[None, :] / cam.focal
        mask = columns[None, :] & (y >= 0.0) & (y < blocks.height[index][None, :])
        px_per_bay = blocks.bay_width[index] * cam.focal * abs(plane_x) / z ** 2
        px_per_floor = blocks.floor_height[index] * cam.focal / z
        # The facade's normal points at the street (-sign); it is lit if the sun is there.
        _paint_facade_pixels(layout, mask, z, z, y, blocks, index, instances, px_per_bay,
                             px_per_floor, max(0.0, -sign * sun_x), plane_x, noise)


def _paint_facade_pixels(layout, mask, depth, along, y, blocks, index, instances, px_per_bay,
                         px_per_floor, shade, world_x, noise):
    """Paint the facade pixels ``mask`` (H, W) of a plane.

    ``depth``, ``along`` (the facade's horizontal coordinate), ``index`` and ``px_*`` are
    per-column arrays of length W; ``y`` is the (H, W) height above ground.
    """
    rr, cc = np.nonzero(mask)
    y = np.broadcast_to(y, mask.shape)
    part_flat, detail_flat = facade_pattern(
        along[cc], y[rr, cc], blocks.height[index[cc]], blocks, index[cc],
        instances[index[cc]], px_per_bay[cc], px_per_floor[cc], noise)
    part = np.zeros(mask.shape, np.uint8)
    detail = np.zeros(mask.shape, np.float32)
    part[rr, cc] = part_flat
    detail[rr, cc] = detail_flat
    layout.paint(full_region(layout), mask, depth[None, :], instances[index][None, :], part,
                 detail, shade, world_x=world_x, world_y=y)


def paint_skyline(layout, street, noise):
    """Distant buildings (and maybe a tree line) closing the end of the street."""
    cam = layout.camera
    width = layout.shape[1]
    depth = street.skyline_depth
    rows, offset = layout.pixel_centres()
    x = offset * depth / cam.focal
    y = cam.height - (rows - cam.horizon) * depth / cam.focal
    px_per_m = cam.focal / depth
    facing_light = -layout.sun_direction()[2]  # the plane faces the camera (normal -Z)
    blocks = street.skyline
    index, inside = blocks.lookup(x)
    instances = np.array([layout.new_instance(TrainId.BUILDING) for _ in blocks.start])
    mask = inside[None, :] & (y >= 0.0) & (y < blocks.height[index][None, :])
    # On a plane facing the camera the facade's horizontal coordinate is X, not Z.
    _paint_facade_pixels(layout, mask, np.full(width, depth, np.float32), x, y, blocks, index,
                         instances, blocks.bay_width[index] * px_per_m,
                         blocks.floor_height[index] * px_per_m, facing_light, x[None, :],
                         noise)
    if street.tree_line > 0:
        top = street.tree_line * (1.0 + 0.25 * NoiseBank.sample(noise.coarse, x, 0.0, 0.4)
                                  + 0.15 * NoiseBank.sample(noise.medium, x, 0.0, 2.0))
        mask = (y >= 0.0) & (y < top[None, :])
        leaves = NoiseBank.sample(noise.medium, x[None, :], y, 4.0)
        layout.paint(full_region(layout), mask, depth - 15.0,
                     layout.new_instance(TrainId.VEGETATION), Part.BASE, leaves,
                     facing_light, world_x=x[None, :], world_y=y)
