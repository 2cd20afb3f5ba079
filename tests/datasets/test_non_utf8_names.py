"""File names that are not valid UTF-8 (Latin-1 bytes on Linux, PEP 383 surrogates)."""

import json
import logging
import os
import shutil
import sys

import numpy as np
import pytest

import datasets.cache
from datasets import DatasetLayoutError, DatasetReadError, build_dataset
from datasets.cache import files_fingerprint
from tests.generated_data import generate_dataset
from utils.logging import printable, setup_logging

pytestmark = pytest.mark.skipif(sys.platform != "linux" or os.fsencode("\udce9") != b"\xe9",
                                reason="needs byte file names (Linux, UTF-8 locale)")
LATIN1 = b"caf\xe9"  # 'café' in Latin-1: not valid UTF-8
SHOWN = "caf\\xe9"  # how messages and logs name it


def _rename_pair(root, folder, old_stem, suffix=".png"):
    """Rename GTAV image and label ``<old_stem>.png`` of split ``folder`` to caf\\xe9.png."""
    for kind in ("images", "labels"):
        parent = os.fsencode(root / kind / folder / "folder")
        os.rename(parent + b"/" + os.fsencode(old_stem + suffix),
                  parent + b"/" + LATIN1 + suffix.encode())
    return os.fsdecode(LATIN1)


@pytest.fixture
def latin1_gtav(tmp_path):
    root = tmp_path / "gtav"
    generate_dataset("gtav", root, num_images=3, size=(48, 64), seed=3)
    _rename_pair(root, "train", "00002")
    _rename_pair(root, "valid", "00005")
    return root


def test_printable_escapes_only_undecodable_bytes():
    assert printable(os.fsdecode(b"/data/" + LATIN1 + b".png")) == f"/data/{SHOWN}.png"
    assert printable("/data/café.png") == "/data/café.png"
    printable(os.fsdecode(LATIN1)).encode("utf-8")  # no UnicodeEncodeError


def test_fingerprint_of_valid_names_is_unchanged_and_latin1_names_hash(latin1_gtav, tmp_path):
    samples = build_dataset("gtav", "train", root=latin1_gtav, cache_dir=tmp_path / "c",
                            training=False).samples
    assert any(s.name == os.fsdecode(LATIN1) for s in samples)
    digest = files_fingerprint(samples, latin1_gtav)
    assert len(digest) == 40 and digest == files_fingerprint(samples, latin1_gtav)


@pytest.mark.parametrize("pct", [0.0, 0.5])
def test_gtav_with_a_latin1_name_builds_caches_and_loads(latin1_gtav, tmp_path, pct,
                                                         monkeypatch):
    options = dict(root=latin1_gtav, cache_dir=tmp_path / "cache", crop_size=32,
                   class_uniform_pct=pct, class_uniform_tile=32, centroid_workers=1)
    dataset = build_dataset("gtav", "train", **options)
    names = [dataset[i]["name"] for i in range(len(dataset))]
    assert os.fsdecode(LATIN1) in names
    caches = sorted((tmp_path / "cache").glob("*.json"))
    assert caches
    for path in caches:
        json.loads(path.read_text())
    # A second start-up reuses the caches (nothing is read again).
    monkeypatch.setattr(datasets.cache, "parallel_map", pytest.fail)
    monkeypatch.setattr("datasets.uniform.parallel_map", pytest.fail)
    monkeypatch.setattr("datasets.label_scan.parallel_map", pytest.fail)
    monkeypatch.setattr("datasets.gtav.parallel_map", pytest.fail)
    assert len(build_dataset("gtav", "train", **options)) == len(dataset)


def test_synthia_with_a_latin1_name_reads_its_16_bit_label(tmp_path):
    """OpenCV took file names as UTF-8 text (and crashed on these); now bytes are read."""
    root = tmp_path / "synthia"
    generate_dataset("synthia", root, num_images=2, size=(32, 48), seed=1)
    for sub in ("RGB/train", "GT/LABELS/train"):
        parent = os.fsencode(root / sub)
        os.rename(parent + b"/0000000.png", parent + b"/" + LATIN1 + b".png")
    dataset = build_dataset("synthia", "train", root=root, training=False,
                            cache_dir=tmp_path / "c")
    (index,) = [i for i, s in enumerate(dataset.samples) if s.name == os.fsdecode(LATIN1)]
    label = dataset[index]["label"]
    assert label.numpy().max() < 255 or (label.numpy() == 255).all()
    assert set(np.unique(label.numpy())) <= set(range(19)) | {255}


def test_errors_about_a_latin1_file_name_it(latin1_gtav, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(latin1_gtav, broken)
    label = os.fsencode(broken / "labels" / "train" / "folder") + b"/" + LATIN1 + b".png"
    with open(label, "wb") as handle:
        handle.write(b"not a png")
    with pytest.raises(DatasetReadError) as info:  # the GTAV size check reads headers
        build_dataset("gtav", "train", root=broken, training=False, cache_dir=tmp_path,
                      centroid_workers=1)
    assert f"{SHOWN}.png" in str(info.value)
    str(info.value).encode("utf-8")  # printable anywhere

    os.remove(label)
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("gtav", "train", root=broken, cache_dir=tmp_path)
    assert f"{SHOWN}.png" in str(info.value) and "without a label" in str(info.value)


def test_log_lines_naming_a_latin1_file_are_written(tmp_path, capsys):
    log_file = tmp_path / "run.log"
    logger = setup_logging(0, log_file)
    logger.info(f"reading {os.fsdecode(b'/data/' + LATIN1 + b'.png')}")
    for handler in logger.handlers:
        handler.flush()
    assert f"reading /data/{SHOWN}.png" in log_file.read_text(encoding="utf-8")
    assert "Logging error" not in capsys.readouterr().err
    logging.getLogger("blindnet").handlers.clear()


def test_train_and_validate_on_gtav_with_latin1_names(latin1_gtav, tmp_path):
    """train.py end to end: class-uniform cache, training items, validation, TensorBoard."""
    import train

    result = train.main([
        "--arch", "network.deepv3.DeepR18V3PlusD", "--pretrained", "none", "--crop_size", "32",
        "--bs_mult", "2",
        "--num_workers", "0", "--class_uniform_pct", "0.5", "--class_uniform_tile", "32",
        "--dataset", "gtav", "--val_dataset", "gtav", "--max_iter", "2",
        "--gtav_dir", str(latin1_gtav), "--ckpt", str(tmp_path / "ckpt"),
        "--tb_path", str(tmp_path / "tb"), "--date", "d", "--exp", "latin1"])
    assert result.iteration == 2 and "gtav" in result.best
    log = (tmp_path / "ckpt" / "d" / "latin1" / "train.log").read_text(encoding="utf-8")
    assert "done after 2 iterations" in log


def test_results_files_name_a_latin1_checkpoint_path(tmp_path):
    from engine.evaluation import write_results

    result = {"miou": 0.5, "pixel_acc": 0.9, "iou": [0.5] * 19, "hist": [[0] * 19] * 19}
    checkpoint = os.fsdecode(os.fsencode(tmp_path) + b"/" + LATIN1 + b".pth")
    json_path, md_path = write_results({"gtav": result}, tmp_path, [str(i) for i in range(19)],
                                       "robustnet", checkpoint)
    assert json.loads(json_path.read_text())["checkpoint"].endswith(f"{SHOWN}.pth")
    assert f"{SHOWN}.pth" in md_path.read_text(encoding="utf-8")
