import errno
import os
import random
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from utils import checkpoint as ckpt


def test_atomic_save_roundtrip_weights_only(tmp_path):
    path = tmp_path / "sub" / "last.pth"
    obj = {"state_dict": {"w": torch.arange(3.0)}, "epoch": 2, "mean_iu": 0.5, "command": "x"}
    ckpt.atomic_save(obj, path)
    loaded = ckpt.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(3.0))
    assert loaded["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.pth"]


def test_exception_mid_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    ckpt.atomic_save({"v": torch.tensor(1)}, path)

    def broken_save(obj, handle):
        handle.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ckpt.CheckpointError, match="last.pth: disk full"):
        ckpt.atomic_save({"v": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # temp file cleaned up


def test_process_killed_mid_save_keeps_previous_file(tmp_path):
    """A hard crash (no exception handlers run) must not corrupt the previous checkpoint."""
    path = tmp_path / "last.pth"
    ckpt.atomic_save({"v": torch.tensor(1)}, path)
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(ckpt.__file__.rsplit('/utils/', 1)[0])!r})
        from utils.checkpoint import atomic_save
        def dying_save(obj, handle):
            handle.write(b"half a checkpoint")
            handle.flush()
            os._exit(9)
        torch.save = dying_save
        atomic_save({{"v": torch.tensor(2)}}, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script])
    assert result.returncode == 9
    assert ckpt.load_checkpoint(path)["v"].item() == 1


def test_load_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ckpt.load_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="bad.pth"):
        ckpt.load_checkpoint(bad)


def _unreadable_files(tmp_path):
    """(path, expected words) for every kind of unreadable file we have met."""
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    payload = good.read_bytes()
    rng = random.Random(0)
    cases = {
        "empty.pth": (b"", "empty file"),
        "random.pth": (bytes(rng.randrange(256) for _ in range(4096)), "not a PyTorch checkpoint"),
        # Random bytes that happen to start like a legacy (pickle) checkpoint.
        "random_pickle.pth": (b"\x80" + bytes(rng.randrange(256) for _ in range(4095)),
                              "corrupt"),
        "truncated.pth": (payload[:len(payload) // 2], "truncated"),
        "text.pth": (b"not a checkpoint", "not a PyTorch checkpoint"),
    }
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    return [(tmp_path / name, words) for name, (_, words) in cases.items()]


def test_unreadable_files_get_our_message_naming_the_path(tmp_path):
    for path, words in _unreadable_files(tmp_path):
        with pytest.raises(ckpt.CheckpointError) as excinfo:
            ckpt.load_checkpoint(path)
        message = str(excinfo.value)
        assert str(path) in message and words in message, message
        assert "weights_only" not in message
        # Nothing printed with the traceback repeats PyTorch's advice either.
        shown = excinfo.value.__cause__ or (None if excinfo.value.__suppress_context__
                                            else excinfo.value.__context__)
        assert shown is None or "weights_only" not in str(shown)


def test_pickled_objects_are_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"w": torch.zeros(1), "opts": argparse_like()}, path)
    with pytest.raises(ckpt.CheckpointError, match="objects other than tensors") as excinfo:
        ckpt.load_checkpoint(path)
    assert "weights_only" not in str(excinfo.value) and str(path) in str(excinfo.value)


def argparse_like():
    import argparse
    return argparse.Namespace(lr=0.1)


class _DiskFull:
    """A file object that accepts ``room`` bytes, then fails like a full disk."""

    def __init__(self, handle, room):
        self.handle, self.room = handle, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self):
        self.handle.flush()

    def fileno(self):
        return self.handle.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_disk_full_names_path_and_reason_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    ckpt.atomic_save({"v": torch.tensor(1)}, path)
    real_open = ckpt._open_temp
    monkeypatch.setattr(ckpt, "_open_temp", lambda fd: _DiskFull(real_open(fd), room=600))
    with pytest.raises(ckpt.CheckpointError) as excinfo:
        ckpt.atomic_save({"v": torch.arange(10000)}, path)
    message = str(excinfo.value)
    assert message == f"could not save checkpoint {path}: No space left on device"
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_checkpoints_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        path = ckpt.atomic_save({"v": torch.tensor(1)}, tmp_path / "a.pth")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        os.umask(0o002)
        path = ckpt.atomic_save({"v": torch.tensor(1)}, tmp_path / "b.pth")
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_remove_stale_temp_files_only_touches_save_leftovers(tmp_path):
    leftovers = [tmp_path / ".last.pth.abc123.tmp", tmp_path / ".best_cityscapes.pth.x_9.tmp"]
    keep = [tmp_path / "last.pth", tmp_path / "notes.tmp", tmp_path / ".hidden.tmp"]
    for path in leftovers + keep:
        path.write_bytes(b"x")
    removed = ckpt.remove_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in keep)
    assert ckpt.remove_stale_temp_files(tmp_path / "absent") == []


class _Tiny(nn.Module):
    def __init__(self, out=2):
        super().__init__()
        self.conv = nn.Conv2d(1, out, 1)
        self.bn = nn.BatchNorm2d(out)


def test_forgiving_load_strips_module_prefix_and_reports():
    source = _Tiny()
    official = {"module." + k: v for k, v in source.state_dict().items()}
    target = _Tiny()
    report = ckpt.load_state_dict_forgiving(target, official, log=False)
    assert report.complete
    assert torch.equal(target.conv.weight, source.conv.weight)

    wrong = dict(official)
    wrong["module.conv.weight"] = torch.zeros(3, 1, 1, 1)
    wrong["module.extra"] = torch.zeros(1)
    del wrong["module.bn.bias"]
    fresh = _Tiny()
    report = ckpt.load_state_dict_forgiving(fresh, wrong, log=False)
    assert report.mismatched == [("conv.weight", (3, 1, 1, 1), (2, 1, 1, 1))]
    assert report.unexpected == ["extra"]
    assert report.missing == ["bn.bias"]
    assert "shape mismatch conv.weight" in report.summary()


def test_extract_state_dict_accepts_raw_and_wrapped():
    sd = {"a": torch.zeros(1)}
    assert ckpt.extract_state_dict({"state_dict": sd, "epoch": 1}) is sd
    assert ckpt.extract_state_dict(sd) is sd
    with pytest.raises(ValueError, match="state_dict"):
        ckpt.extract_state_dict({"epoch": 1})
    # A common other layout: the message names the file and what it holds instead.
    with pytest.raises(ValueError) as excinfo:
        ckpt.extract_state_dict({"model": sd, "epoch": 1}, "runs/x.pth")
    assert "checkpoint runs/x.pth holds neither" in str(excinfo.value)
    assert "['epoch', 'model']" in str(excinfo.value)


def test_unwrap_model_handles_nested_wrappers():
    inner = _Tiny()

    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert ckpt.unwrap_model(Wrapper(Wrapper(inner))) is inner


class _OnTheGpu(torch.Tensor):
    """Stands in for a CUDA tensor on a CPU machine: ``.cpu()`` gives a plain tensor, and
    saved as it is, ``weights_only`` loading refuses it (a plain ``torch.load`` of a CUDA
    checkpoint fails on a machine without CUDA the same way)."""

    def cpu(self):
        return self.as_subclass(torch.Tensor).clone()


def test_every_saved_tensor_is_moved_to_the_cpu_first(tmp_path):
    weights = nn.BatchNorm2d(2).state_dict()
    weights["running_mean"] = torch.ones(2).as_subclass(_OnTheGpu)
    momentum = torch.zeros(3).as_subclass(_OnTheGpu)
    obj = {"state_dict": weights, "optimizer": {"state": {0: {"momentum_buffer": momentum}}},
           "rng": [("python", (1, 2)), torch.zeros(1).as_subclass(_OnTheGpu)], "epoch": 3}
    torch.save(obj, tmp_path / "raw.pth")
    with pytest.raises(Exception):  # what saving the device tensors unconverted would give
        torch.load(tmp_path / "raw.pth", weights_only=True)
    ckpt.atomic_save(obj, tmp_path / "last.pth")
    loaded = torch.load(tmp_path / "last.pth", map_location="cpu", weights_only=True)
    assert type(loaded["state_dict"]["running_mean"]) is torch.Tensor
    assert torch.equal(loaded["state_dict"]["running_mean"], torch.ones(2))
    assert type(loaded["optimizer"]["state"][0]["momentum_buffer"]) is torch.Tensor
    assert loaded["rng"][0] == ("python", (1, 2)) and loaded["epoch"] == 3
    assert loaded["state_dict"]._metadata == weights._metadata  # BatchNorm's version kept
