import warnings

import pytest

from utils.args import IGNORED_FLAGS, build_parser, dataset_root_overrides, parse_args

# The exact flag lists of the official scripts (METHOD.md §7.1-7.3).
OFFICIAL_TRAIN_ARGS = (
    "--dataset gtav_jitter --covstat_val_dataset gtav --val_dataset cityscapes bdd100k mapillary "
    "--arch network.deepv3.DeepR50V3PlusD --city_mode train --lr_schedule poly --lr 0.01 "
    "--poly_exp 0.9 --max_cu_epoch 10000 --class_uniform_pct 0.5 --class_uniform_tile 1024 "
    "--crop_size 768 --scale_min 0.5 --scale_max 2.0 --rrotate 0 --max_iter 40000 --bs_mult 4 "
    "--gblur --color_aug 0.5 --relax_denom 0.0 --wt_layer 0 0 1 1 1 0 0 --use_ca --use_cwcl "
    "--nce_T 0.07 --contrast_max_classes 15 --contrast_max_view 50 --jit_only --use_sdcl "
    "--w1 0.2 --w2 0.2 --w3 0.3 --w4 0.3 --num_patch 20 --date 0326 "
    "--exp BlindNet_r50os16_gtav --ckpt ./logs/ --tb_path ./logs/").split()
OFFICIAL_VALID_ARGS = (
    "--val_dataset cityscapes bdd100k mapillary gtav --arch network.deepv3.DeepR50V3PlusD "
    "--wt_layer 0 0 1 1 1 0 0 --date 0101 --exp r50os16_gtav_blindnet "
    "--snapshot weights.pth").split()
OFFICIAL_INFER_ARGS = (
    "--val_dataset cityscapes mapillary bdd-100k --arch network.deepv3.DeepR50V3PlusD "
    "--wt_layer 0 0 1 1 1 0 0 --mod blindnet --results out_dir --date 0101 "
    "--exp blindnet_r50os16_gtav --snapshot weights.pth").split()


def _parse_quiet(script, argv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = parse_args(script, argv)
    return args, [str(w.message) for w in caught]


def test_official_train_flags():
    args, warned = _parse_quiet("train", OFFICIAL_TRAIN_ARGS)
    assert args.dataset == ["gtav_jitter"]
    assert args.val_dataset == ["cityscapes", "bdd100k", "mapillary"]
    assert args.arch == "network.deepv3.DeepR50V3PlusD"
    assert args.wt_layer == [0, 0, 1, 1, 1, 0, 0]
    assert args.contrast_max_views == 50  # the script's --contrast_max_view spelling
    assert (args.w1, args.w2, args.w3, args.w4) == (0.2, 0.2, 0.3, 0.3)
    assert args.use_ca and args.use_cwcl and args.use_sdcl and args.gblur
    assert (args.crop_size, args.bs_mult, args.max_iter) == (768, 4, 40000)
    assert (args.class_uniform_pct, args.max_cu_epoch, args.num_patch) == (0.5, 10000, 20)
    assert (args.date, args.exp, args.ckpt, args.tb_path) == (
        "0326", "BlindNet_r50os16_gtav", "./logs/", "./logs/")
    # Official flags without effect here are reported, never dropped silently.
    assert any("--covstat_val_dataset" in w for w in warned)
    assert any("--relax_denom" in w for w in warned)
    assert any("--jit_only" in w for w in warned)


def test_official_valid_flags():
    args, _ = _parse_quiet("valid", OFFICIAL_VALID_ARGS)
    assert args.val_dataset == ["cityscapes", "bdd100k", "mapillary", "gtav"]
    assert args.snapshot == "weights.pth"
    assert (args.date, args.exp) == ("0101", "r50os16_gtav_blindnet")


def test_official_infer_flags():
    args, _ = _parse_quiet("infer", OFFICIAL_INFER_ARGS)
    assert args.val_dataset == ["cityscapes", "mapillary", "bdd-100k"]
    assert (args.mod, args.results, args.snapshot) == ("blindnet", "out_dir", "weights.pth")


@pytest.mark.parametrize("flag", ["--local_rank", "--local-rank"])
def test_both_local_rank_spellings(flag):
    args, _ = _parse_quiet("train", [flag, "3"])
    assert args.local_rank == 3


def test_defaults_without_flags_do_not_warn():
    args, warned = _parse_quiet("train", [])
    assert warned == []
    assert args.eval_protocol == "robustnet" and args.cwcl_negatives == "reference"
    assert args.weight_decay == 5e-4 and args.amp == "off" and args.seed == 304


def test_every_ignored_flag_exists_in_parser():
    parser = build_parser("train")
    dests = {action.dest for action in parser._actions}
    assert set(IGNORED_FLAGS) <= dests


@pytest.mark.parametrize("argv,message", [
    (["--wt_layer", "0", "0", "5", "0", "0", "0", "0"], "--wt_layer"),
    (["--wt_layer", "0", "0", "1"], "--wt_layer"),
    (["--class_uniform_pct", "1.5"], "--class_uniform_pct"),
    (["--use_cwcl", "--nce_T", "0"], "--nce_T"),
    (["--use_sdcl", "--num_patch", "1"], "--num_patch"),
    (["--crop_size", "0"], "--crop_size"),
    (["--lr_schedule", "scl-poly"], "scl-poly"),
    (["--amp", "fp8"], "--amp"),
    (["--not_a_flag"], "unrecognized arguments"),
])
def test_bad_values_fail_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args("train", argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_infer_needs_something_to_run_on(capsys):
    with pytest.raises(SystemExit):
        parse_args("infer", ["--val_dataset"])
    assert "--images" in capsys.readouterr().err


def test_dataset_root_flags():
    args, _ = _parse_quiet("train", ["--gtav_dir", "/g", "--bdd_dir", "/b"])
    roots = dataset_root_overrides(args)
    assert roots["gtav"] == "/g" and roots["bdd100k"] == "/b" and roots["synthia"] is None


@pytest.mark.parametrize("script", ["train", "valid", "infer"])
def test_help_lists_official_flags(script, capsys):
    with pytest.raises(SystemExit) as excinfo:
        build_parser(script).parse_args(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--val_dataset", "--arch", "--wt_layer", "--snapshot", "--use_cwcl",
                 "--contrast_max_views", "--local_rank", "--eval_protocol"):
        assert flag in out
