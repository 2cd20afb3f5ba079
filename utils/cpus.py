"""How many CPUs this process may use, for sizing worker pools.

``os.cpu_count()`` is the node's core count; a SLURM job, ``taskset`` or a container's
cpuset gives the process fewer. ``os.sched_getaffinity`` is that allocation; a cgroup v2
CPU quota (``cpu.max``, e.g. ``docker --cpus``) caps it further. Sizing pools from the node
count oversubscribes the allocation (8 workers time-sharing 2 allowed cores).
"""

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _affinity_count():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS / Windows: no affinity API


def _cgroup_quota(path):
    """CPUs of a cgroup v2 quota (``"<quota> <period>"``, rounded up), or None (``max``,
    absent or unreadable)."""
    try:
        quota, period = path.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_cpus(cgroup_cpu_max=None):
    """CPUs this process may run on: its affinity set, capped by a cgroup v2 quota
    (``cgroup_cpu_max``: the ``cpu.max`` file, default :data:`CGROUP_CPU_MAX`)."""
    count = _affinity_count()
    quota = _cgroup_quota(Path(cgroup_cpu_max or CGROUP_CPU_MAX))
    return max(1, min(count, quota) if quota else count)


def pool_size(limit=8, sharers=1):
    """Default size of one worker pool: this process's share of :func:`available_cpus`
    (``sharers`` processes of a node split it, e.g. torchrun's ``LOCAL_WORLD_SIZE``), at
    least 1 and at most ``limit``."""
    return max(1, min(limit, available_cpus() // max(1, int(sharers))))
