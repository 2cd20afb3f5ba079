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
    with pytest.raises(OSError, match="disk full"):
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


def test_unwrap_model_handles_nested_wrappers():
    inner = _Tiny()

    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert ckpt.unwrap_model(Wrapper(Wrapper(inner))) is inner
