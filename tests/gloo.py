"""Two-process gloo groups for tests that run collectives on CPU (``torch.multiprocessing``)."""

import os
import socket

from utils import dist as dist_utils


def free_port():
    """A TCP port free on 127.0.0.1 right now (the rendezvous port of one spawned group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def join_gloo_group(rank, world_size, port):
    """In a spawned worker: set torchrun's environment and join the CPU (gloo) group.

    Returns ``utils.dist.init_distributed``'s state.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    return dist_utils.init_distributed(device="cpu")
