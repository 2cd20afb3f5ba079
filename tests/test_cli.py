"""The one command-line module: every official flag, bad values named, converters to plain
values (nothing below the entry points sees the namespace)."""

import warnings
from pathlib import Path

import pytest

import cli
from cli import IGNORED_FLAGS, build_parser, parse_args

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
    (["--wt_layer", "0", "0", "6", "0", "0", "0", "0"], "--wt_layer"),
    (["--wt_layer", "0", "0", "1"], "--wt_layer"),
    (["--class_uniform_pct", "1.5"], "--class_uniform_pct"),
    (["--use_cwcl", "--nce_T", "0"], "--nce_T"),
    (["--use_sdcl", "--num_patch", "1"], "--num_patch"),
    (["--crop_size", "0"], "--crop_size"),
    (["--lr_schedule", "scl-poly"], "scl-poly"),
    (["--amp", "fp8"], "--amp"),
    (["--not_a_flag"], "unrecognized arguments"),
    (["--max_val_images", "0"], "--max_val_images must be a positive integer"),
    (["--val_every", "-1"], "--val_every must be a positive integer"),
    (["--stop_at", "0"], "--stop_at must be a positive integer"),
    (["--stride", "-8"], "--stride must be a positive integer"),
    (["--num_workers", "-1"], "--num_workers must be >= 0"),
])
def test_bad_values_fail_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args("train", argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("script", ["train", "valid", "infer"])
@pytest.mark.parametrize("flag", ["--dataset", "--val_dataset", "--covstat_val_dataset"])
def test_unknown_dataset_names_fail_at_parse_time(script, flag, capsys):
    # A typo used to surface as a traceback only after the training data were prepared
    # (train.py) or the checkpoint was loaded (valid.py / infer.py).
    with pytest.raises(SystemExit) as excinfo:
        parse_args(script, [flag, "cityscapes", "mapilary"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag}: unknown dataset 'mapilary'" in err and "mapillary" in err


def test_infer_needs_something_to_run_on(capsys):
    with pytest.raises(SystemExit):
        parse_args("infer", ["--val_dataset"])
    assert "--images" in capsys.readouterr().err


def test_dataset_root_flags():
    args, _ = _parse_quiet("train", ["--gtav_dir", "/g", "--bdd_dir", "/b"])
    roots = cli.root_overrides(args)
    assert roots["gtav"] == "/g" and roots["bdd100k"] == "/b" and roots["synthia"] is None


def test_root_flags_are_generated_from_the_dataset_registry():
    import datasets

    dests = {action.dest for action in build_parser("valid")._actions}
    flags = datasets.root_flags()
    assert {flag for flag, _, _ in flags} == {"--gtav_dir", "--synthia_dir", "--cityscapes_dir",
                                             "--bdd_dir", "--mapillary_dir", "--acdc_dir",
                                             "--dark_zurich_dir", "--foggy_cityscapes_dir"}
    assert {flag.lstrip("-") for flag, _, _ in flags} <= dests
    assert set(cli.root_overrides(parse_args("valid", []))) == set(datasets.DATASET_CLASSES)


def test_syncbn_is_listed_as_ignored_with_its_reason():
    assert "SyncBatchNorm" in IGNORED_FLAGS["syncbn"]
    _, warned = _parse_quiet("train", ["--syncbn"])  # its only value is the default
    assert warned == []


def test_dataset_options_and_cache_dir(tmp_path):
    import datasets

    args, _ = _parse_quiet("train", ["--crop_size", "512", "--class_uniform_pct", "0.5",
                                     "--gblur", "--eval_protocol", "blindnet",
                                     "--ckpt", str(tmp_path)])
    options = cli.dataset_options(args)
    assert options["crop_size"] == 512 and options["class_uniform_pct"] == 0.5
    assert options["gblur"] is True and options["eval_protocol"] == "blindnet"
    assert options["seed"] == 304
    assert options["cache_dir"] == tmp_path / "cache"  # default <--ckpt>/cache (D5)
    assert "max_images" not in options
    assert set(options) <= set(datasets.DEFAULT_OPTIONS)
    args, _ = _parse_quiet("valid", ["--cache_dir", "/c", "--eval_protocol", "clean"])
    assert cli.eval_dataset_options(args) == {"eval_protocol": "clean", "gtav_mismatch": "drop",
                                              "cache_dir": "/c", "foggy_beta": 0.02}


def test_criterion_kwargs_build_the_criterion():
    from loss import BlindNetCriterion

    args, _ = _parse_quiet("train", OFFICIAL_TRAIN_ARGS)
    kwargs = cli.criterion_kwargs(args)
    assert kwargs["contrast_max_views"] == 50 and kwargs["w4"] == 0.3 and kwargs["use_sdcl"]
    criterion = BlindNetCriterion(**kwargs)
    assert criterion.needs_two_views and criterion.needs_embeddings


def test_engine_configs_and_the_recorded_command():
    argv = ["--max_iter", "7", "--stop_at", "3", "--lr", "0.05", "--exp", "e", "--date", "d",
            "--ckpt", "/runs", "--use_cwcl"]
    args, _ = _parse_quiet("train", argv)
    fit = cli.fit_config(args, argv)
    assert fit.run_dir == Path("/runs/d/e") and (fit.max_iter, fit.stop_at) == (7, 3)
    assert fit.record.command == " ".join(argv)  # the real command, not sys.argv
    assert fit.record.flags["lr"] == 0.05 and fit.record.norm_semantics == "modern"
    assert cli.optim_config(args).lr == 0.05
    step = cli.step_config(args, two_view=True, with_embeddings=False)
    assert step.two_view and not step.with_embeddings and step.amp == "off"
    assert cli.tb_logdir(args) == Path("logs/tb/d/e")


def test_train_defaults_are_resolved():
    args, _ = _parse_quiet("train", ["--test_mode", "--max_iter", "100"])
    assert (args.max_iter, args.max_val_images, args.num_workers) == (4, 2, 1)
    assert args.norm_semantics == "modern"
    args, _ = _parse_quiet("valid", [])
    assert args.norm_semantics is None and args.num_workers is None  # valid: the checkpoint's


def _help(script, capsys):
    with pytest.raises(SystemExit) as excinfo:
        build_parser(script).parse_args(["--help"])
    assert excinfo.value.code == 0
    return capsys.readouterr().out


EVAL_SHOWN = ("--val_dataset", "--arch", "--wt_layer", "--snapshot", "--snapshot_partial",
              "--local_rank", "--eval_protocol", "--norm_semantics", "--cityscapes_dir")
TRAIN_ONLY = ("--use_cwcl", "--contrast_max_views", "--lr", "--max_iter", "--resume",
              "--wt_reg_weight", "--jit_only", "--class_uniform_pct")


def test_train_help_lists_every_official_flag(capsys):
    out = _help("train", capsys)
    for flag in EVAL_SHOWN + TRAIN_ONLY[:-2]:  # --jit_only: a suppressed legacy flag
        assert flag in out


@pytest.mark.parametrize("script, own", [("valid", ("--corruptions", "--num_workers")),
                                         ("infer", ("--images", "--overlay", "--results"))])
def test_eval_help_shows_only_its_own_flags(script, own, capsys):
    out = _help(script, capsys)
    for flag in EVAL_SHOWN + own:
        assert flag in out, flag
    for flag in TRAIN_ONLY:
        assert f"{flag} " not in out and f"{flag}\n" not in out, flag
    assert len(out.splitlines()) < 160  # was 281 lines of training flags


def test_train_flags_given_to_valid_are_accepted_and_warned_about():
    args, warned = _parse_quiet("valid", ["--lr", "0.5", "--crop_size", "64"])
    assert args.lr == 0.5
    assert warned == ["--lr has no effect in valid.py: train.py read(s) it"]


def test_a_launcher_scripts_own_flags_do_not_warn(monkeypatch):
    from cli.parser import SCRIPT_ARGC_ENV, user_given_flags

    parser = build_parser("train")
    argv = ["--jit_only", "--relax_denom", "0.0", "--max_iter", "5", "--alpha", "1"]
    assert user_given_flags(parser, argv, {SCRIPT_ARGC_ENV: "3"}) == {"max_iter", "alpha"}
    assert user_given_flags(parser, argv, {}) is None
    monkeypatch.setattr("sys.argv", ["train.py", *argv])
    monkeypatch.setenv(SCRIPT_ARGC_ENV, "3")
    _, warned = _parse_quiet("train", None)
    assert len(warned) == 1 and warned[0].startswith("--alpha is accepted")
    monkeypatch.setenv("RANK", "1")  # other ranks print nothing
    assert _parse_quiet("train", None)[1] == []


@pytest.mark.parametrize("names", [["bdd100k", "bdd-100k"], ["cityscapes", "gtav", "cityscapes"]])
def test_a_dataset_named_twice_in_val_dataset_fails_naming_the_flag(names, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_args("valid", ["--val_dataset", *names])
    assert excinfo.value.code == 2
    assert "--val_dataset names" in capsys.readouterr().err
    assert parse_args("valid", ["--val_dataset", "bdd100k", "cityscapes"]).val_dataset == [
        "bdd100k", "cityscapes"]


def test_pretrained_none_means_a_deliberate_random_trunk():
    assert cli.parse_args("train", ["--pretrained", "none"]).pretrained is False
    assert cli.parse_args("train", ["--pretrained", "w.pth"]).pretrained == "w.pth"
    assert cli.parse_args("train", []).pretrained is None
