"""Slurm partitions read from `sinfo`, a job's request checked against them, and the runtime cap of retries."""

from __future__ import annotations

import pytest

from plasmidlm import PlasmidlmError, cluster, resources
from plasmidlm.cluster import Node, Partition, Request

# `cluster.SINFO` on a cluster with a GPU partition of two node kinds, a default CPU partition and a short one
# that shares the CPU node, and the CI node (tests/slurm/start.sh) in its debug partition: the formats Slurm 22.05
# writes (time limits as days-hours:minutes:seconds, or minutes:seconds below an hour; "+" after a range).
SINFO_TEXT = """\
gpu|gpu01|64|512000|gpu:a100:4(S:0-1)|2-00:00:00
gpu|gpu02|128|256000+|gpu:v100:2,gpu:t4:1|2-00:00:00
cpu*|node01|128|1000000|(null)|1-00:00:00
short|node01|128|1000000|(null)|1:00
debug|vm|2|21694|gpu:2|infinite
"""


def test_sinfo_gives_each_partition_its_nodes_default_and_time_limit():
    partitions = cluster.parse_sinfo(SINFO_TEXT)
    assert sorted(partitions) == ["cpu", "debug", "gpu", "short"]
    assert partitions["gpu"] == Partition("gpu", default=False, max_minutes=2 * 24 * 60, nodes=(
        Node("gpu01", 64, 512000, 4), Node("gpu02", 128, 256000, 3)))
    assert partitions["cpu"].default and partitions["cpu"].max_minutes == 24 * 60
    assert partitions["short"].max_minutes == 1
    assert partitions["debug"].max_minutes is None and partitions["debug"].nodes == (Node("vm", 2, 21694, 2),)


@pytest.mark.parametrize("text, minutes", [("infinite", None), ("30", 30), ("1:00", 1), ("1:30", 2),
                                           ("2:00:00", 120), ("1-00:00:00", 1440), ("1-02", 1560)])
def test_time_limits_in_minutes(text, minutes):
    assert cluster.time_limit_minutes(text) == minutes


def test_the_default_partition_serves_a_job_without_one_and_an_unknown_name_is_an_error():
    partitions = cluster.parse_sinfo(SINFO_TEXT)
    assert cluster.partition_named(partitions, None).name == "cpu"
    assert cluster.partition_named(partitions, "gpu").name == "gpu"
    with pytest.raises(PlasmidlmError, match=r"slurm_partition 'a100': no such partition \(sinfo lists cpu, debug"):
        cluster.partition_named(partitions, "a100")
    without_default = {name: partition for name, partition in partitions.items() if not partition.default}
    with pytest.raises(PlasmidlmError, match="no slurm_partition given and the cluster has no default partition"):
        cluster.partition_named(without_default, None)


def test_a_request_is_what_the_slurm_executor_asks_sbatch_for():
    assert cluster.job_request({"gpu": 2, "cpus_per_gpu": 8, "mem_mb": 4000}, threads=8) == Request(16, 4000, 2)
    assert cluster.job_request({"gpu": 0, "cpus_per_gpu": 8, "mem_mb": 4000}, threads=4) == Request(4, 4000, 0)
    assert cluster.job_request({"gpu": 1, "cpus_per_task": 3}, threads=8) == Request(3, None, 1)
    # memory that depends on inputs not made yet is a "<TBD>" string until they are
    assert cluster.job_request({"mem_mb": "<TBD>"}, threads=2) == Request(2, None, 0)


@pytest.mark.parametrize("request_, fits", [
    (Request(64, 512000, 4), True),
    (Request(100, 200000, 3), True),  # gpu02: 3 GPUs of two models
    (Request(100, 300000, 3), False),  # gpu01 has the memory, gpu02 the CPUs: no node has both
    (Request(16, None, 5), False),
    (Request(129, None, 1), False),
    (Request(8, 600000, 1), False),
])
def test_a_request_fits_when_one_node_has_all_of_it(request_, fits):
    partition = cluster.parse_sinfo(SINFO_TEXT)["gpu"]
    if fits:
        cluster.check_fits("train", request_, partition)
    else:
        with pytest.raises(PlasmidlmError) as error:
            cluster.check_fits("train", request_, partition)
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"rule train asks Slurm for {cluster.describe(request_)}, more than any node of "
                                  f"partition 'gpu' has (largest: gpu01 with 64 CPUs, 4 GPUs, 512000 MB)")


def test_a_retry_asks_for_at_most_the_partitions_time_limit_or_the_configured_one():
    partitions = cluster.parse_sinfo(SINFO_TEXT)
    assert cluster.runtime_limit(partitions["short"], fallback=600) == 1
    assert cluster.runtime_limit(partitions["debug"], fallback=600) == 600  # no limit in Slurm: the config's
    assert cluster.runtime_limit(None, fallback=None) is None
    limit = cluster.runtime_limit(partitions["gpu"], fallback=None)
    assert [resources.runtime("train", {}, attempt, cap=limit) for attempt in (1, 2, 3)] == [1440, 2880, 2880]
    assert resources.runtime("train", {}, 1, cap=1) == 1


def test_a_retry_asks_for_at_most_the_largest_nodes_memory():
    first = resources.mem_mb("train", {})
    assert resources.mem_mb("train", {}, 3, cap=2 * first + 50) == 2 * first + 50
    assert resources.mem_mb("train", {}, 3, cap=first // 2) == first  # above the node already: check_fits says so
    assert resources.mem_mb("train", {}, 3) == 3 * first


def test_without_sinfo_nothing_is_read(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert cluster.read_partitions() == {}
