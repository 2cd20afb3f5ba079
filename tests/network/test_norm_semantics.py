"""--norm_semantics torch1.2 at the model level: C1 (IN = batch norm over the per-view batch in
training, instance norm in eval, global over gloo processes) and C2 (frozen affine)."""

import pickle

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from network import get_net
from network.instance_norm import InstanceWhitening
from network.norm_semantics import (Torch12InstanceNorm, apply_norm_semantics,
                                    batch_statistics_norm, norm_semantics_of)
from tests.gloo import free_port, join_gloo_group

# Every IN code on one trunk: stem 4 (affine IN), layer1 1, layer2 2, layer3 3 (R18 positions).
ALL_CODES = (0, 0, 4, 1, 2, 3, 0)


def _record_in_calls(model):
    """Forward hooks on every instance-norm module; returns the list of (name, input, output)."""
    calls = []
    for name, module in model.named_modules():
        if isinstance(module, _InstanceNorm):
            module.register_forward_hook(
                lambda mod, inputs, output, name=name: calls.append(
                    (name, inputs[0].detach().clone(), output.detach().clone())))
    return calls


def _reference_batch_norm(module, x):
    weight, bias = (module.weight, module.bias) if module.affine else (None, None)
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5)


def _reference_instance_norm(module, x):
    weight, bias = (module.weight, module.bias) if module.affine else (None, None)
    return F.instance_norm(x, weight=weight, bias=bias, eps=1e-5)


@pytest.mark.parametrize("arch, wt_layer", [
    ("DeepR18V3PlusD", ALL_CODES),
    ("DeepShuffleNetV3PlusD", (0, 0, 3, 4, 1, 0, 2)),
    ("DeepMobileNetV3PlusD", (0, 0, 1, 1, 1, 0, 0)),
    ("DeepEffLite0V3PlusD", (0, 0, 4, 2, 3, 1, 0)),  # added after norm_semantics.py
])
def test_training_in_layers_are_batch_norms_over_each_view_separately(arch, wt_layer):
    torch.manual_seed(0)
    model = get_net(arch, wt_layer=wt_layer, pretrained=False, norm_semantics="torch1.2")
    modules = dict(model.named_modules())
    in_names = [n for n, m in modules.items() if isinstance(m, _InstanceNorm)]
    assert len(in_names) == sum(v != 0 for v in wt_layer)
    assert all(isinstance(modules[n], Torch12InstanceNorm) for n in in_names)
    for module in modules.values():  # affine IN gets non-trivial frozen values
        if isinstance(module, _InstanceNorm) and module.affine:
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    calls = _record_in_calls(model)
    images, images_aug = torch.randn(2, 3, 64, 64), 3 * torch.randn(2, 3, 64, 64) + 1
    output = model(images, images_aug)
    # Each IN module runs once per view, on that view's batch only (never 2B at once).
    assert [name for name, _, _ in calls] == in_names + in_names
    for name, x, y in calls:
        assert x.shape[0] == 2, name
        module = modules[name]
        torch.testing.assert_close(y, _reference_batch_norm(module, x), msg=name)
        assert not torch.allclose(y, _reference_instance_norm(module, x), atol=1e-3), name
    # The two views never share statistics: the pair gives what each view gives alone.
    alone, alone_aug = model(images), model(images_aug)
    torch.testing.assert_close(output.original.logits, alone.original.logits)
    torch.testing.assert_close(output.augmented.logits, alone_aug.original.logits)
    for a, b in zip(output.augmented.in_feats, alone_aug.original.in_feats):
        torch.testing.assert_close(a, b)
    assert len(output.original.in_feats) == sum(v in (1, 2) for v in wt_layer)  # collected


def test_eval_mode_is_instance_norm_and_matches_modern():
    torch.manual_seed(0)
    old = get_net("DeepR18V3PlusD", wt_layer=ALL_CODES, pretrained=False)
    new = get_net("DeepR18V3PlusD", wt_layer=ALL_CODES, pretrained=False,
                  norm_semantics="torch1.2")
    new.load_state_dict(old.state_dict())
    old.eval()
    new.eval()
    calls = _record_in_calls(new)
    modules = dict(new.named_modules())
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(new(images), old(images), rtol=0, atol=0)
        first = new(images[:1])
    for name, x, y in calls:
        torch.testing.assert_close(y, _reference_instance_norm(modules[name], x), msg=name)
    torch.testing.assert_close(first, new(images)[:1], atol=1e-5, rtol=1e-4)  # per image


def test_c2_freezes_every_batchnorm_and_affine_in_parameter_and_nothing_else():
    model = get_net("DeepR18V3PlusD", wt_layer=ALL_CODES, pretrained=False,
                    norm_semantics="torch1.2")
    assert norm_semantics_of(model) == "torch1.2"
    frozen_modules = [m for m in model.modules() if isinstance(m, _BatchNorm)
                      or (isinstance(m, _InstanceNorm) and m.affine)]
    frozen = {id(p) for m in frozen_modules for p in (m.weight, m.bias)}
    assert any(isinstance(m, _InstanceNorm) and m.affine for m in frozen_modules)
    for name, param in model.named_parameters():
        assert param.requires_grad == (id(param) not in frozen), name
    modern = get_net("DeepR18V3PlusD", wt_layer=ALL_CODES, pretrained=False)
    assert norm_semantics_of(modern) == "modern"
    assert all(p.requires_grad for p in modern.parameters())
    assert not any(isinstance(m, Torch12InstanceNorm) for m in modern.modules())
    assert modern.state_dict().keys() == model.state_dict().keys()


def test_generic_on_module_types_for_any_trunk():
    """A module tree no factory knows (as a future trunk): every _InstanceNorm subclass and
    every _BatchNorm is handled, other norms are left alone, isinstance answers are kept."""
    tree = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True),
                         InstanceWhitening(4), nn.BatchNorm2d(4), nn.GroupNorm(2, 4),
                         nn.Sequential(nn.Conv1d(4, 4, 1), nn.InstanceNorm1d(4),
                                       nn.SyncBatchNorm(4)))
    apply_norm_semantics(tree, "torch1.2")
    apply_norm_semantics(tree, "torch1.2")  # twice is harmless
    assert isinstance(tree[1], nn.InstanceNorm2d) and isinstance(tree[1], Torch12InstanceNorm)
    assert isinstance(tree[2], InstanceWhitening) and isinstance(tree[2], Torch12InstanceNorm)
    assert isinstance(tree[5][1], nn.InstanceNorm1d) and isinstance(tree[5][1],
                                                                     Torch12InstanceNorm)
    assert type(tree[2]).__mro__[1] is Torch12InstanceNorm
    assert not any(p.requires_grad for m in (tree[1], tree[3], tree[5][2])
                   for p in m.parameters())
    assert all(p.requires_grad for m in (tree[0], tree[4], tree[5][0]) for p in m.parameters())
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(tree[5][1](x), F.batch_norm(x, None, None, training=True))
    copy = pickle.loads(pickle.dumps(tree))  # whole-model save/copy still works
    assert type(copy[2]) is type(tree[2]) and not copy[1].weight.requires_grad
    with pytest.raises(ValueError, match="already has torch1.2"):
        apply_norm_semantics(tree, "modern")
    with pytest.raises(ValueError, match="--norm_semantics must be one of"):
        get_net("DeepR18V3PlusD", pretrained=False, norm_semantics="torch1.3")


def _layers():
    """The layers compared across processes: plain IN (codes 1-3) and affine IN (code 4)."""
    plain = InstanceWhitening(3)
    affine = nn.InstanceNorm2d(3, affine=True)
    affine.weight.data = torch.tensor([0.5, 1.0, 2.0])
    affine.bias.data = torch.tensor([0.1, -0.2, 0.3])
    return [apply_norm_semantics(layer, "torch1.2") for layer in (plain, affine)]


def _layer_outputs(x, weights, layer):
    """Output and input gradient of ``layer`` in training for loss ``sum(weights * y)``."""
    x = x.clone().requires_grad_(True)
    y = layer.train()(x)
    (weights * y).sum().backward()
    return y.detach(), x.grad


def _global_inputs():
    gen = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(5, 3, 4, 6, generator=gen, dtype=torch.float64) + 1
    weights = torch.randn(5, 3, 4, 6, generator=gen, dtype=torch.float64)
    return x, weights


# (rank 0 rows, rank 1 rows) of the global batch of 5: equal halves, then unequal shares.
SPLITS = ((slice(0, 2), slice(2, 4)), (slice(0, 2), slice(2, 5)))


def _worker(rank, port, results):
    from utils import dist as dist_utils

    torch.set_num_threads(1)
    join_gloo_group(rank, 2, port)
    x, weights = _global_inputs()
    out = []
    for split in SPLITS:
        rows = split[rank]
        for layer in _layers():
            layer.double()
            out.append(_layer_outputs(x[rows], weights[rows], layer))
    results[rank] = out
    dist_utils.cleanup()


def test_two_gloo_processes_match_one_process_with_the_whole_batch():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(free_port(), results), nprocs=2, join=True)
    x, weights = _global_inputs()
    k = 0
    for split in SPLITS:
        rows = slice(0, split[1].stop)  # one process holding both ranks' images
        for layer in _layers():
            layer.double()
            y, grad = _layer_outputs(x[rows], weights[rows], layer)
            for rank, r in enumerate(split):
                y_rank, grad_rank = results[rank][k]
                torch.testing.assert_close(y_rank, y[r], rtol=1e-10, atol=1e-10)
                torch.testing.assert_close(grad_rank, grad[r], rtol=1e-10, atol=1e-10)
                # Not per-process statistics (what one process alone with x[r] computes).
                y_alone, _ = _layer_outputs(x[r], weights[r], layer)
                assert not torch.allclose(y_rank, y_alone, atol=1e-3)
            k += 1


def test_single_process_path_is_exactly_f_batch_norm():
    x = torch.randn(3, 4, 5, 5, requires_grad=True)
    w, b = torch.rand(4), torch.rand(4)
    ref = F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
    torch.testing.assert_close(batch_statistics_norm(x, w, b), ref, rtol=0, atol=0)
