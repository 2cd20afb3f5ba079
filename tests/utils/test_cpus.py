"""Pool sizes follow the CPUs this process may use (affinity, cgroup quota), not the node."""

import os

import pytest

from utils import cpus


@pytest.fixture
def two_of_64(monkeypatch, tmp_path):
    """A SLURM-like allocation: 2 CPUs allowed on a 64-core node (no cgroup quota)."""
    monkeypatch.setattr(cpus, "CGROUP_CPU_MAX", tmp_path / "no-cgroup")
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5}, raising=False)


def test_the_affinity_set_not_the_node_sizes_the_pools(two_of_64, tmp_path):
    assert cpus.available_cpus() == 2
    assert cpus.pool_size(8) == 2 and cpus.pool_size(8, sharers=4) == 1


def test_a_cgroup_quota_caps_the_affinity_set(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    quota = tmp_path / "cpu.max"
    quota.write_text("250000 100000\n")  # docker --cpus 2.5
    assert cpus.available_cpus(quota) == 3
    quota.write_text("max 100000\n")  # no quota
    assert cpus.available_cpus(quota) == 16


def test_the_training_default_of_num_workers_uses_the_allocation(two_of_64, monkeypatch):
    import cli

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert cli.parse_args("train", ["--dataset", "gtav"]).num_workers == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two processes share the 2 CPUs
    assert cli.parse_args("train", ["--dataset", "gtav"]).num_workers == 1
