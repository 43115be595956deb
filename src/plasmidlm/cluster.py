"""What the partitions of a Slurm cluster offer (from `sinfo`), and whether a job's request fits them.

Slurm accepts a job that asks for more CPUs, memory or GPUs than every node of its partition has, or for more time
than the partition allows, and leaves it pending forever (reason PartitionConfig, Resources or
PartitionTimeLimit). `check_fits` stops the workflow before such a job is submitted; `runtime_limit` is the most
time a job (a retry, whose runtime grows with its attempt) may ask for.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping

from plasmidlm import PlasmidlmError

logger = logging.getLogger(__name__)

# One line per node and partition: partition (a trailing * marks the default), node, CPUs, memory (MB), generic
# resources, time limit.
SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%N|%c|%m|%G|%l"]
SINFO_TIMEOUT_S = 30


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int
    gpus: int


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    max_minutes: int | None  # None: no time limit
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Request:
    """What one job asks Slurm for; mem_mb is None while it is not known (it depends on inputs not made yet)."""

    cpus: int
    mem_mb: int | None
    gpus: int


def gres_gpus(gres: str) -> int:
    """GPUs in sinfo's generic resources of a node: "gpu:2", "gpu:a100:4(S:0-1)", "gpu:a100:2,gpu:v100:1",
    "(null)"."""
    total = 0
    for item in re.split(r",(?![^()]*\))", gres):
        fields = re.sub(r"\(.*\)$", "", item.strip()).split(":")
        if fields[0] == "gpu" and len(fields) > 1 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def time_limit_minutes(text: str) -> int | None:
    """sinfo's time limit in minutes ("infinite" -> None): [days-]hours:minutes:seconds, minutes:seconds or
    minutes, as Slurm writes them; seconds round up."""
    if text in ("infinite", "UNLIMITED", "n/a"):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


def parse_sinfo(text: str) -> dict[str, Partition]:
    """The partitions in the output of `SINFO`, by name."""
    nodes: dict[str, list[Node]] = {}
    limits, defaults = {}, set()
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 6:
            raise PlasmidlmError(f"sinfo: cannot read line {line.strip()!r} (expected {SINFO[-1]})")
        partition, node, cpus, mem_mb, gres, limit = fields
        name = partition.rstrip("*")
        if partition.endswith("*"):
            defaults.add(name)
        nodes.setdefault(name, []).append(Node(node, int(cpus.rstrip("+")), int(mem_mb.rstrip("+")), gres_gpus(gres)))
        limits[name] = time_limit_minutes(limit)
    return {name: Partition(name, name in defaults, limits[name], tuple(members)) for name, members in nodes.items()}


def read_partitions() -> dict[str, Partition]:
    """The cluster's partitions, from `sinfo`; none where there is no sinfo (not a Slurm cluster)."""
    if shutil.which(SINFO[0]) is None:
        logger.info("sinfo not found: the jobs' requests are not checked against Slurm's partitions")
        return {}
    try:
        result = subprocess.run(SINFO, capture_output=True, text=True, timeout=SINFO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PlasmidlmError(f"sinfo did not answer within {SINFO_TIMEOUT_S} s: is the Slurm controller up?") from None
    if result.returncode:
        raise PlasmidlmError(f"sinfo failed: {result.stderr.strip()}")
    return parse_sinfo(result.stdout)


def partition_named(partitions: Mapping[str, Partition], name: str | None) -> Partition:
    """The partition `name` (a job's slurm_partition), or the default partition when name is None or empty."""
    if name:
        if name not in partitions:
            raise PlasmidlmError(f"slurm_partition {name!r}: no such partition (sinfo lists "
                                 f"{', '.join(sorted(partitions))})")
        return partitions[name]
    default = [partition for partition in partitions.values() if partition.default]
    if not default:
        raise PlasmidlmError(f"no slurm_partition given and the cluster has no default partition (sinfo lists "
                             f"{', '.join(sorted(partitions))}); set slurm_partition in the profile's "
                             f"default-resources")
    return default[0]


def job_request(resources: Mapping, threads: int) -> Request:
    """What the Slurm executor asks sbatch for, from a job's resources: --cpus-per-gpu times the GPUs when both are
    set, else --cpus-per-task (cpus_per_task, or the job's threads); --mem; --gpus."""
    gpus = int(resources.get("gpu") or 0)
    if gpus and resources.get("cpus_per_gpu") and resources.get("cpus_per_task") is None:
        cpus = gpus * int(resources["cpus_per_gpu"])
    else:
        cpus = max(1, int(resources.get("cpus_per_task") or threads))
    mem_mb = resources.get("mem_mb")
    return Request(cpus, mem_mb if isinstance(mem_mb, int) else None, gpus)


def largest_node(partition: Partition) -> Node:
    return max(partition.nodes, key=lambda node: (node.gpus, node.cpus, node.mem_mb))


def fits(request: Request, node: Node) -> bool:
    return (request.cpus <= node.cpus and request.gpus <= node.gpus
            and (request.mem_mb is None or request.mem_mb <= node.mem_mb))


def describe(request: Request | Node) -> str:
    memory = "" if request.mem_mb is None else f", {request.mem_mb} MB"
    return f"{request.cpus} CPUs, {request.gpus} GPUs{memory}"


def check_fits(rule: str, request: Request, partition: Partition) -> None:
    """A PlasmidlmError when no node of `partition` has the CPUs, memory and GPUs `request` asks for together."""
    if not any(fits(request, node) for node in partition.nodes):
        node = largest_node(partition)
        raise PlasmidlmError(
            f"rule {rule} asks Slurm for {describe(request)}, more than any node of partition {partition.name!r} has "
            f"(largest: {node.name} with {describe(node)}); it would pend forever: lower the request (the config's "
            f"gpus, the profile's set-threads / set-resources) or choose another slurm_partition")


def runtime_limit(partition: Partition | None, *, fallback: int | None) -> int | None:
    """The most minutes a job may ask for: the partition's time limit, or `fallback` (the config's
    cluster.max_runtime) where the partition has none or is not known; None for no limit."""
    if partition is not None and partition.max_minutes is not None:
        return partition.max_minutes
    return fallback
