"""The fast RGB reader (OpenCV for 8-bit RGB/RGBA PNGs) gives PIL's pixels exactly, for
every file variant, and the other files go through PIL."""

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets import readers
from datasets.readers import DatasetReadError, read_rgb_image, to_rgb8


def _photo(height=24, width=40, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.kron(rng.integers(0, 256, (height // 4, width // 4, 3)), np.ones((4, 4, 1)))
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def _variants(folder):
    """name -> path of one small image per variant the datasets may hold."""
    rgb = _photo()
    images = {
        "rgb.png": Image.fromarray(rgb), "rgba.png": Image.fromarray(
            np.dstack([rgb, rgb[..., :1]]), "RGBA"),
        "gray.png": Image.fromarray(rgb[..., 0]), "palette.png": Image.fromarray(rgb).quantize(16),
        "rgb.jpg": Image.fromarray(rgb), "gray.jpg": Image.fromarray(rgb[..., 1]),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"), "rgb.webp": Image.fromarray(rgb),
    }
    paths = {}
    for name, image in images.items():
        image.save(folder / name, quality=90) if name.endswith(".jpg") else image.save(
            folder / name)
        paths[name] = folder / name
    # 16-bit RGB and grey PNGs (PIL keeps the high bytes / to_rgb8 scales).
    cv2.imwrite(str(folder / "rgb16.png"), (rgb.astype(np.uint16) * 257 + 3)[..., ::-1])
    cv2.imwrite(str(folder / "gray16.png"), rgb[..., 2].astype(np.uint16) * 250)
    paths.update({"rgb16.png": folder / "rgb16.png", "gray16.png": folder / "gray16.png"})
    # An EXIF orientation tag (rotate 90): PIL's open ignores it, so must the fast readers.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif, quality=90)
    Image.fromarray(rgb).save(folder / "rotated.png", exif=exif)
    paths.update({"rotated.jpg": folder / "rotated.jpg", "rotated.png": folder / "rotated.png"})
    return paths


def test_every_variant_reads_as_pil_reads_it(tmp_path):
    for name, path in _variants(tmp_path).items():
        with Image.open(path) as image:
            expected = np.asarray(to_rgb8(image))
        got = read_rgb_image(path)
        assert got.mode == "RGB" and got.size == (40, 24), name
        np.testing.assert_array_equal(np.asarray(got), expected, err_msg=name)


@pytest.mark.parametrize("name, reader", [("rgb.png", "_decode_opencv"),
                                          ("rgba.png", "_decode_opencv"),
                                          ("rgb.jpg", None),
                                          ("rotated.png", "_decode_opencv"),
                                          ("palette.png", None), ("cmyk.jpg", None)])
def test_the_fast_reader_of_each_format_is_the_one_used(tmp_path, monkeypatch, name, reader):
    path = _variants(tmp_path)[name]
    used = []
    for key, decode in list(readers.FAST_READERS.items()):
        monkeypatch.setitem(readers.FAST_READERS, key,
                            lambda data, decode=decode: used.append(decode.__name__)
                            or decode(data))
    read_rgb_image(path)
    assert used == ([reader] if reader else [])


def test_a_truncated_file_names_itself(tmp_path):
    path = _variants(tmp_path)["rgb.png"]
    path.write_bytes(path.read_bytes()[:120])
    with pytest.raises(DatasetReadError, match="rgb.png"):
        read_rgb_image(path)
