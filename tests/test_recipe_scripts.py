"""The contract of configs/: every official and comparison script, now the launcher plus
``--config``, resolves to the settings of its flag list before the recipes became files, and
demo.py trains each method with the settings its Python lists gave.

The flag lists below are the scripts as they were (the official scripts' lists, METHOD.md
§7.1-7.3, and RobustNet's): the data of the contract. Each script runs under bash with a fake
``torchrun`` on PATH that only records its command line; the entry point's argv is then parsed
as the real entry point would and the namespaces compared.
"""

import os
import stat
import subprocess
import warnings
from pathlib import Path

import pytest

import cli
from config import REPO_ROOT
from tests.test_cli import OFFICIAL_TRAIN_ARGS

R50 = ("--arch network.deepv3.DeepR50V3PlusD --lr 0.01 --poly_exp 0.9 --max_cu_epoch 10000 "
       "--class_uniform_pct 0.5 --class_uniform_tile 1024 --crop_size 768 --scale_min 0.5 "
       "--scale_max 2.0 --rrotate 0 --max_iter 40000 --bs_mult 4 --gblur --color_aug 0.5")
BLINDNET = ("--wt_layer 0 0 1 1 1 0 0 --use_ca --use_cwcl --use_sdcl --nce_T 0.07 "
            "--contrast_max_classes 15 --contrast_max_views 50 --num_patch 20 "
            "--w1 0.2 --w2 0.2 --w3 0.3 --w4 0.3")
OFFICIAL_GTAV = " ".join(OFFICIAL_TRAIN_ARGS)  # the official script's list (METHOD.md §7.1)
ROBUSTNET_R50 = ("--arch network.deepv3.DeepR50V3PlusD --city_mode train --lr_schedule poly "
                 "--lr 0.01 --poly_exp 0.9 --max_cu_epoch 10000 --class_uniform_pct 0.5 "
                 "--class_uniform_tile 1024 --crop_size 768 --scale_min 0.5 --scale_max 2.0 "
                 "--rrotate 0 --max_iter 40000 --bs_mult 4 --gblur --color_aug 0.5 --date 0101 "
                 "--ckpt ./logs/ --tb_path ./logs/")
ROBUSTNET_DATA = {
    "gtav": "--dataset gtav --covstat_val_dataset gtav "
            "--val_dataset bdd100k cityscapes synthia mapillary",
    "cityscapes": "--dataset cityscapes --covstat_val_dataset cityscapes "
                  "--val_dataset bdd100k gtav synthia mapillary"}
ZERO_WT = "--wt_reg_weight 0.0 --relax_denom 0.0 --cov_stat_epoch 0"
# (method, source) -> (GPUs, port, the method's flags)
ROBUSTNET_METHODS = {
    ("baseline", "cityscapes"): (2, 29411, f"{ZERO_WT} --wt_layer 0 0 0 0 0 0 0 "
                                           "--exp r50os16_cty_base"),
    ("ibn", "gtav"): (4, 29412, f"{ZERO_WT} --wt_layer 0 0 4 4 4 0 0 --exp r50os16_gtav_ibn"),
    ("ibn", "cityscapes"): (2, 29413, f"{ZERO_WT} --wt_layer 0 0 4 4 4 0 0 "
                                      "--exp r50os16_cty_ibn"),
    ("iw", "gtav"): (4, 29414, "--wt_reg_weight 0.8 --relax_denom 0.0 --clusters 0 "
                               "--cov_stat_epoch 0 --trials 0 --wt_layer 0 0 1 1 1 0 0 "
                               "--exp r50os16_gtav_iw"),
    ("iw", "cityscapes"): (2, 29415, "--wt_reg_weight 0.6 --relax_denom 0.0 --clusters 0 "
                                     "--cov_stat_epoch 0 --trials 0 --wt_layer 0 0 1 1 1 0 0 "
                                     "--exp r50os16_cty_iw"),
    ("irw", "gtav"): (4, 29416, "--wt_reg_weight 0.6 --relax_denom 64.0 --clusters 0 "
                                "--cov_stat_epoch 0 --trials 0 --wt_layer 0 0 1 1 1 0 0 "
                                "--exp r50os16_gtav_irw"),
    ("irw", "cityscapes"): (2, 29417, "--wt_reg_weight 0.6 --relax_denom 32.0 --clusters 0 "
                                      "--cov_stat_epoch 0 --trials 0 --wt_layer 0 0 1 1 1 0 0 "
                                      "--exp r50os16_cty_irw"),
    ("isw", "gtav"): (4, 29418, "--wt_reg_weight 0.6 --relax_denom 0.0 --clusters 3 "
                                "--cov_stat_epoch 5 --trials 10 --wt_layer 0 0 2 2 2 0 0 "
                                "--exp r50os16_gtav_isw"),
    ("isw", "cityscapes"): (2, 29419, "--wt_reg_weight 0.6 --relax_denom 0.0 --clusters 2 "
                                      "--cov_stat_epoch 5 --trials 10 --wt_layer 0 0 2 2 2 0 0 "
                                      "--exp r50os16_cty_isw"),
    ("sw", "gtav"): (4, 29420, "--wt_layer 0 0 5 5 5 0 0 --exp r50os16_gtav_switchable"),
    ("sw", "cityscapes"): (2, 29421, "--wt_layer 0 0 5 5 5 0 0 --exp r50os16_cty_switchable"),
}
RN_VALID = ("--val_dataset cityscapes bdd100k mapillary synthia gtav "
            "--arch network.deepv3.DeepR50V3PlusD --wt_layer {} --date 0101 "
            "--exp r50os16_{}_valid --snapshot {{weights}}")
RN_WT = {"baseline": "0 0 0 0 0 0 0", "ibn": "0 0 4 4 4 0 0", "iw": "0 0 1 1 1 0 0",
         "irw": "0 0 1 1 1 0 0", "isw": "0 0 2 2 2 0 0", "sw": "0 0 5 5 5 0 0"}
INFER = ("--val_dataset cityscapes mapillary bdd-100k --arch network.deepv3.DeepR50V3PlusD "
         "--wt_layer 0 0 1 1 1 0 0 --mod blindnet --results {out} --date 0101 "
         "--exp blindnet_r50os16_gtav --snapshot {weights}")
# Rein's GTAV 512 recipe (docs/VFM_METHODS.md §3), written out as flags.
REIN = ("--arch network.vfm.ReinDinov2LMask2Former --dataset gtav --val_dataset cityscapes "
        "bdd100k mapillary --train_preset rein --crop_size 512 --class_uniform_pct 0.0 "
        "--optimizer adamw --lr 0.0001 --weight_decay 0.05 --lr_schedule poly --poly_exp 0.9 "
        "--max_iter 40000 --bs_mult 4 --m2f_cls_weight 2.0 --m2f_mask_weight 5.0 "
        "--m2f_dice_weight 5.0 --m2f_no_object_weight 0.1 --m2f_num_points 12544 "
        "--eval_protocol rein --val_every 10000 --save_every 4000 --seed 42 --date rein "
        "--exp rein_dinov2_l_mask2former_gtav")

# script -> (entry point, GPUs, master port, its flag list before configs/)
SCRIPTS = {
    "blindnet_train_r50os16_gtav": ("train", 2, 29400, OFFICIAL_GTAV),
    "blindnet_train_r50os16_gtav_torch12": (
        "train", 2, 29400,
        f"{OFFICIAL_GTAV} --norm_semantics torch1.2 --exp BlindNet_r50os16_gtav_torch12"),
    "blindnet_train_r50os16_cityscapes": (
        "train", 2, 29403, f"--dataset cityscapes_jitter --city_mode train --val_dataset bdd100k "
                           f"mapillary gtav {R50} {BLINDNET} --date 0326 "
                           f"--exp BlindNet_r50os16_cityscapes --ckpt ./logs/ --tb_path ./logs/"),
    "blindnet_train_r50os16_synthia": (
        "train", 2, 29402, f"--dataset synthia_jitter --val_dataset cityscapes bdd100k mapillary "
                           f"{R50} {BLINDNET} --date 0326 --exp BlindNet_r50os16_synthia "
                           f"--ckpt ./logs/ --tb_path ./logs/"),
    "baseline_train_r50os16_gtav": (
        "train", 2, 29404, f"--dataset gtav --val_dataset cityscapes bdd100k mapillary {R50} "
                           f"--wt_layer 0 0 0 0 0 0 0 --date 0326 --exp baseline_r50os16_gtav "
                           f"--ckpt ./logs/ --tb_path ./logs/"),
    **{f"{method}_train_r50os16_{source}": (
        "train", gpus, port, f"{ROBUSTNET_DATA[source]} {ROBUSTNET_R50} {flags}")
       for (method, source), (gpus, port, flags) in ROBUSTNET_METHODS.items()},
    "blindnet_valid_r50os16_gtav": (
        "valid", 1, 29400, "--val_dataset cityscapes bdd100k mapillary gtav "
                           "--arch network.deepv3.DeepR50V3PlusD --wt_layer 0 0 1 1 1 0 0 "
                           "--date 0101 --exp r50os16_gtav_blindnet --snapshot {weights}"),
    **{f"{method}_valid_r50os16": ("valid", 1, 29430, RN_VALID.format(wt, method))
       for method, wt in RN_WT.items()},
    "rein_train_dinov2_l_gtav": ("train", 1, 29440, REIN),
    # Issue 22's worked example, a new method (no list before configs/): written out here.
    "dsu_jsd_train_r50os16_gtav": (
        "train", 2, 29450, f"--dataset gtav_jitter --val_dataset cityscapes bdd100k mapillary "
                           f"{R50} --wt_layer 0 0 0 dsu dsu dsu dsu --w_jsd 12.0 --date 0101 "
                           f"--exp dsu_jsd_r50os16_gtav --ckpt ./logs/ --tb_path ./logs/"),
    "rein_valid_dinov2_l": (
        "valid", 1, 29441, "--arch network.vfm.ReinDinov2LMask2Former --val_dataset cityscapes "
                           "bdd100k mapillary --eval_protocol rein --date rein "
                           "--exp rein_dinov2_l_mask2former_gtav --snapshot {weights}"),
    "blindnet_infer_r50os16": ("infer", 1, 29401, INFER),
    "infer_r50os16_cty": ("infer", 1, 29401, INFER),
}
# Recorded by parse_args, not flags: which files were read.
BOOKKEEPING = ("config", "config_files")


@pytest.fixture(scope="module")
def fake_torchrun(tmp_path_factory):
    """A fake ``$PYTHON`` for scripts/_launch.sh: writes its arguments (``scripts/_launch.py``,
    the torchrun options, the entry point and its argv; NUL-separated) to
    ``$FAKE_TORCHRUN_OUT`` and exits."""
    folder = tmp_path_factory.mktemp("fake_bin")
    exe = folder / "python"
    exe.write_text('#!/usr/bin/env bash\nprintf \'%s\\0\' "$@" > "$FAKE_TORCHRUN_OUT"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def run_script(script, fake_torchrun, cwd, *extra):
    """``(torchrun options, entry point, its argv)`` that ``scripts/<script>.sh`` launches."""
    record = Path(cwd) / f"{script}.argv"
    positional = {"valid": ["w.pth"], "infer": ["w.pth", "out"]}.get(SCRIPTS[script][0], [])
    env = {**os.environ, "PYTHON": str(fake_torchrun), "FAKE_TORCHRUN_OUT": str(record)}
    env.pop("NGPU", None)
    env.pop("MASTER_PORT", None)
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / f"{script}.sh"), *positional,
                           *extra], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    words = record.read_bytes().decode().split("\0")[:-1]
    entry = next(i for i, word in enumerate(words)
                 if Path(word).name in ("train.py", "valid.py", "infer.py"))
    return words[:entry], Path(words[entry]).stem, words[entry + 1:]


def namespace(script, argv):
    """The settings ``<script>.py argv`` runs with (flags only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # official flags without effect warn, as they did
        args = vars(cli.parse_args(script, argv))
    return {key: value for key, value in args.items() if key not in BOOKKEEPING}


def torchrun_option(options, name):
    """The value of ``--name=V`` or ``--name V`` among torchrun's options."""
    for i, word in enumerate(options):
        if word.startswith(f"--{name}="):
            return word.split("=", 1)[1]
        if word == f"--{name}":
            return options[i + 1]
    raise AssertionError(f"torchrun got no --{name}: {options}")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_runs_its_config_with_the_settings_of_its_old_flag_list(script, fake_torchrun,
                                                                      tmp_path):
    entry, gpus, port, flags = SCRIPTS[script]
    options, entry_point, argv = run_script(script, fake_torchrun, tmp_path)
    assert entry_point == entry
    assert torchrun_option(options, "nproc_per_node") == str(gpus)
    assert torchrun_option(options, "master_port") == str(port)
    assert argv[0] == "--config" and Path(argv[1]).parent == REPO_ROOT / "configs"
    old = flags.format(weights=tmp_path / "w.pth", out=tmp_path / "out").split()
    assert namespace(entry, argv) == namespace(entry, old)


def test_the_official_recipe_file_is_the_official_flag_list():
    config = str(REPO_ROOT / "configs" / "blindnet_r50os16_gtav.toml")
    assert namespace("train", ["--config", config]) == namespace("train", OFFICIAL_GTAV.split())
    # and the comparison can fail: one setting away is another namespace
    assert namespace("train", ["--config", config, "--w4", "0.2"]) != namespace(
        "train", OFFICIAL_GTAV.split())


def test_extra_script_arguments_override_the_recipe(fake_torchrun, tmp_path):
    _, _, argv = run_script("isw_train_r50os16_gtav", fake_torchrun, tmp_path,
                            "--max_iter", "100", "--clusters", "2")
    settings = namespace("train", argv)
    assert (settings["max_iter"], settings["clusters"], settings["trials"]) == (100, 2, 10)


def test_every_recipe_file_is_run_by_a_script_or_inherited(fake_torchrun, tmp_path):
    """No orphan: each configs/*.toml is some script's recipe or another file's base."""
    import tomllib

    configs = REPO_ROOT / "configs"
    assert set(SCRIPTS) == {p.stem for p in (REPO_ROOT / "scripts").glob("[!_]*.sh")}
    run = {Path(run_script(script, fake_torchrun, tmp_path)[2][1]).stem for script in SCRIPTS}
    inherited = {Path(base).stem for path in configs.rglob("*.toml")
                 for base in tomllib.loads(path.read_text()).get("base", [])}
    assert {path.stem for path in configs.glob("*.toml")} - run - inherited == set()


# demo.py's train.py argv before configs/demo/ (default demo flags; gtav root /g, out /o).
DEMO_COMMON = ("--arch network.deepv3.DeepEffLite0V3PlusD --crop_size 128 --bs_mult 8 "
               "--max_iter 120 --lr 0.05 --seed 304 --scale_min 0.5 --scale_max 1.0 "
               "--class_uniform_pct 0.5 --class_uniform_tile 64 --num_workers 2 --device auto "
               "--gtav_dir /g --val_dataset --ckpt /o/ckpt --tb_path /o/tb --date demo "
               "--exp {method}_seed304 --save_every 120 --log_every 12 --cache_dir /o/cache ")
DEMO_METHODS = {
    "baseline": "--dataset gtav --wt_layer 0 0 0 0 0 0 0 --color_aug 0.5 --gblur",
    "ibn": "--dataset gtav --color_aug 0.5 --gblur --wt_layer 0 0 4 4 4 0 0",
    "iw": "--dataset gtav --color_aug 0.5 --gblur --wt_layer 0 0 1 1 1 0 0 "
          "--wt_reg_weight 0.8 --relax_denom 0.0",
    "irw": "--dataset gtav --color_aug 0.5 --gblur --wt_layer 0 0 1 1 1 0 0 "
           "--wt_reg_weight 0.6 --relax_denom 64.0",
    "isw": "--dataset gtav --color_aug 0.5 --gblur --wt_layer 0 0 2 2 2 0 0 "
           "--wt_reg_weight 0.6 --relax_denom 0.0 --clusters 3 --cov_stat_epoch 0 --trials 3 "
           "--covstat_images 100 --covstat_val_dataset gtav",
    "sw": "--dataset gtav --color_aug 0.5 --gblur --wt_layer 0 0 5 5 5 0 0",
    "blindnet": "--norm_semantics modern --dataset gtav_jitter --wt_layer 0 0 1 1 1 0 0 "
                "--color_aug 0.5 --gblur --use_ca --use_cwcl --use_sdcl --w1 0.2 --w2 0.2 "
                "--w3 0.3 --w4 0.3 --nce_T 0.07 --contrast_max_classes 15 "
                "--contrast_max_views 50 --num_patch 20",
}


@pytest.mark.parametrize("method", sorted(DEMO_METHODS))
def test_demo_trains_each_method_with_its_old_settings(method):
    import demo

    assert set(demo.METHODS) == set(DEMO_METHODS)
    argv = demo.train_argv(method, demo.parse_args([]), {"source": {"root": "/g"}}, Path("/o"))
    old = (DEMO_COMMON.format(method=method) + DEMO_METHODS[method]).split()
    assert namespace("train", argv) == namespace("train", old)
    assert argv[:2] == ["--config", str(REPO_ROOT / "configs" / "demo" / f"{method}.toml")]
