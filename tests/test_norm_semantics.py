"""--norm_semantics through train.py / valid.py: C2 under SGD with weight decay, the mode named
in args.json, checkpoints and results, and the warning for a mode mismatch."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import train
import valid
from tests.conftest import run_train_script_tiny
from utils.checkpoint import load_checkpoint

ARCH = "network.deepv3.DeepR18V3PlusD"
WT = ["0", "0", "1", "1", "1", "0", "0"]
TINY = ["--arch", ARCH, "--pretrained", "none", "--crop_size", "64", "--bs_mult", "2",
        "--num_workers", "0", "--class_uniform_tile", "32", "--class_uniform_pct", "0.5",
        "--scale_min", "0.75", "--scale_max", "1.25", "--lr", "0.01"]
BLINDNET = ["--dataset", "gtav_jitter", "--wt_layer", *WT, "--use_ca", "--use_cwcl",
            "--use_sdcl", "--w1", "0.2", "--w2", "0.2", "--w3", "0.3", "--w4", "0.3",
            "--contrast_max_classes", "4", "--contrast_max_views", "8", "--num_patch", "4",
            "--gblur", "--color_aug", "0.5"]


def _sgd_steps(mode, steps=3):
    """(initial state, model after ``steps`` SGD steps with weight decay) in ``mode``."""
    import network
    import cli
    from engine import trainer
    from loss import BlindNetCriterion
    from utils.precision import grad_scaler

    args = cli.parse_args("train", TINY + BLINDNET + ["--norm_semantics", mode])
    torch.manual_seed(0)
    model = network.get_net(args.arch, 19, args.wt_layer, pretrained=False,
                            norm_semantics=args.norm_semantics)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = trainer.build_optimizer(model, lr=0.05, momentum=0.9, weight_decay=5e-4)
    criterion = BlindNetCriterion(**cli.criterion_kwargs(args))
    gen = torch.Generator().manual_seed(1)
    batch = {"image": torch.randn(2, 3, 64, 64, generator=gen),
             "image_aug": torch.randn(2, 3, 64, 64, generator=gen),
             "label": torch.randint(0, 19, (2, 64, 64), generator=gen)}
    model.train()
    for _ in range(steps):
        trainer.forward_backward(model, criterion, grad_scaler(torch.device("cpu")), batch,
                                 device=torch.device("cpu"), two_view=True, with_embeddings=True,
                                 amp=args.amp, channels_last=args.channels_last,
                                 generator=torch.Generator().manual_seed(0))
        optimizer.step()
    return initial, model


def _named(model, kind):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kind)]


def test_torch12_keeps_every_batchnorm_affine_bit_identical_while_convs_move():
    initial, model = _sgd_steps("torch1.2")
    norms = _named(model, _BatchNorm)
    assert len(norms) > 20
    for name, bn in norms:
        assert torch.equal(bn.weight, initial[f"{name}.weight"]), name
        assert torch.equal(bn.bias, initial[f"{name}.bias"]), name
    # Running statistics still update (momentum 0.1), as in PyTorch 1.2.
    assert any(not torch.equal(bn.running_mean, initial[f"{name}.running_mean"])
               for name, bn in norms)
    convs = _named(model, nn.Conv2d)
    for name, conv in convs:
        assert not torch.equal(conv.weight, initial[f"{name}.weight"]), name


def test_modern_moves_the_batchnorm_affine():
    initial, model = _sgd_steps("modern")
    for name, bn in _named(model, _BatchNorm):
        assert not torch.equal(bn.weight, initial[f"{name}.weight"]), name
        assert not torch.equal(bn.bias, initial[f"{name}.bias"]), name


def _train(tmp_path, mode, exp, *extra):
    argv = TINY + BLINDNET + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
                              "--date", "d", "--exp", exp, "--max_iter", "2", "--val_dataset",
                              "cityscapes", "--max_val_images", "2", *extra]
    if mode is not None:
        argv += ["--norm_semantics", mode]
    return train.main(argv)


def _valid(tmp_path, snapshot, *extra):
    return valid.main(["--arch", ARCH, "--wt_layer", *WT, "--snapshot",
                       str(snapshot), "--ckpt", str(tmp_path / "logs"), "--date", "d", "--exp",
                       "v", "--num_workers", "0", "--val_dataset", "cityscapes",
                       "--max_val_images", "2", *extra])


def test_torch12_run_is_named_everywhere_and_mismatched_evaluation_is_refused(
        data_env, tmp_path, recwarn, capsys):
    result = _train(tmp_path, "torch1.2", "t12")
    run_dir = tmp_path / "ckpt" / "d" / "t12"
    assert json.loads((run_dir / "args.json").read_text())["norm_semantics"] == "torch1.2"
    history = [json.loads(line) for line in (run_dir / "val_history.jsonl").open()]
    assert {h["norm_semantics"] for h in history} == {"torch1.2"}
    ckpt = load_checkpoint(run_dir / "last.pth")
    assert ckpt["norm_semantics"] == "torch1.2" and ckpt["args"]["norm_semantics"] == "torch1.2"
    # The optimizer holds exactly the parameters that require grad (no BatchNorm affine).
    trainable = [p for p in result.model.parameters() if p.requires_grad]
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == len(trainable)
    assert len(trainable) < len(list(result.model.parameters()))
    assert "norm semantics torch1.2" in (run_dir / "train.log").read_text()

    # valid.py reads the mode from the checkpoint: no warning, the results name it.
    recwarn.clear()
    _valid(tmp_path, run_dir / "last.pth")
    assert not [w for w in recwarn if "norm_semantics" in str(w.message)]
    out = tmp_path / "logs" / "d" / "v"
    saved = json.loads((out / "results.json").read_text())
    assert saved["norm_semantics"] == saved["trained_norm_semantics"] == "torch1.2"
    assert "norm semantics: `torch1.2`" in (out / "results.md").read_text()

    # A contradicting flag is refused naming both modes (the checkpoint defines the model);
    # --snapshot_partial overrides with a warning, and evaluation itself is unchanged.
    with pytest.raises(SystemExit) as excinfo:
        _valid(tmp_path, run_dir / "last.pth", "--norm_semantics", "modern")
    assert excinfo.value.code == 2 and "--norm_semantics modern given, checkpoint trained " \
        "with --norm_semantics torch1.2" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="trained with --norm_semantics torch1.2 but is "
                                         "evaluated with --norm_semantics modern"):
        modern = _valid(tmp_path, run_dir / "last.pth", "--norm_semantics", "modern",
                        "--snapshot_partial")
    assert json.loads((out / "results.json").read_text())["norm_semantics"] == "modern"
    assert modern["cityscapes"]["hist"] == _valid(tmp_path, run_dir / "last.pth")[
        "cityscapes"]["hist"]

    # Continuing the run in the other mode is refused (its optimizer holds other parameters).
    with pytest.raises(SystemExit, match="trained with --norm_semantics torch1.2"):
        _train(tmp_path, "modern", "t12", "--max_iter", "3", "--resume", "auto")


def test_modern_checkpoint_evaluated_as_torch12_is_refused_naming_both(data_env, tmp_path,
                                                                       capsys):
    import network

    model = network.get_net(ARCH, 19, [int(v) for v in WT], pretrained=False)
    path = tmp_path / "modern.pth"
    torch.save({"state_dict": model.state_dict(), "norm_semantics": "modern"}, path)
    with pytest.raises(SystemExit) as excinfo:
        _valid(tmp_path, path, "--norm_semantics", "torch1.2")
    assert excinfo.value.code == 2 and "--norm_semantics torch1.2 given, checkpoint trained " \
        "with --norm_semantics modern" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="trained with --norm_semantics modern but is "
                                         "evaluated with --norm_semantics torch1.2"):
        _valid(tmp_path, path, "--norm_semantics", "torch1.2", "--snapshot_partial")
    saved = json.loads((tmp_path / "logs" / "d" / "v" / "results.json").read_text())
    assert (saved["norm_semantics"], saved["trained_norm_semantics"]) == ("torch1.2", "modern")


def test_default_is_modern_and_official_checkpoints_are_unrecorded(data_env, tmp_path):
    from cli import parse_args

    assert parse_args("train", []).norm_semantics == "modern"
    assert parse_args("valid", []).norm_semantics is None  # taken from the checkpoint
    import network

    model = network.get_net(ARCH, 19, [int(v) for v in WT], pretrained=False)
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "epoch": 1, "mean_iu": 0.0}, path)
    _valid(tmp_path, path)
    saved = json.loads((tmp_path / "logs" / "d" / "v" / "results.json").read_text())
    assert (saved["norm_semantics"], saved["trained_norm_semantics"]) == ("modern", None)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_in_torch12_mode(data_env, tmp_path):
    """DDP (gloo) with frozen BatchNorm parameters and IN statistics all-reduced in forward
    and backward: runs, and the replicas stay identical."""
    import os
    import subprocess
    import sys

    from config import REPO_ROOT

    argv = ["train.py", *TINY, *BLINDNET, "--norm_semantics", "torch1.2", "--max_iter", "3",
            "--val_dataset", "cityscapes", "--ckpt", str(tmp_path / "ckpt"), "--tb_path",
            str(tmp_path / "tb"), "--date", "d", "--exp", "ddp"]
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", *argv], cwd=REPO_ROOT,
                         env={**os.environ, **data_env}, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = (tmp_path / "ckpt" / "d" / "ddp" / "train.log").read_text()
    assert "2 process(es)" in log and "norm semantics torch1.2" in log
    assert "weights identical on all 2 ranks" in log
    ckpt = load_checkpoint(tmp_path / "ckpt" / "d" / "ddp" / "last.pth")
    assert ckpt["norm_semantics"] == "torch1.2"


@pytest.mark.slow
def test_torch12_train_script_runs_the_official_recipe_with_the_switch(data_env, tmp_path):
    out = run_train_script_tiny("blindnet_train_r50os16_gtav_torch12.sh", data_env, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "0326" / "BlindNet_r50os16_gtav_torch12" / "last.pth")
    assert ckpt["norm_semantics"] == "torch1.2"
    assert ckpt["args"]["arch"] == "network.deepv3.DeepR50V3PlusD"
    assert ckpt["args"]["wt_layer"] == [0, 0, 1, 1, 1, 0, 0] and ckpt["args"]["w4"] == 0.3


def test_demo_passes_norm_semantics_to_blindnet_only():
    import demo

    args = demo.parse_args(["--norm_semantics", "torch1.2"])
    manifest = {"source": {"root": "unused"}}
    blindnet = demo.train_argv("blindnet", args, manifest, Path("out"))
    baseline = demo.train_argv("baseline", args, manifest, Path("out"))
    assert blindnet[blindnet.index("--norm_semantics") + 1] == "torch1.2"
    assert "--norm_semantics" not in baseline
    assert demo.parse_args([]).norm_semantics == "modern"


def _official_checkpoint(path):
    """An official-layout checkpoint: one SGD group over every named parameter, momentum only
    for the parameters that had a gradient (the BatchNorm affines the torch1.2 run froze had
    none). Returns {parameter name: its momentum buffer}."""
    import network

    wt = [int(v) for v in WT]
    frozen = {name for name, p in network.get_net(ARCH, 19, wt, pretrained=False,
                                                  norm_semantics="torch1.2").named_parameters()
              if not p.requires_grad}
    model = network.get_net(ARCH, 19, wt, pretrained=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    for i, (name, p) in enumerate(model.named_parameters()):
        p.grad = None if name in frozen else torch.full_like(p, float(i))
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": 1, "mean_iu": 0.0}, path)
    assert frozen
    return {name: optimizer.state[p]["momentum_buffer"]
            for name, p in model.named_parameters() if name not in frozen}


def test_official_optimizer_state_continues_under_torch12(data_env, tmp_path):
    import network
    from engine.checkpointing import official_optimizer_state_for
    from engine.trainer import build_optimizer

    momentum = _official_checkpoint(tmp_path / "official.pth")
    model = network.get_net(ARCH, 19, [int(v) for v in WT], pretrained=False,
                            norm_semantics="torch1.2")
    optimizer = build_optimizer(model, lr=0.01, momentum=0.9, weight_decay=5e-4)
    saved = load_checkpoint(tmp_path / "official.pth")["optimizer"]
    optimizer.load_state_dict(official_optimizer_state_for(saved, model))
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == len(momentum)
    for name, p in trainable:  # each buffer reached the parameter of the same name
        assert torch.equal(optimizer.state[p]["momentum_buffer"], momentum[name]), name

    # train.py: the official run continues in its own semantics (it used to stop with
    # PyTorch's "parameter group that doesn't match the size" error).
    result = _train(tmp_path, "torch1.2", "cont", "--snapshot", str(tmp_path / "official.pth"),
                    "--restore_optimizer", "--max_iter", "3")
    assert result.iteration == 3
    log = (tmp_path / "ckpt" / "d" / "cont" / "train.log").read_text()
    assert "(iteration 2)" in log  # epoch 1 of 2 iterations each


def test_an_optimizer_state_that_does_not_fit_names_the_file_and_the_way_out(tmp_path):
    from engine.checkpointing import load_optimizer_state

    saved = torch.optim.SGD(nn.Linear(3, 3).parameters(), lr=0.1).state_dict()
    saved["param_groups"][0]["params"] = [0]  # one parameter where the model has two
    optimizer = torch.optim.SGD(nn.Linear(3, 3).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"other\.pth: its optimizer state does not fit .*"
                                         r"--snapshot without --restore_optimizer"):
        load_optimizer_state(optimizer, saved, "other.pth")
