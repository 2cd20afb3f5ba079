"""network/model_info.py: thop-based params and FLOPs."""

import json
import subprocess
import sys

import pytest

from config import REPO_ROOT

from network import OFFICIAL_WT_LAYER, get_net
from network.model_info import main, model_info


def test_counts_params_and_flops_that_scale_with_area():
    small = model_info("DeepShuffleNetV3PlusD", crop=(64, 64))
    large = model_info("network.deepv3.DeepShuffleNetV3PlusD", crop=(128, 128))
    model = get_net("DeepShuffleNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    assert small["params"] == sum(p.numel() for p in model.parameters())
    heads = sum(p.numel() for name in ("dsn", "ProjectionHead_cls_0", "ProjectionHead_cls_1",
                                        "ProjectionHead_cls_2")
                for p in getattr(model, name).parameters())
    assert small["params_inference"] == small["params"] - heads
    assert small["gflops"] == pytest.approx(2 * small["gmacs"])
    assert 3.5 < large["gmacs"] / small["gmacs"] < 4.5


def test_cli_prints_a_table(capsys):
    rows = main(["--arch", "DeepR18V3PlusD", "--size", "64", "32"])
    assert rows[0]["crop"] == [64, 32]
    out = capsys.readouterr().out
    assert "| DeepR18V3PlusD | 64x32 | 18.495 |" in out
    with pytest.raises(SystemExit):
        main(["--size", "1", "2", "3"])


def test_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "network.model_info", "--arch",
                          "DeepR18V3PlusD", "--size", "32", "--json"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    model = get_net("DeepR18V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    assert row["crop"] == [32, 32]
    assert row["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("argv, match", [
    (["--arch", "bogus"], "unknown --arch 'bogus'"),
    (["--arch", "DeepR18V3PlusD", "--wt_layer", "0", "0", "9", "0", "0", "0", "0"],
     "--wt_layer values must be 7 codes"),
    (["--arch", "DeepR18V3PlusD", "--size", "8"], "--size 8 8 is too small for --arch"),
])
def test_cli_reports_bad_flags_as_usage_errors(capsys, argv, match):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert match in capsys.readouterr().err
