"""DSU + JSD (issue 22's worked example) through train.main: one tiny two-view step with DSU
after layer1..layer4 and the JS consistency on, and the checkpoint evaluated by valid.py
without the model flags."""

import re

import torch

import train
import valid
from network.norm_layers.dsu import DistributionUncertainty
from tests.test_train import TINY

DSU_JSD = ["--dataset", "gtav_jitter", "--wt_layer", "0", "0", "0", "dsu", "dsu", "dsu", "dsu",
           "--w_jsd", "12", "--color_aug", "0.5", "--val_dataset", "--log_every", "1"]


def test_one_step_with_dsu_and_jsd_then_valid_builds_the_recorded_model(data_env, tmp_path):
    changed = []

    def watch(state):  # before the first step: record whether each DSU call moved its input
        if not changed:
            for module in state.net.modules():
                if isinstance(module, DistributionUncertainty):
                    module.register_forward_hook(
                        lambda _m, args, out: changed.append(not torch.equal(args[0], out)))

    argv = TINY + DSU_JSD + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
                             "--date", "d", "--exp", "dsu", "--max_iter", "1", "--seed", "3"]
    result = train.main(argv, before_step=watch)
    assert result.iteration == 1
    # 4 DSU layers, each run on the original and the augmented view; p 0.5 per call.
    assert len(changed) == 8 and any(changed)
    log = (tmp_path / "ckpt" / "d" / "dsu" / "train.log").read_text()
    (jsd,) = re.findall(r"iter 1/1 .* jsd (\S+)", log)
    assert float(jsd) > 0
    snapshot = tmp_path / "ckpt" / "d" / "dsu" / "last.pth"
    assert torch.load(snapshot, weights_only=True, mmap=True)["model"]["wt_layer"] == \
        [0, 0, 0, "dsu", "dsu", "dsu", "dsu"]
    results = valid.main(["--snapshot", str(snapshot), "--val_dataset", "cityscapes",
                          "--ckpt", str(tmp_path / "logs"), "--num_workers", "0"])
    assert results["cityscapes"]["images"] > 0
    log = (tmp_path / "logs" / "default" / "default" / "valid.log").read_text()
    assert "--wt_layer 0 0 0 dsu dsu dsu dsu" in log
