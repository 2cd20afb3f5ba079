"""demo.py --methods: every comparison row gets its RobustNet flags; defaults unchanged."""

import pytest

import cli
import demo
from loss import BlindNetCriterion


def _manifest():
    return {"source": {"root": "/data/source"}}


def test_default_methods_are_baseline_and_blindnet():
    assert demo.parse_args([]).methods == ["baseline", "blindnet"]


@pytest.mark.parametrize("method, expected", [
    ("ibn", {"wt_layer": [0, 0, 4, 4, 4, 0, 0], "wt_reg_weight": 0.0}),
    ("iw", {"wt_layer": [0, 0, 1, 1, 1, 0, 0], "wt_reg_weight": 0.8, "relax_denom": 0.0}),
    ("irw", {"wt_layer": [0, 0, 1, 1, 1, 0, 0], "wt_reg_weight": 0.6, "relax_denom": 64.0}),
    ("isw", {"wt_layer": [0, 0, 2, 2, 2, 0, 0], "wt_reg_weight": 0.6, "clusters": 3,
             "covstat_val_dataset": ["gtav"]}),
])
def test_each_method_parses_with_its_robustnet_flags(tmp_path, method, expected):
    args = demo.parse_args(["--methods", "baseline", method])
    argv = demo.train_argv(method, args, _manifest(), tmp_path)
    parsed = cli.parse_args("train", argv)
    assert parsed.dataset == ["gtav"] and parsed.gblur and parsed.color_aug == 0.5
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key
    whitening = BlindNetCriterion(**cli.criterion_kwargs(parsed)).whitening_loss
    mode = {"ibn": None, "iw": "iw", "irw": "iw", "isw": "isw"}[method]
    assert (whitening and whitening.mode) == mode
    if mode == "iw":
        assert whitening.relax_denom == expected["relax_denom"]


def test_sw_needs_a_resnet_and_methods_are_not_repeated(tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(["--methods", "baseline", "sw"])
    assert "ResNet" in capsys.readouterr().err
    args = demo.parse_args(["--methods", "sw", "--arch", "network.deepv3.DeepR18V3PlusD"])
    assert cli.parse_args("train", demo.train_argv("sw", args, _manifest(), tmp_path)).wt_layer \
        == [0, 0, 5, 5, 5, 0, 0]
    with pytest.raises(SystemExit):
        demo.parse_args(["--methods", "baseline", "baseline"])


def test_pretrained_reaches_every_training_run_and_defaults_to_none(tmp_path):
    for method in ("baseline", "blindnet"):
        default = demo.train_argv(method, demo.parse_args([]), _manifest(), tmp_path)
        assert "--pretrained" not in default  # EfficientNet-Lite0: its packaged weights
        args = demo.parse_args(["--arch", "network.deepv3.DeepR18V3PlusD", "--pretrained", "none"])
        parsed = cli.parse_args("train", demo.train_argv(method, args, _manifest(), tmp_path))
        assert parsed.pretrained is False  # a random trunk, on purpose


def test_difference_column_names_the_two_methods():
    results = {"source": {"baseline": {"miou": 0.2}, "isw": {"miou": 0.25}},
               "fog": {"baseline": {"miou": 0.1}, "isw": {"miou": 0.2}}}
    table = demo.summary_table(results, ["baseline", "isw"])
    assert "ISW − baseline" in table and "+10.0" in table


def test_demo_seeds_reports_every_method(monkeypatch):
    from config import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))
    import demo_seeds

    runs = {seed: {"source": {"baseline": 0.3, "ibn": 0.32, "isw": 0.31 + seed / 100},
                   "fog": {"baseline": 0.1, "ibn": 0.15, "isw": 0.2}} for seed in (1, 2)}
    table = demo_seeds.aggregate(runs)
    assert list(table["source"]) == ["baseline", "ibn", "isw"]
    assert table["source"]["isw"][2] == pytest.approx([32.0, 33.0])
    assert "| domain | baseline | ibn | isw |" in demo_seeds.markdown(table, [1, 2])
