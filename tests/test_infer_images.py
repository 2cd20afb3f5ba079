"""infer.py --images on awkward inputs: tiny, 16-bit, grayscale, shared stems; valid.py --images."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import infer
import valid
from datasets.image_folder import ImageFolder, unique_output_stems
from datasets.readers import read_rgb_image, to_rgb8
from transforms.normalization import normalize_images

ARCH = "network.deepv3.DeepR50V3PlusD"  # its instance norms failed on a 7x5 image
WT = ["0", "0", "1", "1", "1", "0", "0"]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    import network

    torch.manual_seed(0)
    model = network.get_net(ARCH, 19, [int(w) for w in WT], pretrained=False)
    path = tmp_path_factory.mktemp("snap") / "raw.pth"
    torch.save(model.state_dict(), path)
    return path


def _infer(tmp_path, snapshot, images, *extra):
    return infer.main(["--arch", ARCH, "--wt_layer", *WT, "--snapshot", str(snapshot),
                       "--ckpt", str(tmp_path / "logs"), "--date", "d", "--exp", "e",
                       "--images", str(images), "--results", str(tmp_path / "res"), *extra])


def test_tiny_16_bit_grey_and_same_stem_images_are_all_written(tmp_path, snapshot):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)).save(photos / "tiny.png")
    cv2.imwrite(str(photos / "deep.png"), rng.integers(0, 65535, (40, 30), dtype=np.uint16))
    Image.fromarray(rng.integers(0, 255, (33, 20), dtype=np.uint8)).save(photos / "grey.png")
    Image.fromarray(rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(photos / "coffee.png")
    Image.fromarray(rng.integers(0, 255, (24, 28, 3), dtype=np.uint8)).save(photos / "coffee.jpg")
    written = _infer(tmp_path, snapshot, photos, "--overlay")
    assert written == 5
    out = tmp_path / "res" / "e" / "images"
    expected = {"tiny": (5, 7), "deep": (40, 30), "grey": (33, 20), "coffee.png": (36, 44),
                "coffee.jpg": (24, 28)}
    assert len(list(out.iterdir())) == 3 * len(expected)  # nothing overwritten
    for stem, shape in expected.items():
        ids = np.asarray(Image.open(out / f"{stem}_trainid.png"))
        assert ids.shape == shape and ids.max() < 19, stem
        assert np.asarray(Image.open(out / f"{stem}_overlay.png")).shape[:2] == shape
    log = (tmp_path / "logs" / "d" / "e" / "infer.log").read_text()
    assert "wrote 15 files for 5 of 5 images" in log
    assert "coffee.jpg_color.png" in log or "coffee.png_color.png" in log


def test_16_bit_and_grayscale_inputs_are_scaled_not_clipped(tmp_path):
    ramp = (np.arange(16, dtype=np.uint32) * 4369).reshape(4, 4).astype(np.uint16)  # 0..65535
    cv2.imwrite(str(tmp_path / "g16.png"), ramp)
    rgb = read_rgb_image(tmp_path / "g16.png")
    array = np.asarray(rgb)
    assert rgb.mode == "RGB" and array.dtype == np.uint8
    np.testing.assert_array_equal(array[..., 0], np.rint(ramp / 257.0).astype(np.uint8))
    assert (array[..., 0] == array[..., 2]).all()
    assert len(np.unique(array)) == 16  # a clip would leave 0 and 255 only
    grey = Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(to_rgb8(grey))[0, :, 1], [0, 128, 255])
    wide = Image.fromarray(np.array([[0, 65535, 70000, -5]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(np.asarray(to_rgb8(wide))[0, :, 0], [0, 255, 255, 0])
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.dstack([ramp] * 3))
    np.testing.assert_array_equal(np.asarray(read_rgb_image(tmp_path / "rgb16.png"))[..., 1],
                                  (ramp >> 8).astype(np.uint8))
    folder = ImageFolder(tmp_path, normalize=False)
    inputs = normalize_images(folder[0]["image"], *folder.normalization)  # as infer.py does
    assert inputs.shape == (3, 4, 4) and 0.0 <= inputs.min() < inputs.max() <= 1


def test_output_stems_never_collide():
    paths = ["a/coffee.png", "a/coffee.jpg", "a/tea.png", "a/Coffee.bmp", "a/coffee.png.jpg",
             "b/tea.jpg", "c/tea.jpg", "a/x.png"]
    names = ["coffee", "coffee", "tea", "Coffee", "coffee.png", "tea", "tea", "x"]
    stems = unique_output_stems(names, paths)
    assert stems[:4] == ["coffee.png", "coffee.jpg", "tea.png", "Coffee.bmp"]
    assert stems[-1] == "x"  # a unique stem is kept as it was
    assert len({s.casefold() for s in stems}) == len(stems)
    assert stems[5:7] == ["tea.jpg", "tea.jpg~2"]


@pytest.mark.parametrize("script", ["valid", "train"])
def test_images_flag_outside_infer_is_an_error_pointing_to_infer(script, capsys):
    main = valid.main if script == "valid" else __import__("train").main
    with pytest.raises(SystemExit) as info:
        main(["--images", "photos/", "--val_dataset", "cityscapes"])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "--images is only read by infer.py" in err and "python infer.py" in err


def test_infer_with_flip_tta_writes_the_prediction_of_the_averaged_logits(tmp_path, snapshot):
    import network
    from datasets.image_folder import ImageFolder

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(photos / "a.png")
    assert _infer(tmp_path, snapshot, photos, "--eval_flip", "--eval_scales", "1.0", "1.5") == 1
    written = np.asarray(Image.open(tmp_path / "res" / "e" / "images" / "a_trainid.png"))

    model = network.get_net(ARCH, 19, [int(w) for w in WT], pretrained=False)
    model.load_state_dict(torch.load(snapshot))
    model.eval()
    image = normalize_images(ImageFolder(str(photos))[0]["image"].unsqueeze(0))
    with torch.no_grad():
        maps = []
        for scale in (1.0, 1.5):  # no side below 64: no padding
            x = torch.nn.functional.interpolate(image, scale_factor=scale, mode="bilinear",
                                                align_corners=False) if scale != 1 else image
            for flip in (False, True):
                out = model(x.flip(-1) if flip else x)
                out = out.flip(-1) if flip else out
                maps.append(torch.nn.functional.interpolate(out, size=image.shape[-2:],
                                                            mode="bilinear", align_corners=False))
        expected = torch.stack(maps).mean(0).argmax(1)[0].numpy()
        plain = model(image).argmax(1)[0].numpy()
    assert (written == expected).mean() > 0.999, (written == expected).mean()
    assert (written != plain).any()  # the augmentation changed the prediction


def test_missing_inputs_are_one_error_line_before_anything_is_written(data_env, tmp_path,
                                                                      snapshot, monkeypatch):
    # Both used to end in a traceback (valid.py already answered a bad root in one line);
    # a bad second root also failed only after the first dataset's outputs were written.
    with pytest.raises(SystemExit) as excinfo:
        _infer(tmp_path, snapshot, tmp_path / "no_images")
    assert str(excinfo.value).startswith("infer.py: error: --images ")
    assert "no images found" in str(excinfo.value)
    monkeypatch.setenv("BLINDNET_BDD_DIR", str(tmp_path / "no_bdd"))
    with pytest.raises(SystemExit) as excinfo:
        infer.main(["--arch", ARCH, "--wt_layer", *WT, "--snapshot", str(snapshot),
                    "--ckpt", str(tmp_path / "logs"), "--val_dataset", "cityscapes",
                    "bdd100k", "--results", str(tmp_path / "res"), "--max_val_images", "1",
                    "--num_workers", "0"])
    message = str(excinfo.value)
    assert message.startswith("infer.py: error: ") and str(tmp_path / "no_bdd") in message
    assert "BLINDNET_BDD_DIR" in message
    assert not (tmp_path / "res").exists()
