"""The workflow through a real Slurm cluster with `snakemake --profile slurm`, compared with a local run.

The Slurm run is the shared finished run's config cut to one experiment and the baselines without a model
(`slurm_config`): every kind of job a cluster treats differently (data steps, the training checkpoint and the
evaluation jobs it adds, report) at a third of the jobs, each of which pays Slurm's submission and polling.

Needs a Slurm cluster with a node that is up. CI starts a single-node one on its own machine with
`tests/slurm/start.sh` (root, Debian). Without Slurm the test is skipped and says why; with
PLASMIDLM_REQUIRE_SLURM=1 (set by .ci/run once start.sh succeeded) a missing cluster is a failure instead.

The command line adds to the shipped profile only what a small CPU-only test cluster needs:
- `--set-resources`: no GPU (the profile gives one to evaluation, the rules train.gpus / pretrain.gpus to training
  and pretraining) and small memory
  requests. A command-line `--set-resources` replaces the profile's whole `set-resources` block.
- `--max-threads <CPUs of a node>`: the profile's `set-threads` (8 for training) is larger than the node.
- `--slurm-status-command squeue` when `sacct` does not work (a cluster without accounting storage).
- `--slurm-init-seconds-before-status-checks 2` (the plugin's default is 40 s) and
  `--slurm-keep-successful-logs`, so that the Slurm log of every job can be checked afterwards.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO_ROOT

SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RUN_TIMEOUT_S = 1200
TEST_MEM_MB = 2000  # enough for the reduced demo's tiny model; the rules ask for more (for real models and data)


def _run(command: list[str], timeout: float = 3) -> subprocess.CompletedProcess | None:
    """A Slurm client command under a timeout (a dead controller makes them hang); None if it timed out."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def slurm_unavailable() -> str | None:
    """Why Slurm cannot run the test here, or None."""
    if shutil.which("sinfo") is None:
        return "no Slurm here: sinfo not found (as root on Debian, tests/slurm/start.sh installs and starts one)"
    result = _run(["sinfo", "--noheader", "--format=%T"])
    if result is None:
        return "Slurm controller not answering: sinfo timed out (tests/slurm/start.sh starts one)"
    if result.returncode != 0:
        return f"sinfo failed: {result.stderr.strip()} (tests/slurm/start.sh starts a cluster)"
    states = [state.rstrip("*~#!%$@^-") for state in result.stdout.split()]
    if not any(state in ("idle", "mixed", "allocated", "completing") for state in states):
        return f"no Slurm node is up (sinfo node states: {', '.join(states) or 'none'})"
    return None


def node_cpus() -> int:
    """CPUs of the smallest node ("2" or "2+" in sinfo's output)."""
    result = _run(["sinfo", "--noheader", "--format=%c"])
    return min(int(value.rstrip("+")) for value in result.stdout.split())


def sacct_works() -> bool:
    result = _run(["sacct", "--noheader", "-X", "--format=JobID"], timeout=10) if shutil.which("sacct") else None
    return result is not None and result.returncode == 0


def profile_gpu_rules() -> list[str]:
    """The rules that get a GPU: from the slurm profile, and training and pretraining (their rules ask for
    train.gpus / pretrain.gpus)."""
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    from_profile = [rule for rule, resources in profile.get("set-resources", {}).items()
                    if {"gpu", "gres", "gpu_model"} & set(resources)]
    return sorted({"train", "pretrain", *from_profile})


def rules_asking_for_memory(more_than: int) -> list[str]:
    """The rules whose memory request (plasmidlm.resources, before any input) is above `more_than` MB."""
    from plasmidlm import resources

    return [rule for rule in resources.MEMORY if resources.mem_mb(rule, {}) > more_than]


def slurm_job_states(job_ids: list[str]) -> dict[str, str]:
    """Final state of each job: from squeue (finished jobs stay there MinJobAge seconds), else from the
    controller's job-completion file (JobCompType=jobcomp/filetxt, as on the test cluster)."""
    states = {}
    result = _run(["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i %T"],
                  timeout=10)
    if result is not None and result.returncode == 0:
        states.update(line.split() for line in result.stdout.splitlines() if line.strip())
    config = _run(["scontrol", "show", "config"], timeout=10)
    match = re.search(r"^JobCompLoc\s*=\s*(\S+)", config.stdout if config else "", re.MULTILINE)
    if match and Path(match.group(1)).is_file():
        for line in Path(match.group(1)).read_text().splitlines():
            fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
            if fields.get("JobId") in job_ids:
                states.setdefault(fields["JobId"], fields.get("JobState", "?"))
    return states


@pytest.fixture(scope="session")  # session, like finished_run, and set up first: skip before the local run
def slurm():
    reason = slurm_unavailable()
    if reason:
        if os.environ.get("PLASMIDLM_REQUIRE_SLURM") == "1":
            pytest.fail(f"PLASMIDLM_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


def slurm_config(finished_run, path: Path) -> Path:
    """The finished run's config cut to what needs no second look through Slurm: its first experiment, the k-mer
    and majority baselines, no evidence and no predictions. Every rule kept runs as in the local run, with the
    same seeds, so its outputs must be the same files."""
    config = yaml.safe_load(finished_run.config.read_text())
    first = next(iter(config["experiments"]))
    config["experiments"] = {first: config["experiments"][first]}
    config["baselines"] |= {name: {"enabled": False} for name in ("composition", "cnn", "embeddings")}
    config["evidence"] = {"enabled": False}
    config.pop("predict", None)
    path.write_text(yaml.safe_dump(config))
    return path


def read_gzip(path: Path) -> bytes:
    with gzip.open(path, "rb") as handle:
        return handle.read()


def accuracies(metrics_path: Path) -> dict:
    """Every value named `accuracy` in a metrics.json, by its path (e.g. "window", "validation/window",
    "window/ci95")."""
    found = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "accuracy":
                    found["/".join(path)] = value
                else:
                    walk(value, (*path, key))

    walk(json.loads(metrics_path.read_text()), ())
    return found


def test_workflow_runs_through_slurm_and_matches_the_local_run(slurm, finished_run, tmp_path):
    workdir = tmp_path / "slurm_run"
    workdir.mkdir()
    config = slurm_config(finished_run, tmp_path / "slurm.yaml")
    # No GPU, and small memory requests; this replaces the profile's whole set-resources block.
    small = [f"{rule}:gpu=0" for rule in profile_gpu_rules()] + [
        f"{rule}:mem_mb={TEST_MEM_MB}" for rule in rules_asking_for_memory(more_than=TEST_MEM_MB)]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"),
               "--profile", "slurm", "--directory", str(workdir), "--configfile", str(config),
               "--set-resources", *small, "--max-threads", str(node_cpus()),
               "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]
    if not sacct_works():
        command += ["--slurm-status-command", "squeue"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Using profiles slurm" in output

    # Every job went through Slurm: submitted with sbatch, finished COMPLETED, and its Slurm log shows it ran.
    submitted = {}  # Slurm job id -> rule
    for job_id, log in SUBMITTED.findall(output):
        rule = re.search(r"slurm_logs/rule_(\w+?)(/|$)", log).group(1)
        submitted[job_id] = rule
        assert f"Finished jobid: 0 (Rule: {rule})" in Path(log).read_text(), log
    counts = Counter(submitted.values())
    planned = Counter(rule for rule in re.findall(r"^(?:rule|checkpoint) (\w+):$", output, re.MULTILINE))
    assert counts == planned  # every job of the run went through Slurm, once
    assert set(counts) == {"validate", "select_classes", "sketch", "near_duplicates", "near_duplicate_groups",
                           "split", "held_out_windows", "training_windows", "kmer_coverage", "leakage", "train",
                           "evaluate_checkpoint", "kmer_baseline", "majority_baseline", "provenance", "report",
                           "manifest"}
    assert not re.search(r"^local(?:rule|checkpoint) (?!all:)", output, re.MULTILINE), "a job ran outside Slurm"
    states = slurm_job_states(list(submitted))
    assert states == dict.fromkeys(submitted, "COMPLETED")
    print(f"\n{len(submitted)} Slurm jobs, all COMPLETED: " + ", ".join(f"{rule} x{n}" for rule, n in
                                                                     sorted(counts.items())))
    for line in output.splitlines():
        if SUBMITTED.search(line):
            print(line.strip())

    # The same results as the local run of the same config.
    local, remote = finished_run.run, workdir / "results" / finished_run.run.name
    experiments = sorted(path.parent.parent.name for path in remote.glob("*/model/train_summary.json"))
    assert experiments == [next(iter(yaml.safe_load(config.read_text())["experiments"]))]
    assert (remote / "data" / "split.tsv").read_bytes() == (local / "data" / "split.tsv").read_bytes()
    for name in ("val_windows.tsv.gz", "test_windows.tsv.gz"):
        assert read_gzip(remote / "data" / name) == read_gzip(local / "data" / name), name
    n_checkpoints = 0
    for experiment in experiments:
        assert read_gzip(remote / experiment / "train_windows.tsv.gz") == read_gzip(
            local / experiment / "train_windows.tsv.gz")
        summary = json.loads((local / experiment / "model" / "train_summary.json").read_text())
        remote_summary = json.loads((remote / experiment / "model" / "train_summary.json").read_text())
        assert remote_summary["checkpoints"] == summary["checkpoints"]
        for step in summary["checkpoints"]:
            metrics = Path(experiment, "eval", f"checkpoint-{step}", "metrics.json")
            assert accuracies(remote / metrics) == accuracies(local / metrics), metrics
            # the same model: the same probabilities for every test window
            predictions = metrics.with_name("predictions.tsv.gz")
            pd.testing.assert_frame_equal(pd.read_csv(remote / predictions, sep="\t"),
                                          pd.read_csv(local / predictions, sep="\t"))
            n_checkpoints += 1
    assert counts["evaluate_checkpoint"] == n_checkpoints
    remote_baselines = sorted(remote.glob("baselines/*/metrics.json"))
    assert [path.parent.name for path in remote_baselines] == ["kmer", "majority"]
    for metrics in remote_baselines:
        assert accuracies(metrics) == accuracies(local / metrics.relative_to(remote)), metrics
