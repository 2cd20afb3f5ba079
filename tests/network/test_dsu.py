"""DSU (network/norm_layers/dsu.py): the statistics it samples, identity at eval and for p 0,
and where the registry lets it go (added at --wt_layer block positions, never a norm)."""

import pytest
import torch

from network import get_net, norms
from network.norm_layers.dsu import DistributionUncertainty, perturb_statistics


def _features(seed=0, shape=(4, 3, 8, 8)):
    torch.manual_seed(seed)
    # Different scales and offsets per image and channel: statistics well away from eps.
    return torch.randn(shape) * torch.rand(shape[:2])[..., None, None] * 3 + \
        torch.randn(shape[:2])[..., None, None]


def test_identity_at_eval_and_for_p_zero():
    x = _features()
    layer = DistributionUncertainty(3).eval()
    assert layer(x) is x
    layer = DistributionUncertainty(3, p=0.0).train()
    assert all(layer(x) is x for _ in range(20))
    with pytest.raises(ValueError, match="p must be in"):
        DistributionUncertainty(3, p=1.5)


def test_the_output_has_the_sampled_statistics():
    """Per image and channel the output's mean is beta = mu + e1 * S_mu and its deviation
    gamma = sigma + e2 * S_sigma, with S the deviation of mu / sigma over the batch and e1, e2
    the generator's two N(0, 1) draws; computed here in float64 from the definition."""
    x = _features()
    out = perturb_statistics(x, generator=torch.Generator().manual_seed(7))
    e1, e2 = torch.randn((2, 4, 3), generator=torch.Generator().manual_seed(7)).double()
    x64 = x.double()
    mu = x64.mean(dim=(2, 3))
    sigma = (x64.var(dim=(2, 3)) + 1e-6).sqrt()
    beta = mu + e1 * (mu.var(dim=0) + 1e-6).sqrt()
    gamma = sigma + e2 * (sigma.var(dim=0) + 1e-6).sqrt()
    torch.testing.assert_close(out.double().mean(dim=(2, 3)), beta, rtol=1e-3, atol=1e-4)
    # std of (x - mu) / sigma * gamma is gamma * sqrt(var / (var + eps)): gamma up to eps.
    torch.testing.assert_close(out.double().std(dim=(2, 3)), gamma.abs(), rtol=1e-3,
                               atol=1e-4)
    assert not torch.allclose(out, x, atol=1e-3)  # the statistics did move


def test_training_perturbs_with_probability_p_and_gradients_flow():
    x = _features().requires_grad_()
    layer = DistributionUncertainty(3, p=1.0).train()
    torch.manual_seed(1)
    out = layer(x)
    assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0
    torch.manual_seed(2)
    layer.p = 0.5
    changed = [not torch.equal(layer(x), x) for _ in range(200)]
    assert 60 < sum(changed) < 140  # one coin per call (binomial(200, 0.5): 6 sigma)


def test_a_single_image_batch_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="dsu needs at least 2 images"):
        DistributionUncertainty(3, p=1.0).train()(torch.randn(1, 3, 8, 8))


def test_dsu_is_added_at_block_positions_and_refused_where_it_would_replace_a_norm():
    torch.manual_seed(0)
    wt = (0, 0, 0, "dsu", "dsu", "dsu", "dsu")
    model = get_net("DeepR18V3PlusD", wt_layer=wt, pretrained=False).eval()
    placed = [name for name, m in model.named_modules() if isinstance(m, DistributionUncertainty)]
    assert placed == [f"layer{i}.1.instance_norm_layer" for i in (1, 2, 3, 4)]
    baseline = get_net("DeepR18V3PlusD", wt_layer=(0,) * 7, pretrained=False).eval()
    # No tensors of its own (ImageNet and checkpoints load as for the baseline), identity at
    # evaluation: the same weights predict the same.
    assert model.state_dict().keys() == baseline.state_dict().keys()
    baseline.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), baseline(x))
    assert norms.declared(model.layer1[1].instance_norm_layer).normalises is False
    for kwargs, flag in (({"norm_layer": "dsu"}, "--norm_layer"),
                         ({"head_norm_layer": "dsu"}, "--head_norm_layer"),
                         ({"wt_layer": (0, 0, "dsu", 0, 0, 0, 0)}, "--wt_layer")):
        with pytest.raises(ValueError, match="does not normalise") as info:
            get_net("DeepR18V3PlusD", pretrained=False, **kwargs)
        assert flag in str(info.value)
