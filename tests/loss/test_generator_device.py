"""The anchor samplers accept a generator on another device than the maps.

The training engine keeps the criterion's generator on the CPU (its state goes into
checkpoints) while the maps live on the GPU. PyTorch refuses ``torch.rand(...,
generator=<cpu generator>, device="cuda")`` ("Expected a 'cuda' device type for generator
but found 'cpu'"), so the samplers must draw on the generator's device and move the numbers.
Without a GPU the rule is simulated: ``torch.rand`` / ``torch.randperm`` are wrapped to
refuse a generator whose device type differs from the requested one, and the maps are put
on the ``meta`` device.
"""

import pytest
import torch

from loss import BlindNetCriterion, sample_cwcl_anchors, sample_sdcl_pairs, sampling
from network import ModelOutput, ViewOutput


def _refusing_mismatch(function):
    def wrapped(*args, generator=None, device=None, **kwargs):
        wanted = torch.device(device if device is not None else "cpu").type
        if generator is not None and generator.device.type != wanted:
            raise RuntimeError(f"Expected a '{wanted}' device type for generator but found "
                               f"'{generator.device.type}'")
        return function(*args, generator=generator, device=device, **kwargs)
    return wrapped


@pytest.fixture
def strict_generators(monkeypatch):
    monkeypatch.setattr(torch, "rand", _refusing_mismatch(torch.rand))
    monkeypatch.setattr(torch, "randperm", _refusing_mismatch(torch.randperm))


def _maps(device="cpu"):
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 24, 24), generator=generator)
    preds = torch.where(torch.rand(2, 24, 24, generator=generator) < 0.3, 0, labels)
    return labels.to(device), preds.to(device)


@pytest.mark.parametrize("random_order, distinct", [(False, False), (True, True)])
def test_cwcl_sampler_takes_a_generator_of_another_device(strict_generators, random_order,
                                                          distinct):
    labels, preds = _maps("meta")
    anchors = sample_cwcl_anchors(labels, preds, 15, 8, distinct=distinct,
                                  random_class_order=random_order,
                                  generator=torch.Generator().manual_seed(1))
    assert anchors.indices.device.type == "meta" and anchors.indices.shape == (2, 120)


def test_sdcl_negative_draw_takes_a_generator_of_another_device(strict_generators):
    # The SDCL sampler needs data-dependent shapes (nonzero), which "meta" cannot give, so
    # its random draws are checked one by one: the per-class negative order and the cap.
    labels, _ = _maps("meta")
    generator = torch.Generator().manual_seed(1)
    order = sampling._sort_by_group(labels.flatten(1), generator)
    keep = sampling._randperm(50, generator, torch.device("meta"))
    assert order.device.type == keep.device.type == "meta" and keep.shape == (50,)


def test_criterion_on_the_device_with_the_engines_cpu_generator(device):
    labels, preds = _maps()
    preds_aug = (preds + 1) % 4
    cpu_gen = torch.Generator(device="cpu")
    on_device = [sample_cwcl_anchors(labels.to(device), preds.to(device), 15, 8,
                                     generator=cpu_gen.manual_seed(2)).indices.cpu(),
                 sample_sdcl_pairs(labels.to(device), preds.to(device), preds_aug.to(device), 4,
                                   generator=cpu_gen.manual_seed(2)).negative_index.cpu()]
    cpu = [sample_cwcl_anchors(labels, preds, 15, 8, generator=cpu_gen.manual_seed(2)).indices,
           sample_sdcl_pairs(labels, preds, preds_aug, 4,
                             generator=cpu_gen.manual_seed(2)).negative_index]
    assert all(torch.equal(a, b) for a, b in zip(on_device, cpu))
    emb = [torch.nn.functional.normalize(torch.randn(2, 8, 24, 24, device=device), dim=1)]
    view = ViewOutput(torch.randn(2, 19, 24, 24, device=device),
                      torch.randn(2, 19, 24, 24, device=device), [], emb)
    output = ModelOutput(view, torch.randn(2, 19, 6, 6, device=device), view)
    criterion = BlindNetCriterion(use_cwcl=True, use_sdcl=True, w4=0.3,
                                  contrast_max_views=8, num_patch=4)
    assert torch.isfinite(criterion(output, labels.to(device), cpu_gen)["total"])
