"""Preemption (SIGTERM), Ctrl-C (SIGINT), a second signal, and a frozen rank, on real processes."""

import os
import signal
import subprocess
import sys

import pytest
import torch

from config import REPO_ROOT
from tests.test_train import BLINDNET, TINY, _run, _torchrun
from train import EXIT_DIST_FAILURE
from utils.checkpoint import load_checkpoint
from utils.preemption import EXIT_PREEMPTED

# Sends `sig` `times` times just before step `at` of rank `rank` runs (to the whole process
# group, DataLoader workers included, when `group`), or SIGSTOPs that rank.
SIGNAL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import train
def signalled(state):
    if state.iteration + 1 == {at} and int(os.environ.get("RANK", "0")) == {rank}:
        for _ in range({times}):
            if {group}:
                os.killpg(os.getpgrp(), signal.{sig})
            else:
                os.kill(os.getpid(), signal.{sig})
train.main({argv!r}, before_step=signalled)
"""


def _argv(tmp_path, exp, *extra):
    return TINY + BLINDNET + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
                              "--date", "d", "--exp", exp, *extra]


def _signalled_run(tmp_path, data_env, exp, extra, sig="SIGTERM", at=3, times=1, group=False):
    script = SIGNAL_SCRIPT.format(repo=str(REPO_ROOT), at=at, rank=0, times=times, group=group,
                                  sig=sig, argv=_argv(tmp_path, exp, *extra))
    return subprocess.run([sys.executable, "-c", script], env={**os.environ, **data_env},
                          capture_output=True, text=True, timeout=600, start_new_session=True)


def _assert_same_weights(expected_model, actual_model, what):
    for key, value in expected_model.state_dict().items():
        torch.testing.assert_close(actual_model.state_dict()[key], value, rtol=1e-5, atol=1e-6,
                                   msg=f"{key} differs after {what}")


COMMON = ["--max_iter", "6", "--val_dataset", "cityscapes", "--max_val_images", "1",
          "--save_every", "100"]


@pytest.mark.slow
def test_sigterm_saves_at_the_current_iteration_and_resume_matches(data_env, tmp_path):
    """SIGTERM during iteration 3: iteration 3 completes, last.pth holds iteration 3, exit 75,
    and --resume auto ends with the weights of an uninterrupted run."""
    full = _run(tmp_path, *COMMON, exp="full")
    out = _signalled_run(tmp_path, data_env, "term", COMMON, at=3)
    assert out.returncode == EXIT_PREEMPTED, out.stderr[-3000:]
    run_dir = tmp_path / "ckpt" / "d" / "term"
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 3
    lines = [line for line in out.stderr.splitlines() if "stopped by SIGTERM" in line]
    assert lines == [f"train.py: rank 0: stopped by SIGTERM after iteration 3; "
                     f"{run_dir / 'last.pth'} holds it, continue with --resume auto "
                     f"(exit code {EXIT_PREEMPTED})"]
    assert "Traceback" not in out.stderr
    assert "stopped by SIGTERM: saved" in (run_dir / "train.log").read_text()
    resumed = _run(tmp_path, *COMMON, "--resume", "auto", exp="term")
    assert resumed.iteration == 6
    _assert_same_weights(full.model, resumed.model, "SIGTERM + resume")


def test_second_signal_exits_at_once_without_saving(data_env, tmp_path):
    out = _signalled_run(tmp_path, data_env, "twice", COMMON, at=2, times=2)
    assert out.returncode == 128 + signal.SIGTERM, out.stderr[-3000:]
    assert "second signal (SIGTERM): exiting now without saving" in out.stderr
    assert not (tmp_path / "ckpt" / "d" / "twice" / "last.pth").exists()


@pytest.mark.slow
def test_ctrl_c_with_data_workers_saves_and_resume_matches(data_env, tmp_path):
    """SIGINT to the whole process group (as a terminal's Ctrl-C), DataLoader workers too."""
    common = COMMON + ["--num_workers", "2"]
    full = _run(tmp_path, *common, exp="full")
    out = _signalled_run(tmp_path, data_env, "int", common, sig="SIGINT", at=5, group=True)
    assert out.returncode == EXIT_PREEMPTED, out.stderr[-3000:]
    assert "stopped by SIGINT after iteration 5" in out.stderr
    assert "KeyboardInterrupt" not in out.stderr
    assert load_checkpoint(tmp_path / "ckpt" / "d" / "int" / "last.pth")["iteration"] == 5
    resumed = _run(tmp_path, *common, "--resume", "auto", exp="int")
    _assert_same_weights(full.model, resumed.model, "SIGINT + resume")


def _wrapper(tmp_path, sig, at, rank, argv):
    path = tmp_path / f"wrapper_{sig}.py"
    path.write_text(SIGNAL_SCRIPT.format(repo=str(REPO_ROOT), at=at, rank=rank, times=1,
                                         group=False, sig=sig, argv=argv))
    return str(path)


@pytest.mark.slow
def test_torchrun_sigterm_on_one_rank_stops_all_ranks_at_the_same_iteration(data_env,
                                                                           tmp_path):
    common = ["--max_iter", "4", "--val_dataset", "cityscapes", "--save_every", "100"]
    argv = _argv(tmp_path, "ddp", *common)
    out = _torchrun([_wrapper(tmp_path, "SIGTERM", 2, 1, argv)], data_env)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}: stopped by SIGTERM after iteration 2" in text, text[-3000:]
    run_dir = tmp_path / "ckpt" / "d" / "ddp"
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 2
    resumed = _torchrun(["train.py", *argv, "--resume", "auto"], data_env)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 4


@pytest.mark.slow
def test_torchrun_frozen_rank_stops_the_others_naming_the_timeout(data_env, tmp_path):
    argv = _argv(tmp_path, "frozen", "--max_iter", "4", "--val_dataset", "cityscapes",
                 "--dist_timeout", "0.1")
    out = _torchrun([_wrapper(tmp_path, "SIGSTOP", 2, 1, argv)], data_env, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert ("rank 0: a collective waited longer than --dist_timeout 0.1 minutes" in text), \
        text[-4000:]
    # torchrun's failure summary names the first failed rank and its exit code.
    assert f"exitcode  : {EXIT_DIST_FAILURE}" in text, text[-4000:]
