"""valid.py's issue-13 evaluation: adverse targets, TTA, corruptions, results.json additions."""

import json
import subprocess
import sys

import pytest
import torch

import valid
from config import REPO_ROOT
from tests.generated_adverse import generate_adverse_dataset
from tools import results_table

ARCH = "network.deepv3.DeepR18V3PlusD"
WT = ["0", "0", "1", "1", "1", "0", "0"]


@pytest.fixture(scope="module")
def adverse_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("adverse_roots")
    roots = {}
    for seed, name in enumerate(("acdc", "dark_zurich", "foggy_cityscapes")):
        roots[name] = base / name
        generate_adverse_dataset(name, roots[name], num_images=1, size=(64, 96), seed=seed,
                                 splits=("val",))
    return roots


@pytest.fixture
def adverse_env(adverse_roots, data_env, monkeypatch):
    env = {"BLINDNET_ACDC_DIR": adverse_roots["acdc"],
           "BLINDNET_DARK_ZURICH_DIR": adverse_roots["dark_zurich"],
           "BLINDNET_FOGGY_CITYSCAPES_DIR": adverse_roots["foggy_cityscapes"]}
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return {**data_env, **{k: str(v) for k, v in env.items()}}


def _snapshot(folder, exp="blindnet_seed304", seed=304, dataset=("gtav_jitter",), init=0):
    """A random R18 checkpoint as train.py writes it (weights + training arguments)."""
    import network

    torch.manual_seed(init)
    model = network.get_net(ARCH, 19, [int(w) for w in WT], pretrained=False)
    path = folder / f"{exp}_{init}.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "iteration": 7, "args": {"exp": exp, "seed": seed, "dataset": list(dataset),
                                         "date": "0326", "arch": ARCH}}, path)
    return path


def _run(tmp_path, snapshot, *extra, exp="e"):
    argv = ["--arch", ARCH, "--wt_layer", *WT, "--snapshot", str(snapshot), "--ckpt",
            str(tmp_path / "logs"), "--date", "d", "--exp", exp, "--num_workers", "0", *extra]
    results = valid.main(argv)
    out = tmp_path / "logs" / "d" / exp
    return results, json.loads((out / "results.json").read_text()), out


def test_adverse_targets_and_the_mean_over_targets(adverse_env, tmp_path):
    _, saved, out = _run(tmp_path, _snapshot(tmp_path), "--val_dataset", "acdc", "acdc_night",
                         "dark_zurich", "foggy_cityscapes", "gtav", "--foggy_beta", "0.01")
    data = saved["datasets"]
    assert data["acdc"]["images"] == 4 and data["acdc_night"]["images"] == 1
    assert data["dark_zurich"]["images"] == 1 and data["foggy_cityscapes"]["images"] == 1
    assert data["foggy_cityscapes"]["foggy_beta"] == 0.01
    mean = saved["mean_over_targets"]
    assert mean["targets"] == ["acdc", "acdc_night", "dark_zurich", "foggy_cityscapes"]
    expected = sum(data[t]["miou"] for t in mean["targets"]) / 4
    assert mean["miou"] == pytest.approx(expected)
    assert saved["training_run"] == {"exp": "blindnet_seed304", "date": "0326", "seed": 304,
                                     "dataset": ["gtav_jitter"], "arch": ARCH, "iteration": 7}
    assert saved["tta"] == {"name": "single-scale", "scales": [1.0], "flip": False}
    assert "miou_16" not in data["acdc"]  # not a SYNTHIA source
    assert "mean mIoU over the targets" in (out / "results.md").read_text()


def test_synthia_source_gets_the_16_and_13_class_miou(data_env, tmp_path):
    snapshot = _snapshot(tmp_path, dataset=("synthia_jitter",))
    _, saved, _ = _run(tmp_path, snapshot, "--val_dataset", "cityscapes", "synthia",
                       "--max_val_images", "2")
    city = saved["datasets"]["cityscapes"]
    from datasets.synthia import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
    for key, classes in (("miou_16", SYNTHIA_16_CLASSES), ("miou_13", SYNTHIA_13_CLASSES)):
        values = [city["iou_per_class"][c] for c in classes
                  if city["iou_per_class"][c] is not None]
        assert city[key] == pytest.approx(sum(values) / len(values))
    assert saved["mean_over_targets"]["targets"] == ["cityscapes"]
    assert saved["mean_over_targets"]["miou_16"] == pytest.approx(city["miou_16"])


def test_one_scale_without_flip_is_the_default_exactly(data_env, tmp_path):
    snapshot = _snapshot(tmp_path)
    default, _, _ = _run(tmp_path, snapshot, "--val_dataset", "cityscapes", exp="a")
    one, saved, _ = _run(tmp_path, snapshot, "--val_dataset", "cityscapes", "--eval_scales",
                         "1.0", exp="b")
    assert one["cityscapes"]["hist"] == default["cityscapes"]["hist"]
    assert one["cityscapes"]["val_loss"] == default["cityscapes"]["val_loss"]
    tta, saved, _ = _run(tmp_path, snapshot, "--val_dataset", "cityscapes", "--eval_scales",
                         "0.75", "1.0", "--eval_flip", "--sliding_window", "--crop_size", "64",
                         exp="c")
    assert saved["tta"] == {"name": "ms(0.75,1)+flip", "scales": [0.75, 1.0], "flip": True}
    assert sum(map(sum, tta["cityscapes"]["hist"])) == sum(map(sum, default["cityscapes"]["hist"]))


def test_corruption_sweep_in_results_json(data_env, tmp_path):
    snapshot = _snapshot(tmp_path)
    args = ("--val_dataset", "cityscapes", "--max_val_images", "2", "--corruptions",
            "gaussian_noise", "defocus_blur", "--severities", "0", "2", "5")
    _, first, out = _run(tmp_path, snapshot, *args, exp="a")
    _, second, _ = _run(tmp_path, snapshot, *args, exp="b")
    sweep = first["datasets"]["cityscapes"]["corruptions"]
    assert sweep == second["datasets"]["cityscapes"]["corruptions"]  # reproducible
    clean = first["datasets"]["cityscapes"]["miou"]
    assert sweep["clean_miou"] == clean
    for name in ("gaussian_noise", "defocus_blur"):
        per = sweep["corruptions"][name]["per_severity"]
        assert per["0"] == clean  # severity 0 is the clean image
        assert sweep["corruptions"][name]["miou"] == pytest.approx((per["2"] + per["5"]) / 2)
    mean = sum(c["miou"] for c in sweep["corruptions"].values()) / 2
    assert sweep["mpc"] == pytest.approx(mean)
    assert sweep["relative_robustness"] == pytest.approx(sweep["mpc"] / clean)
    assert "cityscapes: corruptions" in (out / "results.md").read_text()


def test_results_table_from_valid_runs(data_env, tmp_path):
    outs = []
    for exp, seed, init in (("baseline_seed1", 1, 1), ("baseline_seed2", 2, 2),
                            ("blindnet_seed1", 1, 3)):
        _, _, out = _run(tmp_path, _snapshot(tmp_path, exp=exp, seed=seed, init=init),
                         "--val_dataset", "cityscapes", "bdd100k", "--max_val_images", "1",
                         exp=f"eval_{exp}")
        outs.append(out)
    table = results_table.build_table([results_table.load_run(o) for o in outs])
    assert [(r["method"], r["seeds"]) for r in table["rows"]] == [("baseline", [1, 2]),
                                                                   ("blindnet", [1])]
    runs = [json.loads((o / "results.json").read_text()) for o in outs[:2]]
    city = [100 * r["datasets"]["cityscapes"]["miou"] for r in runs]
    assert table["rows"][0]["cells"]["cityscapes"][0] == pytest.approx(sum(city) / 2)


def test_layout_error_of_a_missing_target_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDNET_ACDC_DIR", str(tmp_path / "no_acdc"))
    with pytest.raises(SystemExit) as error:
        _run(tmp_path, _snapshot(tmp_path), "--val_dataset", "acdc_fog")
    message = str(error.value)
    assert "does not exist" in message and "rgb_anon/{fog,night,rain,snow}" in message
    assert "--acdc_dir" in message and "BLINDNET_ACDC_DIR" in message


@pytest.mark.parametrize("script, flags, message", [
    ("valid", ["--corruptions", "smog"], "unknown corruption"),
    ("valid", ["--corruptions", "all", "fog"], "cannot be combined"),
    ("valid", ["--severities", "6"], "--severities"),
    ("valid", ["--eval_scales", "0"], "--eval_scales"),
    ("valid", ["--foggy_beta", "0.03"], "--foggy_beta must be one of"),
    ("train", ["--eval_flip"], "read by valid.py and infer.py only"),
    ("infer", ["--val_dataset", "acdc", "--corruptions", "all"], "read by valid.py only"),
])
def test_bad_evaluation_flags_exit_2(script, flags, message, capsys):
    import cli

    with pytest.raises(SystemExit) as error:
        cli.parse_args(script, flags)
    assert error.value.code == 2 and message in capsys.readouterr().err


def test_valid_help_lists_the_evaluation_flags():
    done = subprocess.run([sys.executable, "valid.py", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    for flag in ("--corruptions", "--severities", "--eval_scales", "--eval_flip",
                 "--foggy_beta", "--acdc_dir", "--dark_zurich_dir", "--foggy_cityscapes_dir"):
        assert flag in done.stdout


def test_training_validates_on_the_adverse_targets(adverse_env, tmp_path):
    """train.py's validation sets (engine.data) take the new names, roots and --foggy_beta."""
    import cli
    from engine.data import build_val_sets

    args = cli.parse_args("train", ["--val_dataset", "acdc_snow", "dark_zurich",
                                    "foggy_cityscapes", "--foggy_beta", "0.005", "--ckpt",
                                    str(tmp_path)])
    val_sets = build_val_sets(args.val_dataset, cli.root_overrides(args),
                              cli.eval_dataset_options(args), batch_size=1, num_workers=0)
    assert list(val_sets) == ["acdc_snow", "dark_zurich", "foggy_cityscapes"]
    foggy = val_sets["foggy_cityscapes"].loader.dataset
    assert foggy.beta == "0.005" and len(val_sets["acdc_snow"].loader.dataset) == 1


def test_results_name_the_inference_mode(data_env, tmp_path):
    snapshot = _snapshot(tmp_path)
    _, whole, out = _run(tmp_path, snapshot, "--val_dataset", "cityscapes",
                         "--max_val_images", "1", exp="whole")
    assert whole["inference"] == {"name": "whole-image", "sliding_window": False,
                                  "crop_size": None, "stride": None}
    assert "- inference: `whole-image`" in (out / "results.md").read_text()
    _, windows, out = _run(tmp_path, snapshot, "--val_dataset", "cityscapes",
                           "--max_val_images", "1", "--sliding_window", "--crop_size", "96",
                           exp="windows")
    assert windows["inference"] == {"name": "sliding-window(96,64)", "sliding_window": True,
                                    "crop_size": 96, "stride": 64}  # default stride 2/3
    assert "- inference: `sliding-window(96,64)`" in (out / "results.md").read_text()
