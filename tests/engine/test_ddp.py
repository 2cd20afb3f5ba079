"""DDP options decided from the model and the criterion (engine/ddp.py): checked against what a
step really leaves without gradient, then run by two gloo processes (and, on two GPUs, by
NCCL with SyncBatchNorm)."""

import pytest
import torch
import torch.multiprocessing as mp

from engine.ddp import buffers_need_broadcast, ddp_options, unused_parameter_names, wrap_ddp
from tests import methods
from tests.gloo import free_port, join_gloo_group


@pytest.mark.parametrize("method", sorted(methods.METHODS))
def test_unused_parameters_are_exactly_those_a_step_leaves_without_gradient(method, device):
    model, criterion = methods.build(method, device)
    # A batch with no valid pixel has no anchor: the heads must still get a (zero) gradient.
    for ignore_all in (False, True) if criterion.needs_embeddings else (False,):
        model.zero_grad(set_to_none=True)
        item = methods.batch(criterion, device, crop=32, ignore_all=ignore_all)
        methods.step(model, criterion, item)
        no_grad = sorted(name for name, p in model.named_parameters()
                         if p.requires_grad and p.grad is None)
        assert no_grad == sorted(unused_parameter_names(model, criterion.needs_embeddings))
    options = ddp_options(model, criterion.needs_embeddings)
    assert options["find_unused_parameters"] == (method != "blindnet")
    assert options["gradient_as_bucket_view"]


def test_buffers_are_broadcast_only_where_no_module_keeps_them_in_step():
    plain, _ = methods.build("baseline")
    assert buffers_need_broadcast(plain)  # BatchNorm on one rank's batch (gloo, CPU)
    assert not buffers_need_broadcast(torch.nn.SyncBatchNorm.convert_sync_batchnorm(plain))
    sw, _ = methods.build("sw")  # Switchable Whitening all-reduces its statistics itself
    assert not buffers_need_broadcast(torch.nn.SyncBatchNorm.convert_sync_batchnorm(sw))


def _train_two_steps(method, device, find_unused=None):
    """Two steps of ``method`` in DDP (its decided options, or ``find_unused`` forced);
    returns (options, float64 weight fingerprint, BatchNorm running means)."""
    from engine.config import OptimConfig
    from engine.trainer import new_train_state, train_step

    model, criterion = methods.build(method, device)
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    state = new_train_state(model, OptimConfig(lr=0.01, max_iter=10), device=device)
    state.net, options = wrap_ddp(model, device, criterion.needs_embeddings)
    if find_unused is not None:
        state.net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            **{**options, "find_unused_parameters": find_unused})
    rank = torch.distributed.get_rank()
    for k in range(2):  # each rank its own batch: DDP must average the gradients
        item = methods.batch(criterion, device, crop=32, seed=10 * k + rank)
        train_step(state, item, criterion, device=device, two_view=criterion.needs_two_views,
                   with_embeddings=criterion.needs_embeddings)
    weights = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    stats = torch.cat([m.running_mean.detach().flatten() for m in model.modules()
                       if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)])
    return options, [weights.sum().item(), weights.square().sum().item()], stats.cpu()


def _gloo_worker(rank, port, results):
    torch.set_num_threads(1)  # two processes on a shared CPU
    join_gloo_group(rank, 2, port)
    device = torch.device("cpu")
    for method in ("baseline", "blindnet"):
        options, fingerprint, _ = _train_two_steps(method, device)
        results[(method, rank)] = (options, fingerprint)
    try:  # the control: the baseline's idle heads without find_unused_parameters
        _train_two_steps("baseline", device, find_unused=False)
        results[("control", rank)] = "ran"
    except RuntimeError as error:
        results[("control", rank)] = str(error)


def test_two_gloo_processes_train_with_the_decided_options():
    results = mp.Manager().dict()
    mp.spawn(_gloo_worker, args=(free_port(), results), nprocs=2, join=True)
    for method, find_unused in (("baseline", True), ("blindnet", False)):
        (options, first), (_, second) = results[(method, 0)], results[(method, 1)]
        assert options == {"find_unused_parameters": find_unused,
                           "gradient_as_bucket_view": True, "broadcast_buffers": True}
        assert first == second  # same weights on both ranks after two steps
    # Without find_unused_parameters the baseline fails at its second step: the decision
    # is needed, not a habit.
    assert "finished reduction in the prior iteration" in results[("control", 0)]


def _nccl_worker(rank, port, results):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    from utils import dist as dist_utils

    state = dist_utils.init_distributed(device="cuda")
    options, fingerprint, stats = _train_two_steps("blindnet", state.device)
    results[rank] = (options, fingerprint, stats)
    dist_utils.cleanup()


@pytest.mark.two_gpus
def test_two_gpus_syncbatchnorm_keeps_buffers_in_step_without_broadcast():
    results = mp.Manager().dict()
    mp.spawn(_nccl_worker, args=(free_port(), results), nprocs=2, join=True)
    (options, first, stats0), (_, second, stats1) = results[0], results[1]
    assert options["broadcast_buffers"] is False and not options["find_unused_parameters"]
    assert first == second
    assert torch.equal(stats0, stats1)  # SyncBatchNorm: the same running statistics


@pytest.mark.parametrize("blindnet", [False, True])
def test_a_rein_step_leaves_no_trainable_parameter_without_gradient(blindnet):
    """The frozen trunk (requires_grad False) is not DDP's concern; every adapter, head and
    (with BlindNet's terms) projection-head parameter gets a gradient."""
    import network
    from loss import MASK_PREDICTIONS, BlindNetCriterion

    torch.manual_seed(0)
    losses = dict(methods.BLINDNET_LOSSES) if blindnet else {}
    model = network.get_net("network.vfm.ReinDinov2SMask2Former", 19, [0] * 7, pretrained=False,
                            depth=2, num_queries=4, num_decoder_layers=2, pixel_decoder_layers=1,
                            img_size=32, in_blocks=(0, 1) if blindnet else (),
                            embeddings=blindnet)
    criterion = BlindNetCriterion(prediction=MASK_PREDICTIONS, m2f_num_points=16, **losses)
    methods.step(model, criterion, methods.batch(criterion, crop=32))
    no_grad = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == unused_parameter_names(model, criterion.needs_embeddings) == []
    assert not ddp_options(model, criterion.needs_embeddings)["find_unused_parameters"]
    assert not any(p.requires_grad for n, p in model.named_parameters()
                   if n.startswith("backbone.") and ".reins." not in n)
