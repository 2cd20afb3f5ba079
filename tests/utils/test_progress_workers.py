"""utils.progress (plain lines off a terminal), utils.workers (a worker's error in one line,
workers stopped on failure), utils.output (named write errors)."""

import io
import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from utils.output import OutputError, ensure_writable_dir, write_text
from utils.progress import PlainProgress, progress
from utils.workers import error_message, worker_batches


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_and_plain_lines_in_a_file():
    assert type(progress(range(3), file=_Terminal())).__name__ == "tqdm"
    stream = io.StringIO()
    bar = progress(range(3), desc="val x", file=stream)
    assert isinstance(bar, PlainProgress)
    assert list(bar) == [0, 1, 2]
    assert stream.getvalue() == ""  # quicker than one interval: no line at all
    lines = io.StringIO()
    plain = PlainProgress(total=4, desc="train", interval=0.0, file=lines, initial=1)
    plain.set_postfix({"loss": "0.5"}, refresh=False)
    plain.update(1)
    plain.update(2)
    plain.close()
    text = lines.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines()[0].startswith("train: 2/4 it (50%), ")
    assert text.splitlines()[-1].endswith(", loss 0.5") and "4/4 it (100%)" in text


class _Broken(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 3:
            raise OSError(f"cannot read image /data/{index}.png: image file is truncated")
        return torch.zeros(2)


def test_a_worker_error_is_its_one_line_and_the_workers_are_stopped():
    loader = DataLoader(_Broken(), batch_size=1, num_workers=2)
    with pytest.raises(OSError) as excinfo:
        with worker_batches(loader) as batches:
            workers = batches._workers
            for _ in batches:
                pass
    assert "DataLoader worker process" in str(excinfo.value)
    assert error_message(excinfo.value) == ("cannot read image /data/3.png: image file is "
                                            "truncated")
    assert not any(worker.is_alive() for worker in workers)
    assert error_message(ValueError("plain")) == "plain"


def test_outputs_name_the_path_and_the_reason(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"cannot write {blocker}/sub \\(--out\\): Not a"):
        ensure_writable_dir(blocker / "sub", "--out")
    if os.path.exists("/dev/full"):
        link = tmp_path / "results.json"
        link.symlink_to("/dev/full")
        with pytest.raises(OutputError, match="No space left on device"):
            write_text(link, "x" * 10000, "--ckpt")
