"""``--config FILE``: TOML keys are flags, ``base`` inherits, the command line wins, and every
value passes the flag's own checks; a bad file, key or value exits 2 naming the file and key."""

import json
import warnings

import pytest

import cli
from cli.config_files import BASE_KEY


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def parse(script, argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cli.parse_args(script, [str(a) for a in argv])


def flags_only(args):
    return {k: v for k, v in vars(args).items() if k not in ("config", "config_files")}


def fails(script, argv, capsys):
    """The ``<script>.py: error:`` line of a parse that must exit 2."""
    with pytest.raises(SystemExit) as excinfo:
        parse(script, argv)
    assert excinfo.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_file_sets_what_the_same_flags_set(tmp_path):
    config = write(tmp_path, "r.toml", 'dataset = ["gtav_jitter"]\ncrop_size = 512\n'
                   'wt_layer = [0, 0, 1, 1, 1, 0, 0]\ngblur = true\nlr = 0.05\nexp = "e"\n'
                   'val_dataset = []\ncontrast_max_view = 40\nlocal-rank = 3\n'
                   'pretrained = "none"\n')
    flags = ("--dataset gtav_jitter --crop_size 512 --wt_layer 0 0 1 1 1 0 0 --gblur --lr 0.05 "
             "--exp e --val_dataset --contrast_max_view 40 --local-rank 3 --pretrained none")
    from_file = parse("train", ["--config", config])
    assert flags_only(from_file) == flags_only(parse("train", flags.split()))
    assert from_file.pretrained is False and from_file.contrast_max_views == 40
    assert from_file.config == [str(config)] and from_file.config_files == [str(config)]


def test_bases_then_the_file_then_the_command_line(tmp_path):
    write(tmp_path, "_base/a.toml", "crop_size = 100\nlr = 0.1\nmax_iter = 10\n")
    write(tmp_path, "_base/b.toml", 'base = ["a.toml"]\nlr = 0.2\nexp = "b"\n')
    write(tmp_path, "methods/m.toml", "lr = 0.3\nw1 = 0.5\n")
    leaf = write(tmp_path, "leaf.toml", 'base = ["_base/b.toml", "methods/m.toml"]\n'
                                        'max_iter = 20\n')
    args = parse("train", ["--config", leaf, "--max_iter", "30"])
    assert (args.crop_size, args.lr, args.exp, args.w1, args.max_iter) == (100, 0.3, "b", 0.5, 30)
    assert args.config_files == [str(tmp_path / p) for p in (
        "_base/a.toml", "_base/b.toml", "methods/m.toml", "leaf.toml")]


def test_a_shared_base_is_applied_once(tmp_path):
    """Diamond: c.toml is the base of a.toml and b.toml; a.toml's lr stays (c comes first)."""
    write(tmp_path, "c.toml", "lr = 0.1\ncrop_size = 100\n")
    write(tmp_path, "a.toml", 'base = ["c.toml"]\nlr = 0.2\n')
    write(tmp_path, "b.toml", 'base = ["c.toml"]\ncrop_size = 200\n')
    top = write(tmp_path, "top.toml", 'base = ["a.toml", "b.toml"]\n')
    args = parse("train", ["--config", top])
    assert (args.lr, args.crop_size) == (0.2, 200)
    assert [p.rsplit("/", 1)[1] for p in args.config_files] == [
        "c.toml", "a.toml", "b.toml", "top.toml"]


def test_several_config_options_apply_left_to_right(tmp_path):
    recipe = write(tmp_path, "recipe.toml", 'lr = 0.1\nexp = "recipe"\n')
    local = write(tmp_path, "local.toml", 'gtav_dir = "/data/gtav"\nexp = "mine"\n')
    args = parse("valid", ["--config", recipe, "--config", local])
    assert (args.lr, args.exp, args.gtav_dir) == (0.1, "mine", "/data/gtav")


def test_a_switch_can_be_turned_back_off_by_a_later_file(tmp_path):
    write(tmp_path, "on.toml", "gblur = true\nuse_ca = true\n")
    off = write(tmp_path, "off.toml", 'base = ["on.toml"]\ngblur = false\n')
    args = parse("train", ["--config", off])
    assert args.gblur is False and args.use_ca is True


def test_a_config_cannot_bypass_the_flag_checks(tmp_path, capsys):
    config = write(tmp_path, "r.toml", "class_uniform_pct = 1.5\n")
    assert "--class_uniform_pct" in fails("train", ["--config", config], capsys)
    config = write(tmp_path, "s.toml", 'use_sdcl = true\nnum_patch = 1\n')
    assert "--num_patch >= 2, got 0.07, 1" in fails("train", ["--config", config], capsys)


@pytest.mark.parametrize("text, message", [
    ("crop_sizee = 5\n", "unknown key 'crop_sizee': not a flag of train.py; did you mean "
                         "crop_size?"),
    ("crop-size = 5\n", "unknown key 'crop-size'"),
    ('crop_size = "abc"\n', "crop_size: argument --crop_size: invalid int value: 'abc'"),
    ("crop_size = 7.5\n", "crop_size: argument --crop_size: invalid int value: '7.5'"),
    ('city_mode = "val"\n', "city_mode: argument --city_mode: invalid choice: 'val'"),
    ("wt_layer = [0, 0, 1]\n", "wt_layer: argument --wt_layer: expected 7 arguments"),
    ('dataset = "gtav"\n', "dataset: expected a list (as --dataset takes several values)"),
    ("crop_size = [5]\n", "crop_size: expected one value, not a list"),
    ('gblur = "yes"\n', "gblur: expected true or false (a switch), got 'yes'"),
    ("exp = true\n", "exp: expected a string or a number, got True"),
    ("syncbn = false\n", "syncbn: --syncbn can only be switched to True"),
    ("contrast_max_view = 5\ncontrast_max_views = 6\n",
     "contrast_max_view and contrast_max_views set the same flag --contrast_max_views"),
    ('config = "other.toml"\n', 'names the files it inherits from with base = ["..."]'),
    ('base = "other.toml"\n', "base must be a list of file names"),
    ('base = ["missing.toml"]\n', "base: no such file: missing.toml"),
    ("crop_size = \n", "not valid TOML"),
    ("[train]\ncrop_size = 5\n", "[train]: tables are not read; write the flags as top-level"),
])
def test_bad_files_exit_2_naming_the_file_and_key(text, message, tmp_path, capsys):
    config = write(tmp_path, "bad.toml", text)
    line = fails("train", ["--config", config], capsys)
    assert line.startswith(f"train.py: error: {config}: ") and message in line, line


def test_a_key_of_a_base_is_named_with_the_base(tmp_path, capsys):
    write(tmp_path, "_base/a.toml", "max_iter = -1.5\n")
    leaf = write(tmp_path, "leaf.toml", 'base = ["_base/a.toml"]\nmax_iter = 10\n')
    line = fails("train", ["--config", leaf], capsys)
    assert f"{tmp_path / '_base' / 'a.toml'}: max_iter: argument --max_iter" in line


def test_a_cycle_is_named(tmp_path, capsys):
    write(tmp_path, "a.toml", 'base = ["b.toml"]\n')
    write(tmp_path, "b.toml", 'base = ["a.toml"]\n')
    line = fails("train", ["--config", tmp_path / "a.toml"], capsys)
    assert "inheritance cycle: " in line
    assert line.endswith(f"{tmp_path / 'a.toml'} -> {tmp_path / 'b.toml'} -> {tmp_path / 'a.toml'}")
    assert "inheritance cycle" in fails(
        "train", ["--config", write(tmp_path, "self.toml", 'base = ["self.toml"]\n')], capsys)


def test_a_missing_config_file_is_named(tmp_path, capsys):
    assert f"--config: no such file: {tmp_path / 'none.toml'}" in fails(
        "infer", ["--config", tmp_path / "none.toml"], capsys)


def test_the_reserved_keys_are_no_flags():
    dests = {action.dest for action in cli.build_parser("train")._actions}
    assert BASE_KEY not in dests
    option_strings = {s for a in cli.build_parser("train")._actions for s in a.option_strings}
    assert f"--{BASE_KEY}" not in option_strings


def test_a_flag_added_to_the_parser_is_a_key_at_once(tmp_path, monkeypatch):
    """Generic over the parser: flags other modules add need nothing here."""
    from cli import parser as parser_module

    build = parser_module.build_parser

    def with_new_flag(script="train"):
        parser = build(script)
        parser.add_argument("--photometric_new", type=float, default=0.0)
        return parser

    monkeypatch.setattr(parser_module, "build_parser", with_new_flag)
    config = write(tmp_path, "r.toml", "photometric_new = 0.25\n")
    assert parser_module.parse_args("train", ["--config", str(config)]).photometric_new == 0.25


def test_args_json_and_checkpoints_record_the_files_and_the_settings(tmp_path):
    """train.py's run folder (open_run: args.json) and a checkpoint it saves."""
    import torch

    import train
    from engine import checkpointing
    from engine.trainer import new_train_state
    from utils import dist as dist_utils
    from utils.checkpoint import load_checkpoint

    base = write(tmp_path, "cfg/_base/tiny.toml", "crop_size = 64\nmax_iter = 3\n")
    leaf = write(tmp_path, "cfg/run.toml", 'base = ["_base/tiny.toml"]\ndate = "d"\nexp = "e"\n')
    argv = ["--config", str(leaf), "--ckpt", str(tmp_path / "ckpt"), "--lr", "0.02"]
    args = parse("train", argv)
    run = train.open_run(args, argv, dist_utils.init_distributed("cpu"))
    run.close()  # releases the run folder's lock
    config = run.config
    recorded = json.loads((config.run_dir / "args.json").read_text())
    assert recorded["config_files"] == [str(base), str(leaf)]
    assert (recorded["crop_size"], recorded["max_iter"], recorded["lr"]) == (64, 3, 0.02)
    state = new_train_state(torch.nn.Linear(2, 2), cli.optim_config(args),
                            device=torch.device("cpu"))
    checkpointing.save(state, config.run_dir / "last.pth", config.record)
    ckpt = load_checkpoint(config.run_dir / "last.pth")
    assert ckpt["config_files"] == [str(base), str(leaf)]
    assert ckpt["command"] == " ".join(argv)
    assert ckpt["args"]["crop_size"] == 64 and ckpt["args"]["config"] == [str(leaf)]
