"""Switchable Whitening (--wt_layer 5): whitening, running statistics, gradients, ranks."""

import pytest
import torch
import torch.multiprocessing as mp

from network import get_net
from network.norm_layers.switchable_whitening import SwitchWhiten2d
from utils import dist as dist_utils
from tests.gloo import free_port, join_gloo_group


def correlated_maps(batch, channels, size, seed=0, dtype=torch.float64):
    """Maps whose channels are correlated within each group, with a non-zero mean."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, channels, size, size, generator=g, dtype=dtype)
    mixing = torch.eye(channels, dtype=dtype) + 0.3 * torch.randn(channels, channels,
                                                                generator=g, dtype=dtype)
    return torch.einsum("ij,bjhw->bihw", mixing, z) + 2.0


def group_batch_covariance(out, group_size=16):
    """Per-group covariance over (B, H, W) of ``out``: ``(G, c, c)``."""
    batch, channels = out.shape[:2]
    grouped = out.reshape(batch, channels // group_size, group_size, -1)
    grouped = grouped.permute(1, 2, 0, 3).flatten(2)              # (G, c, B*HW)
    centred = grouped - grouped.mean(-1, keepdim=True)
    return centred @ centred.transpose(1, 2) / grouped.shape[-1]


def batch_only(module):
    """Mixing logits that select the batch statistics (softmax ~ (1, 0))."""
    with torch.no_grad():
        module.mean_weight.copy_(torch.tensor([30.0, -30.0]))
        module.var_weight.copy_(torch.tensor([30.0, -30.0]))
    return module


def test_training_output_is_whitened_per_group():
    x = correlated_maps(4, 32, 6)
    eye = torch.eye(16, dtype=torch.float64)
    eig_in = torch.linalg.eigvalsh(group_batch_covariance(x))
    # The doc's 5 Newton-Schulz steps approach white from below: the spread of the
    # covariance's eigenvalues (condition number ~29 here) shrinks to under 4.
    sw = batch_only(SwitchWhiten2d(32).double().train())
    eig_out = torch.linalg.eigvalsh(group_batch_covariance(sw(x)).detach())
    assert (eig_in[:, -1] / eig_in[:, 0]).min() > 20
    assert (eig_out[:, -1] / eig_out[:, 0]).max() < 4 and eig_out.max() < 1 + 1e-6
    # More steps reach the identity (this input is well enough conditioned).
    more = batch_only(SwitchWhiten2d(32, iterations=10).double().train())
    assert (group_batch_covariance(more(x)) - eye).abs().max() < 1e-4


def test_mixed_statistics_follow_the_doc_formula():
    x = correlated_maps(3, 16, 5, seed=1)
    sw = SwitchWhiten2d(16).double().train()
    with torch.no_grad():
        sw.mean_weight.copy_(torch.tensor([0.3, -0.2]))
        sw.var_weight.copy_(torch.tensor([-0.5, 0.4]))
        sw.weight.copy_(torch.linspace(0.5, 1.5, 16))
        sw.bias.copy_(torch.linspace(-1, 1, 16))
    flat = x.reshape(3, 16, -1)
    mu_bn = flat.transpose(0, 1).reshape(16, -1).mean(-1)[:, None]
    xc = flat.transpose(0, 1).reshape(16, -1) - mu_bn
    cov_bn = xc @ xc.T / xc.shape[1]
    w, v = sw.mean_weight.softmax(0), sw.var_weight.softmax(0)
    expected = []
    for b in range(3):
        mu_in = flat[b].mean(-1, keepdim=True)
        cov_in = (flat[b] - mu_in) @ (flat[b] - mu_in).T / flat.shape[-1]
        cov = v[0] * cov_bn + v[1] * cov_in + 1e-5 * torch.eye(16, dtype=torch.float64)
        proj, normalised = torch.eye(16, dtype=torch.float64), cov / cov.trace()
        for _ in range(5):
            proj = 1.5 * proj - 0.5 * proj @ proj @ proj @ normalised
        xhat = proj / cov.trace().sqrt() @ (flat[b] - (w[0] * mu_bn + w[1] * mu_in))
        expected.append(xhat * sw.weight[:, None] + sw.bias[:, None])
    torch.testing.assert_close(sw(x).reshape(3, 16, -1), torch.stack(expected).detach(),
                               rtol=1e-6, atol=1e-6)


def test_running_statistics_are_updated_and_used_in_eval():
    x = correlated_maps(4, 16, 5, seed=2)
    sw = SwitchWhiten2d(16).double()
    assert sw.running_cov.abs().sum() == 0           # RobustNet: zero initialisation
    sw.train()
    sw(x)
    flat = x.transpose(0, 1).reshape(16, -1)
    torch.testing.assert_close(sw.running_mean[0, :, 0], 0.01 * flat.mean(-1))
    centred = flat - flat.mean(-1, keepdim=True)
    torch.testing.assert_close(sw.running_cov[0], 0.01 * centred @ centred.T / flat.shape[1])
    sw.eval()
    alone = sw(x[:1])
    together = sw(torch.cat([x[:1], 5 * x[1:]]))[:1]
    torch.testing.assert_close(alone, together)     # eval: no batch statistics
    # Eval with batch-only mixing whitens with the running statistics.
    batch_only(sw)
    cov = sw.running_cov[0] + 1e-5 * torch.eye(16, dtype=torch.float64)
    proj = torch.eye(16, dtype=torch.float64)
    normalised = cov / cov.trace()
    for _ in range(5):
        proj = 1.5 * proj - 0.5 * proj @ proj @ proj @ normalised
    expected = (proj / cov.trace().sqrt()) @ (x[0].reshape(16, -1) - sw.running_mean[0])
    torch.testing.assert_close(sw(x[:1])[0].reshape(16, -1), expected.detach())


def test_gradcheck_small_input():
    sw = SwitchWhiten2d(32, iterations=5).double().train()
    x = correlated_maps(2, 32, 3, seed=3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: sw(t), (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    for name in ("weight", "bias", "mean_weight", "var_weight"):
        param = getattr(sw, name)
        assert torch.autograd.gradcheck(
            lambda p, name=name: torch.func.functional_call(sw, {name: p}, (x.detach(),)),
            (param.detach().clone().requires_grad_(),), eps=1e-6, atol=1e-5,
            fast_mode=True)


def test_bad_channel_counts_are_refused():
    with pytest.raises(ValueError, match="divisible by 16"):
        SwitchWhiten2d(24)
    with pytest.raises(ValueError, match=r"\(B, 16, H, W\)"):
        SwitchWhiten2d(16)(torch.randn(2, 32, 4, 4))


def test_code_5_on_resnet_trunks_and_refused_elsewhere():
    model = get_net("DeepR50V3PlusD", wt_layer=(0, 0, 5, 5, 5, 0, 0), pretrained=False)
    names = [name for name, m in model.named_modules() if isinstance(m, SwitchWhiten2d)]
    assert names == ["layer0.1", "layer1.2.instance_norm_layer", "layer2.3.instance_norm_layer"]
    output = model(torch.randn(2, 3, 64, 64))
    assert output.original.logits.shape == (2, 19, 64, 64) and output.original.in_feats == []
    model.eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 19, 64, 64)
    for arch in ("DeepMobileNetV3PlusD", "DeepShuffleNetV3PlusD", "DeepEffLite0V3PlusD"):
        with pytest.raises(ValueError, match="code 5"):
            get_net(arch, wt_layer=(0, 0, 5, 0, 0, 0, 0), pretrained=False)


@pytest.mark.parametrize("wt", [4, 5])
def test_stem_imagenet_batchnorm_affine_loads_into_ibn_and_sw(tmp_path, wt):
    from torchvision.models import resnet18

    state = resnet18(weights=None).state_dict()
    g = torch.Generator().manual_seed(4)
    state["bn1.weight"] = torch.rand(64, generator=g) + 0.5
    state["bn1.bias"] = torch.randn(64, generator=g)
    state["bn1.running_mean"] = torch.randn(64, generator=g)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = get_net("DeepR18V3PlusD", wt_layer=(0, 0, wt, wt, wt, 0, 0), pretrained=str(path))
    stem = model.layer0[1]
    assert torch.equal(stem.weight.detach(), state["bn1.weight"])
    assert torch.equal(stem.bias.detach(), state["bn1.bias"])
    if wt == 5:   # the BN running mean has another shape: not loaded (as RobustNet)
        assert stem.running_mean.abs().sum() == 0
    # In-block layers are new: affine starts at 1 / 0.
    block = model.layer1[1].instance_norm_layer
    assert torch.equal(block.weight.detach(), torch.ones(64))


def _sync_worker(rank, world_size, port, results):
    join_gloo_group(rank, world_size, port)
    x = correlated_maps(4, 16, 4, seed=5)[2 * rank:2 * rank + 2].clone().requires_grad_()
    sw = SwitchWhiten2d(16).double().train()
    out = sw(x)
    weights = torch.arange(4 * 16 * 16, dtype=out.dtype).view(4, 16, 4, 4)[2 * rank:2 * rank + 2]
    (out * weights).sum().backward()
    results[rank] = (out.detach(), x.grad, sw.running_cov.clone(), sw.var_weight.grad.clone())
    dist_utils.cleanup()


def test_two_gloo_processes_equal_one_process_on_the_whole_batch():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_sync_worker, args=(2, free_port(), results), nprocs=2, join=True)
    x = correlated_maps(4, 16, 4, seed=5).requires_grad_()
    sw = SwitchWhiten2d(16).double().train()
    out = sw(x)
    (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    torch.testing.assert_close(torch.cat([results[0][0], results[1][0]]), out.detach())
    # Each rank's input gradient is its part of the single-process gradient (DDP then
    # averages the parameter gradients; the statistics' backward is all-reduced).
    torch.testing.assert_close(torch.cat([results[0][1], results[1][1]]), x.grad)
    torch.testing.assert_close(results[0][2], sw.running_cov)
    torch.testing.assert_close(results[0][3] + results[1][3], sw.var_weight.grad)
