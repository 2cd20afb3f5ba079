import subprocess
import sys

import pytest

from tools.ensure_requirements import unsatisfied
from config import REPO_ROOT


def test_repo_requirements_are_satisfied_here():
    assert unsatisfied(REPO_ROOT / "requirements.txt") == []


def test_missing_and_out_of_range_requirements_are_reported(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nnumpy>=1.0\nnumpy<1.0  # too old\nsurely-not-installed-pkg-xyz\n")
    missing = unsatisfied(req)
    assert missing[0].startswith("numpy<1.0 (installed ")
    assert missing[1] == "surely-not-installed-pkg-xyz"
    assert len(missing) == 2


@pytest.mark.parametrize("script", ["train.py", "valid.py", "infer.py"])
def test_entry_point_help(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--val_dataset" in out.stdout and "--snapshot" in out.stdout
