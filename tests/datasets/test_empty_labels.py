"""Labels whose every pixel maps to ignore: reported, and refused when all are like that."""

import json
import warnings

import numpy as np
import pytest
import torch

from datasets import build_dataset
from datasets.styleshift.formats import write_bdd_sample, write_gtav_sample
from tests.generated_data import random_scene
from utils.empty_labels import EmptyLabelsError

ARCH = "network.deepv3.DeepR18V3PlusD"


def _gtav(root, empty_stems, stems=("00001", "00002", "00003"), splits=("train", "val")):
    """A GTAV dataset whose labels ``empty_stems`` are all void (no class colour)."""
    rng = np.random.default_rng(0)
    for split in splits:
        for stem in stems:
            image, ids = random_scene(rng, (40, 56))
            if stem in empty_stems:
                ids = np.full_like(ids, 255)
            write_gtav_sample(root, split, stem, image, ids)
    return root


@pytest.mark.parametrize("pct", [0.0, 0.5])
def test_all_empty_training_labels_stop_with_a_clear_error(tmp_path, pct):
    root = _gtav(tmp_path / "gtav", {"00001", "00002", "00003"})
    with pytest.raises(EmptyLabelsError) as info:
        build_dataset("gtav", "train", root=root, cache_dir=tmp_path / "c", crop_size=32,
                      class_uniform_pct=pct, class_uniform_tile=32, centroid_workers=1).prepare()
    message = str(info.value)
    assert "gtav (train" in message and str(root) in message
    assert "3 of 3" in message and "00001.png" in message
    assert "colours of the 19 Cityscapes train classes" in message  # what was expected


@pytest.mark.parametrize("pct", [0.0, 0.5])
def test_some_empty_training_labels_are_reported_and_cached(tmp_path, pct, monkeypatch):
    root = _gtav(tmp_path / "gtav", {"00002"})
    options = dict(root=root, cache_dir=tmp_path / "c", crop_size=32, class_uniform_pct=pct,
                   class_uniform_tile=32, centroid_workers=1)
    with pytest.warns(RuntimeWarning, match=r"1 of 3 label\(s\) have no pixel") as record:
        dataset = build_dataset("gtav", "train", **options).prepare()
    assert any("00002.png" in str(w.message) for w in record)
    assert [p.name for p in dataset.empty_labels] == ["00002.png"]
    assert len(dataset) == 3  # reported, nothing dropped
    # The second start-up reads the answer from the cache, not the labels.
    monkeypatch.setattr("datasets.uniform.parallel_map", pytest.fail)
    monkeypatch.setattr("datasets.label_scan.parallel_map", pytest.fail)
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        again = build_dataset("gtav", "train", **options).prepare()
    assert again.empty_labels == dataset.empty_labels


def test_full_labels_give_no_warning(tmp_path):
    root = tmp_path / "bdd"
    rng = np.random.default_rng(1)
    for i in range(2):
        write_bdd_sample(root, "train", f"img{i}", *random_scene(rng, (32, 32)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = build_dataset("bdd100k", "train", root=root, cache_dir=tmp_path / "c",
                                crop_size=16).prepare()
    assert dataset.empty_labels == []


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    import network

    torch.manual_seed(0)
    model = network.get_net(ARCH, 19, [0, 0, 1, 1, 1, 0, 0], pretrained=False)
    path = tmp_path_factory.mktemp("snap") / "raw.pth"
    torch.save(model.state_dict(), path)
    return path


def _valid(tmp_path, root, snapshot):
    import valid

    return valid.main(["--arch", ARCH, "--wt_layer", "0", "0", "1", "1", "1", "0", "0",
                       "--snapshot", str(snapshot), "--ckpt", str(tmp_path / "logs"),
                       "--date", "d", "--exp", "e", "--num_workers", "0",
                       "--val_dataset", "gtav", "--gtav_dir", str(root)])


def test_evaluation_counts_empty_labels_in_log_and_results(tmp_path, snapshot):
    root = _gtav(tmp_path / "gtav", {"00003"}, splits=("val",))
    with pytest.warns(RuntimeWarning, match=r"gtav \(val.*1 of 3"):
        results = _valid(tmp_path, root, snapshot)
    assert results["gtav"]["empty_labels"] == 1
    assert results["gtav"]["empty_label_names"] == ["00003"]
    out = tmp_path / "logs" / "d" / "e"
    saved = json.loads((out / "results.json").read_text())
    assert saved["datasets"]["gtav"]["empty_labels"] == 1
    assert "1 of them have no valid label pixel, e.g. 00003" in (out / "valid.log").read_text()


def test_evaluation_of_only_empty_labels_is_an_error(tmp_path, snapshot):
    root = _gtav(tmp_path / "gtav", {"00001", "00002", "00003"}, splits=("val",))
    # valid.py reports the library's EmptyLabelsError as one line (docs/FAILURES.md)
    with pytest.raises(SystemExit, match=r"^valid.py: error: gtav \(val, root .*3 of 3 label"):
        _valid(tmp_path, root, snapshot)
    assert not (tmp_path / "logs" / "d" / "e" / "results.json").exists()


def test_train_py_refuses_a_training_set_of_empty_labels(tmp_path):
    import train

    root = _gtav(tmp_path / "gtav", {"00001", "00002", "00003"})
    # the entry point turns the library's EmptyLabelsError into an exit with its message
    with pytest.raises(SystemExit, match="nothing to train on"):
        train.main(["--arch", ARCH, "--pretrained", "none", "--crop_size", "32",
                    "--num_workers", "0",
                    "--dataset", "gtav", "--val_dataset", "gtav", "--max_iter", "2",
                    "--gtav_dir", str(root), "--ckpt", str(tmp_path / "ckpt"),
                    "--tb_path", str(tmp_path / "tb"), "--date", "d", "--exp", "e"])
