"""utils/model_info.py: thop-based params and FLOPs."""

import pytest

from network import get_net
from utils.model_info import main, model_info


def test_counts_params_and_flops_that_scale_with_area():
    small = model_info("DeepShuffleNetV3PlusD", crop=(64, 64))
    large = model_info("network.deepv3.DeepShuffleNetV3PlusD", crop=(128, 128))
    model = get_net("DeepShuffleNetV3PlusD", pretrained=False)
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
