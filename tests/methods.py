"""Every training method as a tiny (model, criterion, batch) for tests that must hold for all of
them (DDP options, CUDA determinism): R18, crop 64, batch 2, random trunk."""

import torch

import network
from loss import BlindNetCriterion
from utils.labels import IGNORE_LABEL

BLINDNET_LOSSES = dict(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2, w3=0.3, w4=0.3,
                       contrast_max_classes=4, contrast_max_views=8, num_patch=4)
# method -> (--wt_layer, criterion keyword arguments); as the demo and the scripts run them
# (the criterion reads the whitening mode from --wt_layer).
METHODS = {
    "baseline": ("0000000", {}),
    "blindnet": ("0011100", BLINDNET_LOSSES),
    "ca_only": ("0011100", dict(use_ca=True, w1=0.2, w2=0.2)),
    "ibn": ("0044400", {}),
    "iw": ("0011100", dict(wt_reg_weight=0.8, relax_denom=0.0)),
    "isw": ("0022200", dict(wt_reg_weight=0.6)),
    "sw": ("0055500", {}),
}
ARCH = "network.deepv3.DeepR18V3PlusD"


def build(method, device="cpu", seed=0):
    """``(model, criterion)`` of ``method`` on ``device``, seeded."""
    wt_layer, kwargs = METHODS[method]
    torch.manual_seed(seed)
    model = network.get_net(ARCH, 19, [int(c) for c in wt_layer], pretrained=False)
    criterion = BlindNetCriterion(wt_layer=[int(c) for c in wt_layer], **kwargs)
    return model.to(device), criterion.to(device)


def batch(criterion, device="cpu", crop=64, size=2, seed=0, ignore_all=False):
    """A training batch dict (two views when the criterion needs them) of blocky labels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 3, crop, crop, generator=generator)
    labels = torch.randint(0, 5, (size, crop // 16, crop // 16), generator=generator) * 3
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)
    if ignore_all:  # no valid pixel: no anchor for CWCL / SDCL
        labels = torch.full_like(labels, IGNORE_LABEL)
    item = {"image": images.to(device), "label": labels.to(device)}
    if criterion.needs_two_views:
        item["image_aug"] = (images + 0.3 * torch.randn(images.shape, generator=generator)).to(
            device)
    return item


def step(model, criterion, item, generator_seed=0):
    """One forward and backward; returns the loss terms."""
    output = model(item["image"], item.get("image_aug"),
                   with_embeddings=criterion.needs_embeddings)
    terms = criterion(output, item["label"], torch.Generator().manual_seed(generator_seed))
    terms["total"].backward()
    return terms
