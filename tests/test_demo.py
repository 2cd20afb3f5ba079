"""demo.py end to end on a tiny configuration (a few iterations, tiny images)."""

import json

from PIL import Image

import demo


def test_tiny_demo_writes_table_figures_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    results = demo.main(["--iters", "2", "--size", "64", "128", "--crop", "64", "--bs", "2",
                         "--n_train", "6", "--n_eval", "2", "--styles", "night", "fog",
                         "--workers", "0", "--data", str(tmp_path / "bench"),
                         "--out", str(out)])
    assert set(results) == {"source", "night", "fog"}
    for domain in results.values():
        assert set(domain) == {"baseline", "blindnet"}
        assert all(0.0 <= r["miou"] <= 1.0 for r in domain.values())
    printed = capsys.readouterr().out
    assert "| **mean of targets** |" in printed and "BlindNet − baseline" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["miou"]["night"]["blindnet"] == results["night"]["blindnet"]["miou"]
    assert saved["unit"] == "fraction"  # results.md and the table print percent
    assert (tmp_path / "bench" / "seed0_64x128_train6_eval2_night-fog" / "manifest.json").is_file()
    # The training runs had no validation set: their summary line says so.
    assert "best mIoU (%): none (no --val_dataset)" in (out / "ckpt" / "demo" / "blindnet_seed304"
                                                         / "train.log").read_text()
    assert "| source |" in (out / "results.md").read_text()
    with Image.open(out / "predictions.png") as grid:  # 2 target rows x 4 columns
        assert grid.size[0] > 4 * 128 and grid.size[1] > 2 * 64
    assert (out / "miou_per_domain.png").is_file()
    # Both methods really trained under the shared settings.
    for method in ("baseline", "blindnet"):
        args = json.loads((out / "ckpt" / "demo" / f"{method}_seed304" / "args.json").read_text())
        assert args["max_iter"] == 2 and args["arch"].endswith("DeepEffLite0V3PlusD")
        assert args["use_cwcl"] == (method == "blindnet")


def test_shufflenet_from_scratch_stays_reachable_by_flags(tmp_path):
    args = demo.parse_args(["--arch", "network.deepv3.DeepShuffleNetV3PlusD", "--lr", "0.05",
                            "--iters", "400"])
    manifest = {"source": {"root": str(tmp_path)}}
    for method in demo.METHODS:
        argv = demo.train_argv(method, args, manifest, tmp_path)
        assert argv[argv.index("--arch") + 1] == "network.deepv3.DeepShuffleNetV3PlusD"
        assert argv[argv.index("--lr") + 1] == "0.05"
        assert argv[argv.index("--max_iter") + 1] == "400"


def test_a_rerun_replaces_the_demos_own_runs_and_keys_the_benchmark_by_its_settings(tmp_path):
    args = demo.parse_args(["--size", "64", "128", "--data", str(tmp_path / "b")])
    other = demo.parse_args(["--size", "128", "256", "--data", str(tmp_path / "b")])
    assert demo.benchmark_dir(args) != demo.benchmark_dir(other)
    assert demo.benchmark_dir(args).name == "seed0_64x128_train400_eval50"
    run_dir = tmp_path / "ckpt" / "demo" / "baseline_seed304"
    tb_dir = tmp_path / "tb" / "demo" / "baseline_seed304"
    for folder in (run_dir, tb_dir):
        folder.mkdir(parents=True)
        (folder / "last.pth").write_bytes(b"x")
    assert demo.fresh_run(tmp_path, "baseline", args) == run_dir
    assert not run_dir.exists() and not tb_dir.exists()
    assert demo.fresh_run(tmp_path, "baseline", args) is None  # nothing left to replace
