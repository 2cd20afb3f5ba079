"""Colourised masks, overlays and small report figures drawn with Pillow.

Figures are drawn with Pillow rather than matplotlib so the framework needs no plotting
dependency; they are simple by design (a heatmap, a grouped bar chart, an image grid).
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from utils.labels import NUM_CLASSES, colorize
from utils.output import writing

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
SERIES_COLOURS = [(90, 90, 90), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def overlay(image, train_ids, alpha=0.5):
    """Blend an (H, W, 3) uint8 image with the colourised ids; ignore pixels stay as the image."""
    image = np.asarray(image, dtype=np.float32)
    colour = colorize(train_ids).astype(np.float32)
    blended = (1 - alpha) * image + alpha * colour
    keep_image = np.asarray(train_ids) >= NUM_CLASSES
    blended[keep_image] = image[keep_image]
    return blended.round().clip(0, 255).astype(np.uint8)


def denormalize(image, mean, std):
    """(3, H, W) normalised float tensor -> (H, W, 3) uint8 RGB."""
    array = image.detach().float().cpu().numpy().transpose(1, 2, 0)
    array = array * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    return (array * 255.0).round().clip(0, 255).astype(np.uint8)


def save_png(array, path):
    """Write an (H, W) or (H, W, 3) uint8 array as PNG, creating the folder."""
    return save_image(Image.fromarray(np.asarray(array, dtype=np.uint8)), path)


def save_image(img, path):
    """Save the PIL image ``img`` to ``path`` (folder created); a failed write raises
    ``utils.output.OutputError`` naming the file."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
    return path


def _font(size=12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw, text, font):
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def confusion_matrix_png(hist, class_names, path, title=""):
    """Row-normalised confusion matrix (rows = ground truth) as a labelled heatmap PNG."""
    hist = np.asarray(hist, dtype=np.float64)
    n = hist.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = np.nan_to_num(hist / hist.sum(axis=1, keepdims=True))
    cell, font = 28, _font(11)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = max(_text_width(probe, name, font) for name in class_names) + 12
    top = margin + 24
    size = (margin + n * cell + 10, top + n * cell + 24)
    img = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), title or "confusion matrix (rows: ground truth, columns: prediction)",
              fill=BLACK, font=font)
    for i in range(n):
        y = top + i * cell
        draw.text((margin - 6 - _text_width(draw, class_names[i], font), y + 8),
                  class_names[i], fill=BLACK, font=font)
        for j in range(n):
            value = rows[i, j]
            shade = int(255 - 215 * value)
            x = margin + j * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(shade, shade, 255),
                           outline=GREY)
            if value >= 0.01:
                label = f"{int(round(value * 100))}"
                draw.text((x + 4, y + 8), label, fill=WHITE if value > 0.5 else BLACK,
                          font=font)
    # Column labels written vertically: rotate a strip of horizontal text.
    strip = Image.new("RGB", (margin, n * cell), WHITE)
    strip_draw = ImageDraw.Draw(strip)
    for j, name in enumerate(class_names):
        strip_draw.text((margin - 6 - _text_width(strip_draw, name, font), j * cell + 8), name,
                        fill=BLACK, font=font)
    img.paste(strip.rotate(-90, expand=True), (margin, 20))
    path = Path(path)
    save_image(img, path)
    return path


def bar_chart_png(values, path, title="", ylabel="mIoU (%)"):
    """Grouped bar chart. ``values``: {group: {series: value}} (e.g. domain -> method -> mIoU)."""
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    vmax = max([v for g in groups for v in values[g].values()] + [1e-6])
    vmax = float(np.ceil(vmax / 10.0) * 10.0)
    bar_w, gap, plot_h, left, top, font = 26, 22, 260, 56, 48, _font(12)
    group_w = bar_w * len(series) + gap
    width = left + group_w * len(groups) + 20
    img = Image.new("RGB", (max(width, 360), top + plot_h + 70), WHITE)
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill=BLACK, font=_font(14))
    for k, name in enumerate(series):  # legend
        x = left + 60 + 150 * k
        draw.rectangle([x, 28, x + 12, 40], fill=SERIES_COLOURS[k % len(SERIES_COLOURS)])
        draw.text((x + 16, 27), name, fill=BLACK, font=font)
    base = top + plot_h
    for tick in np.linspace(0, vmax, 6):
        y = base - plot_h * tick / vmax
        draw.line([left - 4, y, width - 10, y], fill=GREY)
        draw.text((8, y - 7), f"{tick:.0f}", fill=BLACK, font=font)
    draw.text((8, top - 16), ylabel, fill=BLACK, font=font)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + gap // 2
        for k, name in enumerate(series):
            if name not in values[group]:
                continue
            value = values[group][name]
            x = x0 + k * bar_w
            y = base - plot_h * value / vmax
            colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
            draw.rectangle([x, y, x + bar_w - 3, base], fill=colour)
            draw.text((x, y - 14), f"{value:.0f}", fill=BLACK, font=_font(10))
        label = group if len(group) <= 14 else group[:13] + "…"
        draw.text((x0, base + 6), label, fill=BLACK, font=font)
    path = Path(path)
    save_image(img, path)
    return path


def image_grid(rows, path, column_titles=(), row_titles=(), pad=4):
    """Tile equally sized (H, W, 3) uint8 images into one labelled PNG.

    Args:
        rows: list of rows, each a list of images.
        column_titles / row_titles: optional text above each column / left of each row.
    """
    h, w = np.asarray(rows[0][0]).shape[:2]
    font = _font(12)
    top = 20 if column_titles else 0
    left = 110 if row_titles else 0
    ncols = max(len(r) for r in rows)
    img = Image.new("RGB", (left + ncols * (w + pad) + pad, top + len(rows) * (h + pad) + pad),
                    WHITE)
    draw = ImageDraw.Draw(img)
    for j, title in enumerate(column_titles):
        draw.text((left + pad + j * (w + pad), 3), title, fill=BLACK, font=font)
    for i, row in enumerate(rows):
        y = top + pad + i * (h + pad)
        if i < len(row_titles):
            draw.text((4, y + h // 2 - 6), row_titles[i], fill=BLACK, font=font)
        for j, tile in enumerate(row):
            img.paste(Image.fromarray(np.asarray(tile, dtype=np.uint8)),
                      (left + pad + j * (w + pad), y))
    path = Path(path)
    save_image(img, path)
    return path
