"""Style-shift benchmark generator: scenes, styles, on-disk formats, determinism, caching."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets import build_dataset
from datasets.bdd100k import decode_bdd_label
from datasets.cityscapes import decode_cityscapes_label
from datasets.gtav import decode_gtav_label
from datasets.styleshift import (
    SOURCE_STYLE, STYLES, TARGET_STYLES, generate_benchmark, layout_rng,
    render_scene, render_style, style_rng,
)
from utils.labels import TrainId

SIZE = (96, 192)
TINY = dict(seed=3, size=SIZE, n_train=3, n_val=4, n_target=4, progress=False)
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def heldout_layouts():
    return [render_scene(layout_rng(0, "heldout", i), SIZE) for i in range(4)]


@pytest.fixture(scope="module")
def style_images(heldout_layouts):
    """style -> (4, H, W, 3) float images of the same four layouts."""
    return {name: np.stack([render_style(layout, name, style_rng(0, "heldout", i, name))
                            for i, (layout, _) in enumerate(heldout_layouts)]) / 255.0
            for name in STYLES}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("styleshift") / "bench"
    return root, generate_benchmark(root, workers=1, **TINY)


def read_files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


# --- scenes -----------------------------------------------------------------------------

def test_render_scene_contract():
    layout, train_ids = render_scene(np.random.default_rng(0), SIZE)
    assert train_ids.dtype == np.uint8 and train_ids.shape == SIZE
    assert train_ids.max() <= 18
    np.testing.assert_array_equal(train_ids, layout.train_ids)
    for name in ("instance", "part", "depth", "detail", "shade", "shadow"):
        assert getattr(layout, name).shape == SIZE, name
    # Instance ids index the per-instance class table, which agrees with the label map.
    table = np.asarray(layout.instance_class)
    np.testing.assert_array_equal(table[layout.instance], train_ids)
    sky = train_ids == TrainId.SKY
    assert np.isinf(layout.depth[sky]).all() and np.isfinite(layout.depth[~sky]).all()


def test_render_scene_is_deterministic_per_seed():
    first, ids_a = render_scene(np.random.default_rng(7), SIZE)
    second, ids_b = render_scene(np.random.default_rng(7), SIZE)
    _, ids_c = render_scene(np.random.default_rng(8), SIZE)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(first.detail, second.detail)
    assert (ids_a != ids_c).mean() > 0.1


def test_scenes_vary_and_cover_many_classes(heldout_layouts):
    labels = np.stack([ids for _, ids in heldout_layouts])
    present = np.unique(labels)
    assert len(present) >= 12, present
    # Ground at the bottom, sky (when visible) at the top: layout follows a street.
    assert set(np.unique(labels[:, -1])) <= {TrainId.ROAD, TrainId.SIDEWALK, TrainId.TERRAIN,
                                            TrainId.CAR, TrainId.TRUCK, TrainId.BUS,
                                            TrainId.PERSON, TrainId.RIDER, TrainId.BICYCLE,
                                            TrainId.MOTORCYCLE, TrainId.POLE,
                                            TrainId.VEGETATION, TrainId.TRAFFIC_SIGN,
                                            TrainId.TRAFFIC_LIGHT, TrainId.FENCE, TrainId.WALL}
    assert (labels[:, 0] != TrainId.ROAD).all()
    road_share = [(ids == TrainId.ROAD).mean() for ids in labels]
    assert np.ptp(road_share) > 0.02  # layouts differ, not one scene shifted around


def test_bad_size_is_rejected():
    with pytest.raises(ValueError, match="size"):
        render_scene(np.random.default_rng(0), (8, 8))


# --- styles -----------------------------------------------------------------------------

def test_registry():
    assert SOURCE_STYLE in STYLES
    assert len(TARGET_STYLES) >= 4 and SOURCE_STYLE not in TARGET_STYLES
    with pytest.raises(ValueError, match="unknown style"):
        render_style(render_scene(np.random.default_rng(0), SIZE)[0], "cartoon",
                     np.random.default_rng(0))


def test_render_style_contract_and_determinism(heldout_layouts):
    layout, _ = heldout_layouts[0]
    detail, shadow = layout.detail.copy(), layout.shadow.copy()
    for name in STYLES:
        image = render_style(layout, name, np.random.default_rng(1))
        assert image.dtype == np.uint8 and image.shape == SIZE + (3,)
        np.testing.assert_array_equal(image, render_style(layout, name,
                                                          np.random.default_rng(1)))
        # Per-image variation inside a style (the source included): nothing is constant.
        other = render_style(layout, name, np.random.default_rng(2))
        assert np.abs(image.astype(int) - other).mean() > 1.0, name
    # One layout is painted in many styles: painting must leave it untouched.
    np.testing.assert_array_equal(layout.detail, detail)
    np.testing.assert_array_equal(layout.shadow, shadow)


def test_styles_change_appearance_as_described(style_images):
    luma = {name: (images @ LUMA) for name, images in style_images.items()}
    saturation = {name: np.mean([cv2.cvtColor(np.uint8(255 * im), cv2.COLOR_RGB2HSV)[..., 1]
                                 for im in images]) / 255 for name, images in style_images.items()}
    src_mean, src_std = luma["source"].mean(), luma["source"].std()
    assert luma["night"].mean() < 0.5 * src_mean
    assert luma["fog"].std() < 0.8 * src_std and luma["fog"].mean() > src_mean
    assert luma["glare"].mean() > 1.4 * src_mean
    assert saturation["overcast"] < 0.7 * saturation["source"]
    assert saturation["fog"] < 0.5 * saturation["source"]


def test_styles_shift_class_colours_not_labels(heldout_layouts, style_images):
    labels = np.stack([ids for _, ids in heldout_layouts])
    classes = [c for c in range(19) if (labels == c).sum() > 100]
    source = {c: style_images["source"][labels == c].mean(0) for c in classes}
    for name in TARGET_STYLES:
        distance = [np.abs(style_images[name][labels == c].mean(0) - source[c]).sum()
                    for c in classes]
        assert np.mean(distance) > 0.2, name
    # Autumn recolours foliage (green -> orange); the source's is green.
    veg = labels == TrainId.VEGETATION
    r, g, _ = style_images["source"][veg].mean(0)
    assert g > r
    r, g, _ = style_images["autumn"][veg].mean(0)
    assert r > g


# --- the benchmark on disk --------------------------------------------------------------

def test_manifest_and_counts(generated):
    root, manifest = generated
    assert json.loads((root / "manifest.json").read_text())["complete"] is True
    assert manifest["params"]["seed"] == 3 and manifest["params"]["size"] == list(SIZE)
    assert set(manifest["targets"]) == set(TARGET_STYLES)
    assert manifest["targets"]["night"]["dataset"] == "bdd100k"
    assert manifest["targets"]["fog"]["dataset"] == "cityscapes"
    gtav = Path(manifest["source"]["root"])
    assert len(list((gtav / "images" / "train").rglob("*.png"))) == 3
    assert len(list((gtav / "labels" / "valid").rglob("*.png"))) == 4
    for name, entry in manifest["targets"].items():
        assert len(list(Path(entry["root"]).rglob("*.*"))) == 2 * 4, name
    assert sum(manifest["class_pixels"]["train"]) == 3 * SIZE[0] * SIZE[1]


def target_labels(entry):
    root = Path(entry["root"])
    if entry["dataset"] == "bdd100k":
        return [decode_bdd_label(p) for p in sorted((root / "labels" / "val").glob("*.png"))]
    return [decode_cityscapes_label(p) for p in sorted(root.rglob("*_gtFine_labelIds.png"))]


def test_labels_on_disk_decode_to_the_rendered_train_ids(generated):
    root, manifest = generated
    expected = [render_scene(layout_rng(3, "heldout", i), SIZE)[1] for i in range(4)]
    gtav_val = sorted((root / "gtav" / "labels" / "valid").rglob("*.png"))
    assert Image.open(gtav_val[0]).mode == "P"  # palette PNG, as GTAV ships them
    for path, ids in zip(gtav_val, expected):
        np.testing.assert_array_equal(decode_gtav_label(path), ids)
    # Every target style has the same labels as the source val split: appearance-only shift.
    for name, entry in manifest["targets"].items():
        decoded = target_labels(entry)
        assert len(decoded) == 4
        for got, ids in zip(decoded, expected):
            np.testing.assert_array_equal(got, ids, err_msg=name)
        present = np.unique(np.stack(decoded))
        assert len(present[present < 19]) >= 10, (name, present)


def test_real_loaders_read_the_benchmark(generated, tmp_path):
    _, manifest = generated
    source = build_dataset("gtav", "val", root=manifest["source"]["root"], training=False,
                           cache_dir=tmp_path)
    assert len(source) == 4
    image, label = source[0]["image"], source[0]["label"]
    assert tuple(image.shape) == (3,) + SIZE and tuple(label.shape) == SIZE
    for name, entry in manifest["targets"].items():
        dataset = build_dataset(entry["dataset"], "val", root=entry["root"], training=False,
                                cache_dir=tmp_path)
        assert len(dataset) == 4, name
        target_label = dataset[0]["label"]
        np.testing.assert_array_equal(target_label.numpy(), label.numpy())


def test_generation_is_byte_identical_and_pool_independent(generated, tmp_path):
    root, _ = generated
    again = tmp_path / "again"
    generate_benchmark(again, workers=2, **TINY)
    first, second = read_files(root), read_files(again)
    assert first.keys() == second.keys() and len(first) > 0
    assert all(first[name] == second[name] for name in first)


def test_cache_skips_work_and_invalidates_on_change(tmp_path):
    root = tmp_path / "cached"
    params = dict(TINY, n_train=2, n_val=1, n_target=1, target_styles=["fog"])
    generate_benchmark(root, **params)
    label = next((root / "gtav" / "labels" / "train").rglob("*.png"))
    stamp = label.stat().st_mtime_ns
    manifest = generate_benchmark(root, **params)
    assert label.stat().st_mtime_ns == stamp  # nothing rewritten
    assert manifest["targets"]["fog"]["root"] == str((root / "fog").resolve())
    # Other parameters: regenerated, and stale files of the old run are gone.
    generate_benchmark(root, **dict(params, n_train=1, target_styles=["night"]))
    assert len(list((root / "gtav" / "images" / "train").rglob("*.png"))) == 1
    assert not (root / "fog").exists()
    # A missing file makes the cache invalid.
    label = next((root / "gtav" / "labels" / "train").rglob("*.png"))
    label.unlink()
    generate_benchmark(root, **dict(params, n_train=1, target_styles=["night"]))
    assert label.exists()


def test_refuses_to_overwrite_foreign_folders(tmp_path):
    foreign = tmp_path / "gtav" / "mine.txt"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("keep me")
    with pytest.raises(FileExistsError, match="gtav"):
        generate_benchmark(tmp_path, **TINY)
    assert foreign.read_text() == "keep me"


@pytest.mark.parametrize("bad, match", [
    (dict(target_styles=["cartoon"]), "target_styles"),
    (dict(n_train=0), "n_train"),
    (dict(seed=-1), "seed"),
    (dict(bdd_style="cartoon"), "bdd_style"),
])
def test_bad_parameters_are_rejected(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        generate_benchmark(tmp_path, **dict(TINY, **bad))


def test_cache_key_hashes_only_the_generator_package(tmp_path, monkeypatch):
    """The code fingerprint covers the generator (incl. its format writers), no test code."""
    import shutil

    import datasets.styleshift.benchmark as benchmark

    package = tmp_path / "datasets" / "styleshift"
    shutil.copytree(Path(benchmark.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(benchmark, "__file__", str(package / "benchmark.py"))
    before = benchmark.code_fingerprint()
    (tmp_path / "datasets" / "synthetic.py").write_text("# a fixture writer outside\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "generated_data.py").write_text("# test code\n")
    assert benchmark.code_fingerprint() == before
    with open(package / "formats.py", "a") as handle:
        handle.write("# a change to a format writer\n")
    assert benchmark.code_fingerprint() != before


@pytest.mark.parametrize("argv, match", [
    (["--n_val", "0"], "n_val must be a positive integer"),
    (["--size", "8", "8"], "size must be at least"),
    (["--bdd_style", "cartoon"], "bdd_style"),
    (["--styles", "fog", "--bdd_style", "night"], "--bdd_style night is not among --styles fog"),
])
def test_command_line_reports_bad_values_in_one_line(tmp_path, capsys, argv, match):
    from datasets.styleshift.__main__ import main

    assert main(["--root", str(tmp_path / "out"), "--workers", "1", *argv]) == 2
    err = capsys.readouterr().err  # may start with the progress bar
    last = err.strip().splitlines()[-1]
    assert last.startswith("python -m datasets.styleshift: error: ") and match in last
    assert "Traceback" not in err


def test_command_line_refuses_a_foreign_root_in_one_line(tmp_path, capsys):
    from datasets.styleshift.__main__ import main

    (tmp_path / "gtav").mkdir()
    (tmp_path / "gtav" / "mine.txt").write_text("keep me")
    assert main(["--root", str(tmp_path), "--workers", "1", "--n_train", "1", "--n_val", "1",
                 "--n_target", "1", "--size", "32", "64"]) == 2
    assert "was not written by the style-shift" in capsys.readouterr().err
