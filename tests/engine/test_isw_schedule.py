"""The ISW mask schedule: due once, same mask on every rank, eval/no-grad pass."""

import pytest
import torch
import torch.multiprocessing as mp

import datasets
from engine.isw import ISWMaskSchedule
from network import get_net
from utils import dist as dist_utils
from tests.gloo import free_port, join_gloo_group

ISW_WT_LAYER = (0, 0, 2, 2, 2, 0, 0)


def _model():
    torch.manual_seed(0)
    return get_net("DeepR18V3PlusD", wt_layer=ISW_WT_LAYER, pretrained=False)


def _schedule(root, trials=3):
    dataset = datasets.build_dataset("gtav", "train", root=root, training=False)
    return ISWMaskSchedule(dataset.samples, clusters=3, trials=trials, cov_stat_epoch=1,
                           seed=304, device=torch.device("cpu"))


def test_due_once_at_the_end_of_cov_stat_epoch(generated_roots):
    schedule = _schedule(generated_roots["gtav"])
    assert not schedule.due(0, None)
    assert schedule.due(1, None)
    assert not schedule.due(1, [torch.ones(2, 2, dtype=torch.bool)])
    with pytest.raises(ValueError, match="--clusters >= 2"):
        ISWMaskSchedule([], clusters=1, trials=10, cov_stat_epoch=5, seed=0, device="cpu")


def test_masks_per_layer_and_model_left_in_train_mode(generated_roots):
    model = _model().train()
    masks = _schedule(generated_roots["gtav"]).compute(model)
    assert model.training
    assert [tuple(m.shape) for m in masks] == [(64, 64), (64, 64), (128, 128)]
    assert all(0 < int(m.sum()) < m.shape[0] * (m.shape[0] - 1) // 2 for m in masks)
    assert not any(m.tril().any() for m in masks)
    # A pass does not touch the global RNG (training's draws continue unchanged).
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _schedule(generated_roots["gtav"], trials=1).compute(model)
    assert torch.equal(torch.rand(3), expected)


def _worker(rank, world_size, port, root, results):
    torch.set_num_threads(1)
    join_gloo_group(rank, world_size, port)
    results[rank] = _schedule(root).compute(_model().train())
    dist_utils.cleanup()


def test_two_gloo_processes_get_the_same_mask_as_one(generated_roots):
    root = generated_roots["gtav"]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(2, free_port(), root, results), nprocs=2, join=True)
    single = _schedule(root).compute(_model().train())
    for rank in (0, 1):
        assert [torch.equal(a, b) for a, b in zip(results[rank], single)] == [True] * 3


@pytest.mark.parametrize("arch, wt_layer, channels", [
    ("DeepR101V3PlusD", (2, 2, 0, 2, 2, 0, 0), [64, 64, 256, 512]),   # RobustNet's R101 ISW
    ("DeepMobileNetV3PlusD", ISW_WT_LAYER, [16, 32, 64]),
    ("DeepShuffleNetV3PlusD", ISW_WT_LAYER, [24, 116, 232]),
    ("DeepEffLite0V3PlusD", ISW_WT_LAYER, [16, 24, 40]),
])
def test_isw_mask_and_loss_on_every_trunk(generated_roots, arch, wt_layer, channels):
    from loss.whitening import WhiteningLoss

    torch.manual_seed(0)
    model = get_net(arch, wt_layer=wt_layer, pretrained=False)
    schedule = _schedule(generated_roots["gtav"], trials=1)
    schedule.num_images = 2
    masks = schedule.compute(model)
    assert [m.shape[0] for m in masks] == channels
    loss = WhiteningLoss("isw")
    loss.set_masks(masks)
    output = model(torch.randn(2, 3, 64, 64))
    value = loss(output.original.in_feats)
    value.backward()
    assert value.item() > 0
    assert WhiteningLoss("iw", 64.0)(output.original.in_feats).item() >= 0
