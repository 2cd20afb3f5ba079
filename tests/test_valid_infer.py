"""valid.py and infer.py on generated data with a randomly initialised light model."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import infer
import valid
from utils.metrics import metrics_from_confusion

ARCH = "network.deepv3.DeepR18V3PlusD"
WT = ["0", "0", "1", "1", "1", "0", "0"]


@pytest.fixture(scope="module")
def model_and_snapshots(tmp_path_factory):
    """A random R18 model saved as ours, as an official checkpoint, and as a raw state dict."""
    import network

    torch.manual_seed(0)
    model = network.get_net(ARCH, 19, [int(w) for w in WT], pretrained=False).eval()
    folder = tmp_path_factory.mktemp("snapshots")
    sd = model.state_dict()
    official = {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3,
                "mean_iu": 0.1, "optimizer": {}, "command": "train.py ..."}
    torch.save(official, folder / "official.pth")
    torch.save(sd, folder / "raw.pth")
    return model, folder


def _common(tmp_path, snapshot):
    return ["--arch", ARCH, "--wt_layer", *WT, "--snapshot", str(snapshot), "--ckpt",
            str(tmp_path / "logs"), "--date", "d", "--exp", "e", "--num_workers", "0"]


def test_valid_miou_equals_direct_confusion_computation(data_env, model_and_snapshots,
                                                        tmp_path):
    import datasets

    model, folder = model_and_snapshots
    results = valid.main(_common(tmp_path, folder / "official.pth")
                         + ["--val_dataset", "cityscapes", "bdd-100k"])
    # Direct computation: run the same model image by image, count with numpy.
    dataset = datasets.build_dataset("cityscapes", "val", training=False)
    hist = np.zeros((19, 19), dtype=np.int64)
    with torch.no_grad():
        for item in dataset:
            pred = model(item["image"][None]).argmax(1)[0].numpy()
            gt = item["label"].numpy()
            keep = gt < 19
            np.add.at(hist, (gt[keep], pred[keep]), 1)
    expected = metrics_from_confusion(hist)
    assert results["cityscapes"]["miou"] == pytest.approx(expected["miou"], abs=1e-12)
    assert results["cityscapes"]["hist"] == hist.tolist()
    out_dir = tmp_path / "logs" / "d" / "e"
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["eval_protocol"] == "robustnet"
    assert set(saved["datasets"]) == {"cityscapes", "bdd100k"}
    assert saved["datasets"]["cityscapes"]["miou"] == pytest.approx(expected["miou"])
    assert "robustnet" in (out_dir / "results.md").read_text()
    for name in ("cityscapes", "bdd100k"):
        with Image.open(out_dir / f"confusion_{name}.png") as png:
            assert png.size[0] > 300


def test_valid_accepts_a_raw_state_dict_and_rejects_a_wrong_arch(data_env, model_and_snapshots,
                                                                 tmp_path):
    _, folder = model_and_snapshots
    torch.backends.cudnn.benchmark = False
    results = valid.main(_common(tmp_path, folder / "raw.pth") + ["--val_dataset", "gtav"])
    assert results["gtav"]["images"] == 5
    assert torch.backends.cudnn.benchmark  # evaluation shapes repeat: cuDNN autotunes
    wrong = _common(tmp_path, folder / "raw.pth") + ["--val_dataset", "gtav"]
    wrong[1] = "network.deepv3.DeepMobileNetV3PlusD"
    with pytest.raises(SystemExit, match="does not fit --arch"):
        valid.main(wrong)


def test_infer_writes_colour_trainid_and_overlay_pngs(data_env, model_and_snapshots, tmp_path):
    from utils.labels import PALETTE

    _, folder = model_and_snapshots
    torch.backends.cudnn.benchmark = False
    written = infer.main(_common(tmp_path, folder / "official.pth")
                         + ["--val_dataset", "cityscapes", "bdd-100k", "--mod", "blindnet",
                            "--results", str(tmp_path / "res"), "--overlay"])
    assert written == 10 and torch.backends.cudnn.benchmark
    for name in ("cityscapes", "bdd100k"):
        out = tmp_path / "res" / "blindnet" / name
        colours = sorted(out.glob("*_color.png"))
        assert len(colours) == 5
        for colour_path in colours:
            stem = colour_path.name[: -len("_color.png")]
            ids = np.asarray(Image.open(out / f"{stem}_trainid.png"))
            colour = np.asarray(Image.open(colour_path).convert("RGB"))
            assert ids.dtype == np.uint8 and ids.max() < 19
            np.testing.assert_array_equal(colour, np.asarray(PALETTE)[ids])
            assert (out / f"{stem}_overlay.png").is_file()


def test_infer_on_a_folder_of_plain_images(model_and_snapshots, tmp_path):
    _, folder = model_and_snapshots
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i, ext in enumerate(("jpg", "png")):
        Image.fromarray(rng.integers(0, 255, (40 + i, 70, 3), dtype=np.uint8)).save(
            photos / f"p{i}.{ext}")
    written = infer.main(_common(tmp_path, folder / "raw.pth")
                         + ["--images", str(photos), "--results", str(tmp_path / "res"),
                            "--sliding_window", "--crop_size", "32"])
    assert written == 2
    out = tmp_path / "res" / "e" / "images"
    assert np.asarray(Image.open(out / "p1_trainid.png")).shape == (41, 70)
    assert (out / "p0_color.png").is_file()


@pytest.mark.slow
def test_official_valid_and_infer_scripts_with_an_official_checkpoint(data_env, tmp_path):
    """The official R50 scripts (valid with a weight path, infer with weights + output)."""
    import os
    import subprocess

    import network
    from config import REPO_ROOT

    model = network.get_net("network.deepv3.DeepR50V3PlusD", 19, [0, 0, 1, 1, 1, 0, 0],
                            pretrained=False)
    weights = tmp_path / "official.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "epoch": 10, "mean_iu": 0.4}, weights)
    env = {**os.environ, **data_env}
    extra = ["--max_val_images", "1", "--num_workers", "0", "--ckpt", str(tmp_path / "logs")]
    valid_run = subprocess.run(["bash", "scripts/blindnet_valid_r50os16_gtav.sh", str(weights),
                                *extra], cwd=REPO_ROOT, env=env, capture_output=True,
                               text=True, timeout=900)
    assert valid_run.returncode == 0, valid_run.stdout[-3000:] + valid_run.stderr[-3000:]
    results = json.loads((tmp_path / "logs" / "0101" / "r50os16_gtav_blindnet"
                          / "results.json").read_text())
    assert set(results["datasets"]) == {"cityscapes", "bdd100k", "mapillary", "gtav"}

    infer_run = subprocess.run(["bash", "scripts/blindnet_infer_r50os16.sh", str(weights),
                                str(tmp_path / "masks"), *extra], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=900)
    assert infer_run.returncode == 0, infer_run.stdout[-3000:] + infer_run.stderr[-3000:]
    for dataset in ("cityscapes", "mapillary", "bdd100k"):  # the script says bdd-100k
        assert len(list((tmp_path / "masks" / "blindnet" / dataset).glob("*_color.png"))) == 1
