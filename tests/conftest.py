"""Shared pytest set-up: the repository root is importable and runs stay on few threads.

``pytest --device cuda`` (default ``cpu``) runs the device-capable tests, those that take the
:func:`device` fixture, on the GPU and skips the others, saying why; without CUDA it stops
with a usage error (exit code 4) instead of quietly testing the CPU. Tests marked
``two_gpus`` (NCCL, SyncBatchNorm) are skipped, with that reason, on fewer than two GPUs.
docs/GPU.md lists what is device-capable.
"""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


DEVICES = ("cpu", "cuda")


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=DEVICES,
                     help="device of the device-capable tests (those taking the `device` "
                          "fixture); with cuda every other test is skipped (default: cpu)")


def pytest_configure(config):
    if config.getoption("--device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                f"--device cuda: no CUDA device on this machine (torch {torch.__version__}: "
                f"torch.cuda.is_available() is False); run pytest without --device to test "
                f"on the CPU")


def _skip_reason(item, device):
    """Why ``item`` does not run under ``--device device``, or None when it runs."""
    if item.get_closest_marker("two_gpus") is not None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count < 2:
            return (f"needs two CUDA GPUs (NCCL, SyncBatchNorm), this machine has {count}; run "
                    f"`pytest --device cuda` on a machine with two")
        return None
    if device == "cpu":
        return None
    cpu_only = item.get_closest_marker("cpu_only")
    if cpu_only is not None:
        return f"CPU only: {cpu_only.args[0] if cpu_only.args else 'see the test'}"
    if "device" not in item.fixturenames:
        return "not device-capable (takes no `device` fixture): it runs in the CPU suite"
    return None


def pytest_collection_modifyitems(config, items):
    device = config.getoption("--device")
    for item in items:
        reason = _skip_reason(item, device)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def device(request):
    """The ``torch.device`` of ``pytest --device`` (cpu unless asked otherwise)."""
    import torch

    return torch.device(request.config.getoption("--device"))


def registered_datasets():
    """{canonical name: env var} of every dataset in the registry (the fixtures' source)."""
    from datasets import DATASET_CLASSES

    return {name: cls.env_var for name, cls in DATASET_CLASSES.items()}


@pytest.fixture(autouse=True)
def _isolated_dataset_env(monkeypatch):
    """Tests never see the developer's real dataset roots."""
    from config import DATA_ROOT_ENV

    for name in (*registered_datasets().values(), DATA_ROOT_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def generated_roots(tmp_path_factory):
    """Every registered dataset, small (5 train + 5 val images each), in its real on-disk
    format."""
    from tests.generated_data import generate_dataset

    from datasets import DATASET_CLASSES

    base = tmp_path_factory.mktemp("generated_data")
    roots = {}
    for seed, name in enumerate(registered_datasets()):
        folder = DATASET_CLASSES[name].root_folder()  # the ACDC conditions share one root
        roots[name] = base / folder
        if not roots[name].exists():
            generate_dataset(name, roots[name], num_images=5, size=(64, 96), seed=seed)
    return roots


@pytest.fixture
def data_env(generated_roots, monkeypatch):
    """Point the BLINDNET_*_DIR variables at the generated datasets; returns the env mapping."""
    env_vars = registered_datasets()
    env = {env_vars[name]: str(path) for name, path in generated_roots.items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# Overrides that make an official training script (R50, 40k iterations) finish in seconds.
TINY_TRAIN_OVERRIDES = ("--pretrained", "none", "--crop_size", "64", "--max_iter", "2",
                        "--bs_mult", "2", "--class_uniform_tile", "32", "--num_workers", "0",
                        "--max_val_images", "1", "--scale_min", "0.75", "--scale_max", "1.25")


def run_train_script_tiny(script, data_env, tmp_path, extra=()):
    """Run ``scripts/<script>`` in one process with :data:`TINY_TRAIN_OVERRIDES` (then
    ``extra``), writing checkpoints under ``tmp_path``; returns the ``CompletedProcess``."""
    import os
    import subprocess

    from config import REPO_ROOT

    argv = [*TINY_TRAIN_OVERRIDES, "--ckpt", str(tmp_path), "--tb_path", str(tmp_path / "tb"),
            *extra]
    return subprocess.run(["bash", f"scripts/{script}", *argv], cwd=REPO_ROOT,
                          env={**os.environ, **data_env, "NGPU": "1"},
                          capture_output=True, text=True, timeout=900)


# A failed test keeps its tmp_path for debugging (pyproject's tmp_path_retention_policy) but
# not its large checkpoints: a few failing ResNet-50 runs would otherwise fill the disk and
# fail every later test with "No space left on device".
LARGE_CHECKPOINT_BYTES = 16 * 2**20


def remove_large_checkpoints(folder, limit=LARGE_CHECKPOINT_BYTES):
    """Delete ``*.pth`` files over ``limit`` bytes under ``folder``; returns their paths."""
    removed = []
    for path in Path(folder).rglob("*.pth"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size > limit:
            path.unlink()
            removed.append(path)
    return removed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    tmp_path = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    try:
        return (yield)
    finally:
        if tmp_path is not None and Path(tmp_path).is_dir():
            remove_large_checkpoints(tmp_path)
