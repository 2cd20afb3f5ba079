"""Issue 19, fail fast and never hang: corrupt inputs in train / valid / infer (with and
without DataLoader workers), outputs that cannot be written, TensorBoard write errors, a
second signal. Each failure is one ``<script>.py: error:`` line naming the file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
import train
import valid
from config import REPO_ROOT
from tests.generated_data import generate_dataset

# A light trunk without packaged weights: a deliberate random init (--pretrained none).
SHUFFLE = ["--arch", "network.deepv3.DeepShuffleNetV3PlusD", "--pretrained", "none"]
TRAIN = SHUFFLE + ["--dataset", "gtav", "--wt_layer", "0", "0", "1", "1", "1", "0", "0",
                   "--crop_size", "64", "--bs_mult", "2", "--scale_min", "0.75",
                   "--scale_max", "1.25", "--class_uniform_pct", "0", "--lr", "0.01"]
HANG_TIMEOUT_S = 300  # far above a normal exit; a hang used to wait for ever


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A random ShuffleNet checkpoint that records its model, as train.py writes them."""
    import network
    from engine.model_spec import model_entry

    torch.manual_seed(0)
    wt_layer = [0, 0, 1, 1, 1, 0, 0]
    model = network.get_net(SHUFFLE[1], 19, wt_layer, pretrained=False)
    path = tmp_path_factory.mktemp("snapshot") / "shuffle.pth"
    torch.save({"state_dict": model.state_dict(), "norm_semantics": "modern",
                "model": model_entry(SHUFFLE[1], wt_layer, "modern")}, path)
    return path


def _truncate(path):
    """Cut a file to half its bytes (a download that stopped)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2])
    return Path(path)


def _gtav(tmp_path, n=4):
    root = tmp_path / "gtav"
    generate_dataset("gtav", root, num_images=n, size=(64, 96), seed=7, splits=("train",))
    return root


def _train_cmd(tmp_path, gtav, *extra):
    return [sys.executable, str(REPO_ROOT / "train.py"), *TRAIN, "--gtav_dir", str(gtav),
            "--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
            "--date", "d", "--exp", "e", *extra]


def _one_error_line(done, script, *words):
    """The run failed with exit 1 and its stderr ends in one ``<script>.py: error:`` line
    holding ``words``, without a traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert lines and lines[-1].startswith(f"{script}.py: error: "), done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for word in words:
        assert word in lines[-1], lines[-1]
    return lines[-1]


# --- corrupt inputs ----------------------------------------------------------------------

def test_truncated_training_image_with_workers_exits_instead_of_hanging(tmp_path):
    gtav = _gtav(tmp_path)
    bad = _truncate(sorted((gtav / "images" / "train").rglob("*.png"))[1])
    done = subprocess.run(_train_cmd(tmp_path, gtav, "--max_iter", "20", "--num_workers", "2",
                                     "--val_dataset"),
                          capture_output=True, text=True, timeout=HANG_TIMEOUT_S)
    _one_error_line(done, "train", f"cannot read image {bad}", "truncated")
    # The message and the end are in the run's log too.
    assert "cannot read image" in (tmp_path / "ckpt" / "d" / "e" / "train.log").read_text()


def test_truncated_training_label_is_named(tmp_path):
    gtav = _gtav(tmp_path)
    bad = _truncate(sorted((gtav / "labels" / "train").rglob("*.png"))[2])
    with pytest.raises(SystemExit) as excinfo:
        train.main([*_train_cmd(tmp_path, gtav)[2:], "--max_iter", "1", "--num_workers", "2",
                    "--val_dataset"])
    assert str(excinfo.value.code).startswith(f"train.py: error: cannot read label {bad}")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_valid_names_a_label_whose_size_differs_from_its_image(tmp_path, workers, snapshot):
    city = tmp_path / "cityscapes"
    generate_dataset("cityscapes", city, num_images=3, size=(64, 96), seed=3, splits=("val",))
    label = sorted(city.rglob("*_gtFine_labelIds.png"))[1]
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(label)
    with pytest.raises(SystemExit) as excinfo:
        valid.main(["--snapshot", str(snapshot), "--val_dataset", "cityscapes",
                    "--cityscapes_dir", str(city), "--ckpt", str(tmp_path / "logs"),
                    "--num_workers", workers])
    message = str(excinfo.value.code)
    assert message.startswith(f"valid.py: error: label {label} is 50x40 but image"), message
    assert "\n" not in message and "DataLoader worker" not in message


def test_infer_writes_every_readable_image_and_names_each_unreadable_one(tmp_path, snapshot,
                                                                         capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.full((40, 48, 3), 60, np.uint8)).save(photos / f"{name}.png")
    bad_b, bad_d = _truncate(photos / "b.png"), photos / "d.png"
    bad_d.write_bytes(b"not an image at all")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as excinfo:
        infer.main(["--snapshot", str(snapshot), "--images", str(photos), "--results",
                    str(out), "--ckpt", str(tmp_path / "logs")])
    message = str(excinfo.value.code)
    assert message.startswith("infer.py: error: 2 input(s) could not be read"), message
    assert str(bad_b) in message and str(bad_d) in message
    written = sorted(p.name for p in (out / "default" / "images").iterdir())
    assert written == ["a_color.png", "a_trainid.png", "c_color.png", "c_trainid.png"]
    assert "wrote 4 files for 2 of 4 images" in capsys.readouterr().out


# --- outputs that cannot be written -------------------------------------------------------

@pytest.fixture
def a_file(tmp_path):
    """A regular file: a folder below it cannot be created, even by root."""
    path = tmp_path / "a_file"
    path.write_text("x")
    return path


@pytest.mark.parametrize("flag", ["--ckpt", "--tb_path"])
def test_train_refuses_an_unwritable_output_at_start(data_env, tmp_path, a_file, flag):
    outputs = {"--ckpt": str(tmp_path / "ckpt"), "--tb_path": str(tmp_path / "tb"),
               flag: str(a_file / "below")}
    with pytest.raises(SystemExit) as excinfo:
        train.main([*TRAIN, "--max_iter", "1", "--val_dataset", "--num_workers", "0",
                    *[x for pair in outputs.items() for x in pair]])
    message = str(excinfo.value.code)
    assert message.startswith(f"train.py: error: cannot write {a_file}/below") and \
        f"({flag})" in message and "Not a directory" in message, message


def test_valid_and_infer_refuse_unwritable_outputs(tmp_path, a_file, snapshot):
    with pytest.raises(SystemExit) as excinfo:
        valid.main(["--snapshot", str(snapshot), "--val_dataset", "cityscapes", "--ckpt",
                    str(a_file)])
    assert str(excinfo.value.code).startswith(f"valid.py: error: cannot write {a_file}/")
    photos = tmp_path / "p"
    photos.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photos / "x.png")
    with pytest.raises(SystemExit) as excinfo:
        infer.main(["--snapshot", str(snapshot), "--images", str(photos), "--results",
                    str(a_file), "--ckpt", str(tmp_path / "logs")])
    message = str(excinfo.value.code)
    assert message.startswith(f"infer.py: error: cannot write {a_file}/default (--results)")


def test_a_full_disk_under_results_json_is_named(data_env, tmp_path, snapshot):
    out = tmp_path / "logs" / "default" / "default"
    out.mkdir(parents=True)
    (out / "results.json").symlink_to("/dev/full")  # every write: No space left on device
    with pytest.raises(SystemExit) as excinfo:
        valid.main(["--snapshot", str(snapshot), "--val_dataset", "cityscapes", "--ckpt",
                    str(tmp_path / "logs"), "--num_workers", "0", "--max_val_images", "1"])
    assert str(excinfo.value.code) == (f"valid.py: error: cannot write {out}/results.json "
                                       f"(--ckpt): No space left on device")


def test_demo_and_generator_name_an_unwritable_folder(tmp_path, a_file):
    import demo
    from datasets.styleshift.__main__ import main as generate

    with pytest.raises(SystemExit) as excinfo:
        demo.main(["--out", str(a_file / "out"), "--data", str(tmp_path / "bench")])
    assert str(excinfo.value.code) == (f"demo.py: error: cannot write {a_file}/out (--out): "
                                       f"Not a directory")
    assert generate(["--root", str(a_file / "bench"), "--n_train", "1", "--n_val", "1",
                     "--n_target", "1", "--styles", "fog", "--size", "32", "64"]) == 1


# TensorBoard's disk fills up: every event-file write fails from then on.
TB_FULL_SCRIPT = """
import errno, sys
sys.path.insert(0, {repo!r})
from tensorboardX import record_writer
def full(self, *args):
    raise OSError(errno.ENOSPC, "No space left on device")
record_writer.RecordWriter.flush = full
import train
train.main({argv!r})
"""


def test_tensorboard_disk_full_ends_that_writer_and_training_goes_on(data_env, tmp_path):
    argv = [*_train_cmd(tmp_path, _gtav(tmp_path))[2:], "--max_iter", "2", "--val_every", "1",
            "--num_workers", "0", "--val_dataset", "cityscapes", "--max_val_images", "1"]
    done = subprocess.run([sys.executable, "-c", TB_FULL_SCRIPT.format(repo=str(REPO_ROOT),
                                                                         argv=argv)],
                          env={**os.environ, **data_env}, capture_output=True, text=True,
                          timeout=HANG_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stdout.splitlines() if "TensorBoard: cannot write" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], done.stdout
    run_dir = tmp_path / "ckpt" / "d" / "e"
    assert torch.load(run_dir / "last.pth", weights_only=True)["iteration"] == 2


# --- signals ------------------------------------------------------------------------------

SECOND_SIGNAL_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from utils.preemption import exit_on_second_signal
with exit_on_second_signal():
    try:
        print("running", flush=True)
        time.sleep(600)
    finally:
        print("cleaning up", flush=True)
        time.sleep(600)  # a clean-up that hangs (workers that do not stop, a full disk)
"""


def _wait_for(process, text):
    for line in process.stdout:
        if text in line:
            return
    raise AssertionError(f"never printed {text!r}")


def test_a_second_signal_exits_at_once_outside_the_training_loop():
    process = subprocess.Popen([sys.executable, "-c",
                                SECOND_SIGNAL_SCRIPT.format(repo=str(REPO_ROOT))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(process, "running")
        process.send_signal(signal.SIGTERM)  # first: raises, the clean-up starts
        _wait_for(process, "cleaning up")
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)  # second: out, whatever it was doing
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        assert "second signal (SIGTERM): exiting now" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
