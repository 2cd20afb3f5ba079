"""``torch.distributed`` set-up and small collectives.

One code path serves every launch mode:

* no launcher (plain ``python train.py``): a single process, no process group;
* ``torchrun`` (or the legacy ``torch.distributed.launch``): rank, world size and local rank
  come from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); the backend is NCCL
  when the process drives a GPU and gloo on CPU.

Collectives below are no-ops in a single process, so callers never branch on it.
"""

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistState:
    """What a process knows about its place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def _env_int(name, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def select_device(requested="auto", local_rank=0):
    """Resolve ``--device auto|cpu|cuda`` to the device of this process."""
    if requested == "cpu":
        return torch.device("cpu")
    if requested in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if requested == "cuda":
            raise RuntimeError("--device cuda was requested but torch.cuda.is_available() is False")
        return torch.device("cpu")
    raise ValueError(f"--device must be auto, cpu or cuda, got {requested!r}")


def init_distributed(device="auto", local_rank=None, timeout_minutes=30):
    """Join the process group if launched by torchrun; otherwise run as a single process.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        local_rank: value of the legacy ``--local_rank`` flag, used only when the launcher
            did not export ``LOCAL_RANK``.
        timeout_minutes: process-group timeout (collectives that hang longer fail).

    Returns:
        DistState of this process.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", local_rank if local_rank is not None else 0)
    rank = _env_int("RANK", local_rank if world_size > 1 else 0)
    dev = select_device(device, local_rank)
    if world_size <= 1:
        return DistState(0, 1, local_rank, dev, "none")

    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, init_method="env://", rank=rank, world_size=world_size,
            timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistState(rank, world_size, local_rank, dev, backend)


def cleanup():
    """Leave the process group (safe to call in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank():
    return dist.get_rank() if is_distributed() else 0


def get_world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main_process():
    return get_rank() == 0


def barrier():
    if is_distributed():
        dist.barrier()


def broadcast_object(obj, src=0):
    """``obj`` of rank ``src`` on every rank (any picklable value; itself in one process)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_object(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(tensor):
    """Sum ``tensor`` over all ranks in place and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor):
    """Average ``tensor`` over all ranks in place and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


class _AllReduceSumWithGrad(torch.autograd.Function):
    """Sum over ranks in the forward pass; the gradient is summed over ranks too.

    Every rank's output is ``sum_k x_k``, so the gradient of the total loss over all ranks
    with respect to this rank's ``x`` is ``sum_r dL_r / d out_r``: an all-reduce of the
    incoming gradients (what ``SyncBatchNorm``'s backward does for its statistics).
    """

    @staticmethod
    def forward(ctx, tensor):
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        grad = grad_output.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_sum_with_grad(tensor):
    """Differentiable sum of ``tensor`` over all ranks (out of place; identity in one process).

    All ranks must call it in the same order, in the forward and (through autograd) in the
    backward pass, as with any collective. Works with gloo (CPU) and NCCL.
    """
    if not is_distributed():
        return tensor
    return _AllReduceSumWithGrad.apply(tensor)


def describe_collective_failure(exc, timeout_minutes):
    """A one-line explanation when ``exc`` is a collective that timed out or lost a peer.

    Returns None for any other exception. (gloo raises RuntimeError "Timed out waiting
    <ms>ms ..." or "Application timeout caused pair closure" on the waiting ranks and
    "Connection closed by peer" once a rank is gone;
    NCCL's watchdog instead aborts the process after logging the timeout itself.)
    """
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    if text.startswith("DataLoader"):  # "DataLoader timed out after N s": a worker, no peer
        return None
    # gloo: "Timed out waiting 6000ms for recv", or "Application timeout caused pair closure".
    if "timed out" in text.lower() or "timeout" in text.lower():
        return (f"a collective waited longer than --dist_timeout {timeout_minutes:g} minutes: "
                f"another rank is frozen, dead or far slower (PyTorch: "
                f"{text.splitlines()[0][-120:]})")
    if "Connection closed by peer" in text or "Connection reset by peer" in text:
        return ("another rank left the process group (crashed or was killed); see its log "
                f"(PyTorch: {text.splitlines()[0][-120:]})")
    return None
