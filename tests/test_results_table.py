"""tools/results_table.py: methods x seeds -> mean ± std, and refusal of setting mixes."""

import json
import math

import pytest

from utils.labels import CLASS_NAMES
from tools import results_table as rt
from engine.evaluation import write_results


def _result(miou):
    iou = [miou] * len(CLASS_NAMES)
    return {"miou": miou, "iou": iou, "pixel_acc": 0.9, "hist": [[0]], "images": 1}


def _write_run(base, folder, mious, exp=None, seed=None, protocol="robustnet", tta=None,
               source="gtav", inference=None):
    """A results.json as valid.py writes it (plus the training run, TTA and targets)."""
    out = base / folder
    write_results({name: _result(m) for name, m in mious.items()}, out, CLASS_NAMES, protocol,
                  checkpoint="ckpt.pth")
    path = out / "results.json"
    payload = json.loads(path.read_text())
    if exp is not None:
        payload["training_run"] = {"exp": exp, "seed": seed}
    if tta is not None:
        payload["tta"] = {"name": tta}
    if inference is not None:
        payload["inference"] = {"name": inference}
    payload["mean_over_targets"] = {"targets": [n for n in mious if n != source]}
    path.write_text(json.dumps(payload))
    return out


@pytest.fixture
def three_runs(tmp_path):
    """Two seeds of baseline, one of blindnet; GTAV evaluated too (the source)."""
    return [
        _write_run(tmp_path, "a", {"cityscapes": 0.30, "bdd100k": 0.20, "gtav": 0.70},
                   exp="baseline_seed304", seed=304),
        _write_run(tmp_path, "b", {"cityscapes": 0.34, "bdd100k": 0.26, "gtav": 0.72},
                   exp="baseline_seed305", seed=305),
        _write_run(tmp_path, "c", {"cityscapes": 0.40, "bdd100k": 0.31, "gtav": 0.69},
                   exp="blindnet_seed304", seed=304),
    ]


def test_mean_and_std_over_seeds(three_runs):
    table = rt.build_table([rt.load_run(p) for p in three_runs])
    assert table["columns"] == ["cityscapes", "bdd100k", "mean"]
    baseline, blindnet = table["rows"]
    assert (baseline["method"], baseline["seeds"]) == ("baseline", [304, 305])
    assert (blindnet["method"], blindnet["seeds"]) == ("blindnet", [304])
    mean, std, values = baseline["cells"]["cityscapes"]
    assert mean == pytest.approx(32.0) and std == pytest.approx(2 * math.sqrt(2))
    assert values == pytest.approx([30.0, 34.0])
    mean, std, values = baseline["cells"]["mean"]  # per-seed means 25 and 30
    assert values == pytest.approx([25.0, 30.0])
    assert mean == pytest.approx(27.5) and std == pytest.approx(5 / math.sqrt(2))
    mean, std, _ = blindnet["cells"]["mean"]
    assert mean == pytest.approx(35.5) and math.isnan(std)


def test_markdown_and_latex(three_runs, capsys):
    assert rt.main([str(p) for p in three_runs]) == 0
    out = capsys.readouterr().out
    assert "| method | n | cityscapes | bdd100k | mean |" in out
    assert "| baseline | 2 | 32.00 ± 2.83 | 23.00 ± 4.24 | 27.50 ± 3.54 |" in out
    assert "| blindnet | 1 | 40.00 | 31.00 | 35.50 |" in out
    assert "protocol robustnet, TTA single-scale" in out
    assert r"baseline & 2 & 32.00 $\pm$ 2.83 & 23.00 $\pm$ 4.24 & 27.50 $\pm$ 3.54 \\" in out
    assert r"\begin{tabular}" in out and r"\end{tabular}" in out


def test_refuses_a_protocol_mix(three_runs, tmp_path, capsys):
    other = _write_run(tmp_path, "d", {"cityscapes": 0.41, "bdd100k": 0.30},
                       exp="blindnet_seed305", seed=305, protocol="blindnet")
    assert rt.main([str(p) for p in three_runs + [other]]) == 2
    err = capsys.readouterr().err
    assert "refusing to put runs of different evaluation settings into one column" in err
    assert "protocol robustnet, TTA single-scale" in err and "protocol blindnet" in err
    assert str(other / "results.json") in err


def test_refuses_a_tta_mix_and_splits_on_request(three_runs, tmp_path, capsys):
    other = _write_run(tmp_path, "d", {"cityscapes": 0.45, "bdd100k": 0.33},
                       exp="blindnet_seed305", seed=305, tta="ms(0.5,1,1.5)+flip")
    runs = [rt.load_run(p) for p in three_runs + [other]]
    with pytest.raises(rt.ResultsTableError, match="TTA ms\\(0.5,1,1.5\\)\\+flip"):
        rt.build_table(runs)
    text = rt.render(runs, split_settings=True, fmt="markdown")
    assert text.count("| method | n |") == 2 and "| blindnet | 1 | 45.00 | 33.00 | 39.00 |" in text


def test_targets_option_and_missing_column(three_runs, tmp_path):
    runs = [rt.load_run(p) for p in three_runs]
    table = rt.build_table(runs, targets=["bdd100k"])
    assert table["columns"] == ["bdd100k", "mean"]
    assert table["rows"][0]["cells"]["mean"][0] == pytest.approx(23.0)
    short = _write_run(tmp_path, "e", {"cityscapes": 0.5}, exp="x_seed1", seed=1)
    with pytest.raises(rt.ResultsTableError, match="no result for 'bdd100k'.*--targets"):
        rt.build_table(runs + [rt.load_run(short)])


def test_method_and_seed_from_the_folder_name_and_refusals(tmp_path):
    run = rt.load_run(_write_run(tmp_path, "oracle-s7", {"cityscapes": 0.5}))
    assert (run.method, run.seed) == ("oracle", 7)
    with pytest.raises(rt.ResultsTableError, match="cannot tell the seed"):
        rt.load_run(_write_run(tmp_path, "unnamed", {"cityscapes": 0.5}))
    twice = [rt.load_run(_write_run(tmp_path, f"r{i}", {"cityscapes": 0.5}, exp="m_seed1",
                                    seed=1)) for i in range(2)]
    with pytest.raises(rt.ResultsTableError, match="seed\\(s\\) \\[1\\] more than once"):
        rt.build_table(twice)
    with pytest.raises(rt.ResultsTableError, match="no results.json"):
        rt.load_run(tmp_path / "nothing")


def test_synthia_class_subsets(tmp_path):
    out = _write_run(tmp_path, "syn_seed1", {"cityscapes": 0.5}, source="synthia")
    payload = json.loads((out / "results.json").read_text())
    per_class = payload["datasets"]["cityscapes"]["iou_per_class"]
    for name in ("terrain", "truck", "train"):
        per_class[name] = 0.0
    per_class["wall"] = None  # absent and never predicted
    (out / "results.json").write_text(json.dumps(payload))
    run = rt.load_run(out)
    assert rt.run_value(run, "cityscapes", "16") == pytest.approx(0.5)
    assert rt.run_value(run, "cityscapes", "13") == pytest.approx(0.5)
    assert rt.run_value(run, "cityscapes", "19") == pytest.approx(0.5)  # stored miou


def test_foggy_columns_name_their_beta(tmp_path):
    out = _write_run(tmp_path, "f_seed1", {"foggy_cityscapes": 0.5})
    payload = json.loads((out / "results.json").read_text())
    payload["datasets"]["foggy_cityscapes"]["foggy_beta"] = 0.01
    (out / "results.json").write_text(json.dumps(payload))
    assert rt.load_run(out).targets == ["foggy_cityscapes (β=0.01)"]


def test_script_runs_from_the_command_line(three_runs):
    import subprocess
    import sys

    from config import REPO_ROOT

    done = subprocess.run([sys.executable, "tools/results_table.py", "--format", "markdown",
                           *map(str, three_runs)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| baseline | 2 |" in done.stdout


def _add_sweep(out, dataset, mpc, clean, corruptions=("fog", "snow"), severities=(1, 2)):
    path = out / "results.json"
    payload = json.loads(path.read_text())
    payload["datasets"][dataset]["corruptions"] = {
        "clean_miou": clean, "mpc": mpc, "relative_robustness": mpc / clean,
        "corruptions": {c: {"per_severity": {}, "miou": mpc} for c in corruptions},
        "severities": list(severities), "benchmark_complete": False}
    path.write_text(json.dumps(payload))


def test_mpc_and_relative_robustness_tables(three_runs, tmp_path):
    for out, (m1, m2) in zip(three_runs, ((0.15, 0.10), (0.17, 0.12), (0.30, 0.20))):
        _add_sweep(out, "cityscapes", m1, 0.3)
        _add_sweep(out, "bdd100k", m2, 0.2)
    runs = [rt.load_run(p) for p in three_runs]
    table = rt.build_table(runs, metric="mpc")
    mean, std, values = table["rows"][0]["cells"]["cityscapes"]
    assert values == pytest.approx([15.0, 17.0]) and mean == pytest.approx(16.0)
    assert table["rows"][0]["cells"]["mean"][2] == pytest.approx([12.5, 14.5])
    rpc = rt.build_table(runs, metric="rpc")
    assert rpc["rows"][1]["cells"]["cityscapes"][0] == pytest.approx(100.0)
    assert "mPC (mean mIoU under corruption) (%)" in rt.render(runs, metric="mpc")
    _add_sweep(three_runs[2], "bdd100k", 0.2, 0.2, severities=(1, 2, 3))
    with pytest.raises(rt.ResultsTableError, match="different corruptions or severities"):
        rt.build_table([rt.load_run(p) for p in three_runs], metric="mpc")


def test_mpc_needs_a_sweep(three_runs):
    with pytest.raises(rt.ResultsTableError, match="has no corruption sweep"):
        rt.build_table([rt.load_run(p) for p in three_runs], metric="mpc")


def test_clean_mpc_and_rpc_side_by_side(three_runs, capsys):
    for out, (m1, m2) in zip(three_runs, ((0.15, 0.10), (0.17, 0.13), (0.30, 0.20))):
        _add_sweep(out, "cityscapes", m1, 0.3)
        _add_sweep(out, "bdd100k", m2, 0.2)
    runs = [rt.load_run(p) for p in three_runs]
    table = rt.build_combined_table(runs, metrics=["miou", "mpc", "rpc"])
    assert table["columns"][:4] == ["cityscapes mIoU", "cityscapes mPC", "cityscapes rPC",
                                    "bdd100k mIoU"]
    assert table["columns"][-3:] == ["mean mIoU", "mean mPC", "mean rPC"]
    baseline = table["rows"][0]["cells"]
    assert baseline["cityscapes mIoU"][2] == pytest.approx([30.0, 34.0])  # clean, per seed
    assert baseline["bdd100k mPC"][2] == pytest.approx([10.0, 13.0])
    assert baseline["bdd100k rPC"][2] == pytest.approx([50.0, 65.0])
    for column in ("cityscapes", "mean"):  # each cell is the single-metric table's cell
        assert baseline[f"{column} mPC"] == rt.build_table(runs, metric="mpc")[
            "rows"][0]["cells"][column]
    assert rt.to_markdown(rt.build_combined_table(runs, metrics=["mpc"])) == rt.to_markdown(
        rt.build_table(runs, metric="mpc"))  # one metric: the table of before

    assert rt.main([str(p) for p in three_runs] + ["--metric", "miou", "mpc", "rpc",
                                                   "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "mIoU (clean), mPC (mean mIoU under corruption), rPC (relative robustness" in text
    assert "| method | n | cityscapes mIoU | cityscapes mPC | cityscapes rPC |" in text


def test_refuses_a_sliding_window_mix(three_runs, tmp_path, capsys):
    # Sliding windows change the numbers as TTA does; results.json did not record them, so a
    # whole-image and a sliding-window run were averaged into one cell.
    other = _write_run(tmp_path, "d", {"cityscapes": 0.45, "bdd100k": 0.33},
                       exp="blindnet_seed305", seed=305, inference="sliding-window(768,512)")
    runs = [rt.load_run(p) for p in three_runs + [other]]
    with pytest.raises(rt.ResultsTableError, match=r"single-scale, sliding-window\(768,512\)"):
        rt.build_table(runs)
    same = _write_run(tmp_path, "e", {"cityscapes": 0.45, "bdd100k": 0.33},
                      exp="blindnet_seed306", seed=306, inference="whole-image")
    table = rt.build_table([rt.load_run(p) for p in three_runs + [same]])  # older files too
    assert [len(r["seeds"]) for r in table["rows"]] == [2, 2]
    assert rt.main([str(p) for p in three_runs + [other]] + ["--split_settings"]) == 0
    out = capsys.readouterr().out
    assert "protocol robustnet, TTA single-scale, sliding-window(768,512);" in out


def test_refuses_runs_over_different_numbers_of_images(three_runs):
    path = three_runs[1] / "results.json"
    payload = json.loads(path.read_text())
    payload["datasets"]["bdd100k"]["images"] = 7  # as with --max_val_images 7
    path.write_text(json.dumps(payload))
    runs = [rt.load_run(p) for p in three_runs]
    with pytest.raises(rt.ResultsTableError, match=r"'bdd100k' over runs that evaluated "
                                                   r"different numbers of images") as error:
        rt.build_table(runs)
    assert str(three_runs[1]) in str(error.value) and "1 images" in str(error.value)
    assert rt.build_table(runs, targets=["cityscapes"])["rows"]  # other columns still fine
