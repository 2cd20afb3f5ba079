"""``--optimizer``: SGD in one group (official) or AdamW over a model's parameter groups, each
group's lr and weight decay scaled by its multipliers, the poly schedule keeping the ratios
(Rein: docs/VFM_METHODS.md §3.5)."""

import pytest
import torch
from torch import nn

from engine.config import OptimConfig
from engine.trainer import new_train_state, poly_lambda
from network.vfm import ReinDinov2SMask2Former

CPU = torch.device("cpu")


class TwoRates(nn.Module):
    """A model whose ``param_groups`` give a head lr x1 and a trunk lr x0.1 without decay."""

    def __init__(self):
        super().__init__()
        self.trunk, self.head, self.frozen = nn.Linear(3, 3), nn.Linear(3, 2), nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def param_groups(self, lr, weight_decay):
        return [{"params": list(self.head.parameters()), "lr": lr, "lr_mult": 1.0,
                 "weight_decay": weight_decay, "decay_mult": 1.0},
                {"params": list(self.trunk.parameters()), "lr": 0.1 * lr, "lr_mult": 0.1,
                 "weight_decay": 0.0, "decay_mult": 0.0}]


def test_adamw_groups_keep_their_multipliers_under_the_poly_schedule():
    state = new_train_state(TwoRates(), OptimConfig(lr=1e-3, weight_decay=0.05, max_iter=10,
                                                    optimizer="adamw"), device=CPU)
    optimizer = state.optimizer
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["eps"] == 1e-8
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not any(id(p) in held for p in state.model.frozen.parameters())
    for step in range(4):
        factor = poly_lambda(10, 0.9)(step)
        lrs = [group["lr"] for group in optimizer.param_groups]
        assert lrs == pytest.approx([1e-3 * factor, 1e-4 * factor], rel=1e-12)
        assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]
        state.model.zero_grad()
        (state.model.head(state.model.trunk(torch.ones(1, 3)))).sum().backward()
        optimizer.step()
        state.scheduler.step()
    assert optimizer.param_groups[1]["lr"] / optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_rein_model_groups_and_the_official_sgd():
    torch.manual_seed(0)
    model = ReinDinov2SMask2Former(pretrained=False, depth=1, num_queries=2,
                                   num_decoder_layers=1, pixel_decoder_layers=1, img_size=32)
    optim = OptimConfig(lr=1e-4, weight_decay=0.05, max_iter=40000, optimizer="adamw")
    groups = new_train_state(model, optim, device=CPU).optimizer.param_groups
    assert sorted((g["lr"], g["weight_decay"]) for g in groups) == [(1e-4, 0.0), (1e-4, 0.05)]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g["params"]) == trainable
    sgd = new_train_state(TwoRates(), OptimConfig(lr=0.01), device=CPU).optimizer
    assert isinstance(sgd, torch.optim.SGD) and len(sgd.param_groups) == 1
    adamw_cnn = new_train_state(nn.Linear(2, 2), OptimConfig(lr=0.01, optimizer="adamw"),
                                device=CPU).optimizer
    assert len(adamw_cnn.param_groups) == 1 and adamw_cnn.param_groups[0]["weight_decay"] == 5e-4
    with pytest.raises(ValueError, match="--optimizer must be one of"):
        OptimConfig(lr=0.01, optimizer="adam")
