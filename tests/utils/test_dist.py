import pytest
import torch
import torch.multiprocessing as mp

from utils import dist as dist_utils
from tests.gloo import free_port, join_gloo_group


def test_single_process_without_launcher(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    state = dist_utils.init_distributed(device="cpu")
    assert (state.rank, state.world_size, state.local_rank) == (0, 1, 0)
    assert not state.distributed and state.is_main
    assert state.device == torch.device("cpu")
    assert state.backend == "none"
    assert not torch.distributed.is_initialized()
    # Collectives are identities in a single process.
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(dist_utils.all_reduce_sum(t.clone()), t)
    assert torch.equal(dist_utils.all_reduce_mean(t.clone()), t)
    assert dist_utils.get_world_size() == 1 and dist_utils.is_main_process()
    dist_utils.barrier()
    dist_utils.cleanup()


def test_legacy_local_rank_flag_used_without_env(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert dist_utils.init_distributed(device="cpu", local_rank=3).local_rank == 3
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist_utils.init_distributed(device="cpu", local_rank=3).local_rank == 1


def test_bad_env_value_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        dist_utils.init_distributed(device="cpu")


def test_cuda_request_without_gpu_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="--device cuda"):
        dist_utils.select_device("cuda")


def _worker(rank, world_size, port, results):
    state = join_gloo_group(rank, world_size, port)
    summed = dist_utils.all_reduce_sum(torch.tensor([float(rank + 1)]))
    mean = dist_utils.all_reduce_mean(torch.tensor([float(rank)]))
    results[rank] = (state.backend, state.world_size, summed.item(), mean.item())
    dist_utils.cleanup()


def test_two_processes_on_gloo():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(2, free_port(), results), nprocs=2, join=True)
    assert dict(results) == {0: ("gloo", 2, 3.0, 0.5), 1: ("gloo", 2, 3.0, 0.5)}


def test_describe_collective_failure_names_the_timeout():
    from utils.dist import describe_collective_failure

    for text in ("[gloo/unbound_buffer.cc:78] Timed out waiting 6000ms for recv operation",
                 "Application timeout caused pair closure"):
        message = describe_collective_failure(RuntimeError(text), 0.1)
        assert message.startswith("a collective waited longer than --dist_timeout 0.1 minutes")
    assert "another rank left" in describe_collective_failure(
        RuntimeError("[pair.cc:561] Connection closed by peer [127.0.0.1]:26499"), 30)
    assert describe_collective_failure(RuntimeError("CUDA out of memory"), 30) is None
    # torch.utils.data's own timeout is a data worker's, not a collective's.
    assert describe_collective_failure(
        RuntimeError("DataLoader timed out after 5 seconds"), 30) is None
    assert describe_collective_failure(ValueError("timeout"), 30) is None
