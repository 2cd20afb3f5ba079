"""The style-shift benchmark: procedural street scenes in a source style and unseen styles.

``render_scene(rng, size)`` draws a street scene (layout + Cityscapes train ids);
``render_style(layout, style_name, rng)`` paints it in one of :data:`STYLES`;
``generate_benchmark(root, ...)`` writes the source style in GTAV format and every target
style in Cityscapes (or BDD-100K) format. ``python -m datasets.styleshift --help`` runs it.
"""

from .benchmark import generate_benchmark, layout_rng, style_rng
from .layout import Part, SceneLayout
from .scene import render_scene
from .styles import SOURCE_STYLE, STYLES, TARGET_STYLES, Style, render_style

__all__ = [
    "Part", "SOURCE_STYLE", "STYLES", "SceneLayout", "Style", "TARGET_STYLES",
    "generate_benchmark", "layout_rng", "render_scene", "render_style", "style_rng",
]
