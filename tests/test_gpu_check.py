"""bench/gpu_check.py: its plumbing (caps, failures, report, no install step) in the default
suite, and the whole ``--device cpu --quick`` run as a slow test, so the check cannot rot
between GPU loans (docs/GPU.md)."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import gpu_check  # noqa: E402
from gpucheck.config import SECTIONS, STEP_CONFIGS  # noqa: E402


def _args(tmp_path):
    return SimpleNamespace(out=str(tmp_path), device="cpu", quick=True)


def test_env_section_writes_the_json_and_markdown_report(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--quick",
                           "--sections", "env"]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"device", "torch", "cuda", "cudnn", "sections"} <= set(report)
    env = report["sections"]["env"]
    assert env["status"] == "ok" and env["host_cpu_cores"] >= 1 and env["seconds"] > 0
    assert "missing_packages" in env
    text = (tmp_path / "gpu_check.md").read_text()
    assert "| env | ok |" in text and text in capsys.readouterr().out


def test_a_section_over_its_cap_is_killed_and_a_failing_one_recorded(tmp_path):
    slow = gpu_check._child(_args(tmp_path), "equality", cap=0.05)
    assert slow["status"] == "failed" and "timed out after its cap" in slow["error"]
    broken = gpu_check._child(_args(tmp_path), "step", cap=300, variant="no_such_variant")
    assert broken["status"] == "failed" and "StopIteration" in broken["error"]
    assert (tmp_path / "logs" / "step_no_such_variant.log").is_file()


def test_gpu_check_installs_nothing_and_the_wheels_are_ignored():
    makefile = (REPO_ROOT / "Makefile").read_text().split("\ngpu-check:", 1)[1]
    rule, recipe = makefile.split("\n", 1)
    assert rule.strip() == ""  # no prerequisite: in particular not `install`
    recipe = recipe.split("\n\n", 1)[0]
    assert "bench/gpu_check.py" in recipe and "pip" not in recipe and "ensure" not in recipe
    ignored = subprocess.run(["git", "check-ignore", "-q", ".whl/x.whl"], cwd=REPO_ROOT)
    assert ignored.returncode == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_cuda_without_cuda_stops_pytest_and_the_check():
    tests = subprocess.run([sys.executable, "-m", "pytest", "--device", "cuda", "-q",
                            "-p", "no:cacheprovider", "tests/test_config.py"],
                           cwd=REPO_ROOT, capture_output=True, text=True)
    assert tests.returncode == 4  # pytest's usage error, not a quiet CPU run
    assert "--device cuda: no CUDA device" in tests.stdout + tests.stderr
    check = subprocess.run([sys.executable, "bench/gpu_check.py", "--out", "/tmp/unused"],
                           cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode == 2 and "no CUDA device" in check.stderr


@pytest.mark.slow
def test_quick_cpu_run_passes_every_section(tmp_path):
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--out", str(tmp_path),
                           "--device", "cpu", "--quick"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=3600)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {name: entry["status"] for name, entry in report["sections"].items()}
    assert status == dict.fromkeys(SECTIONS, "ok"), done.stdout[-3000:]
    assert done.returncode == 0
    sections = report["sections"]
    assert set(sections["step"]["variants"]) == {c["name"] for c in STEP_CONFIGS}
    assert sections["tests"]["passed"] > 0 and sections["tests"]["failed"] == 0
    assert sections["equality"]["worst_value"] == 0.0  # the CPU against itself
    assert sections["resume"]["bitwise_equal"] and sections["resume"]["all_tensors_cpu"]
    assert sections["amp"]["fp16"]["finite"] and sections["amp"]["bf16"]["finite"]
    assert sections["loader"]["loader_cores_per_gpu"] > 0
    assert "source" in sections["demo"]["miou"]
