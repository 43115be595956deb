"""The workflow through a real Slurm cluster with `snakemake --profile slurm`, compared with a local run.

The Slurm run is the shared finished run's config cut to one experiment and the baselines without a model
(`slurm_config`): every kind of job a cluster treats differently (data steps, the training checkpoint and the
evaluation jobs it adds, report) at a third of the jobs, each of which pays Slurm's submission and polling.
Beside it runs a training on two GPUs, in a partition whose time limit (2 minutes) stops it twice
(`time_limited_runs`, from the shared run's data steps), with a local uninterrupted training of the same config to
compare with. Both start with the module's first test and go on in the background (mostly waiting on the cluster and
its time limits) while the worker runs other modules; the tests that check them come last in the session
(`DEFERRED` in tests/conftest.py).

Needs a Slurm cluster with a node that is up. CI starts a single-node one on its own machine with
`tests/slurm/start.sh` (root, Debian): its node declares GPUs as a generic resource (fake devices), and a
partition 'short' with a time limit of 2 minutes. Without Slurm the test is skipped and says why; with
PLASMIDLM_REQUIRE_SLURM=1 (set by .ci/run once start.sh succeeded) a missing cluster is a failure instead.

The command line adds to the shipped profile only what a small test cluster needs:
- `--set-resources`: the profile's GPU requests as written, but 1 CPU per GPU (the profile's 8 are more than the
  node has: the partition check would stop the run), and small memory requests. A command-line `--set-resources`
  replaces the profile's whole `set-resources` block.
- `--max-threads`: the profile's `set-threads` (8 for training) is larger than the node.
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
from typing import NamedTuple

import pandas as pd
import pytest
import yaml

from conftest import REPO_ROOT, SRC, assert_same_weights, reduced_config, reduced_run_lock

SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RUN_TIMEOUT_S = 1200
TEST_MEM_MB = 2000  # enough for the reduced demo's tiny model; the rules ask for more (for real models and data)
SHORT_PARTITION = "short"  # tests/slurm/start.sh: time limit 2 minutes (a job starts in about 1 on a busy machine)
# The time-limited training: 2 GPUs, 3 checkpoints; it may start over 3 times, and needs 3 allocations.
TIMED_TRAIN = {"gpus": 2, "max_steps": 9, "save_steps": 3, "retries": 3}
# Makes each allocation of the time-limited training stop one checkpoint after the one it resumed from: the step after
# that checkpoint waits for the time limit's SIGTERM (StopOnSigterm.received), so that the training needs exactly 3
# allocations on a machine of any speed. Imported by every Python process of the Slurm run; acts in the ranks only.
WAIT_FOR_THE_TIME_LIMIT = """
import os, time
if os.environ.get("PLASMIDLM_DISTRIBUTED") == "1":
    from transformers import Trainer
    step, resumed = Trainer.training_step, {}

    def wait_one_checkpoint_in(self, *positional, **keywords):
        start = resumed.setdefault("step", self.state.global_step)
        if self.state.global_step == start + self.args.save_steps < self.state.max_steps:
            while not any(getattr(callback, "received", False) for callback in self.callback_handler.callbacks):
                time.sleep(0.2)
        return step(self, *positional, **keywords)

    Trainer.training_step = wait_one_checkpoint_in
"""


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


def profile_resources(cpus_per_gpu: int) -> list[str]:
    """The profile's set-resources as --set-resources arguments, with `cpus_per_gpu` CPUs per GPU."""
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    return [f"{rule}:{key}={cpus_per_gpu if key == 'cpus_per_gpu' else value}"
            for rule, resources in profile.get("set-resources", {}).items() for key, value in resources.items()]


def granted(job_id: str) -> dict[str, str]:
    """What Slurm granted a job and how it ended (`scontrol -d show job`, which keeps a finished job MinJobAge
    seconds): its fields, e.g. JobState, Partition, TimeLimit, and "cpu" and "gpu", the CPUs (TRES) and GPUs
    (JOB_GRES, e.g. gpu:2) it held."""
    result = _run(["scontrol", "-d", "show", "job", job_id], timeout=10)
    assert result is not None and result.returncode == 0, f"scontrol -d show job {job_id}: {result and result.stderr}"
    fields = dict(field.split("=", 1) for field in result.stdout.split() if "=" in field)
    gres = re.fullmatch(r"gpu(?::\w+)?:(\d+)", fields.get("JOB_GRES", ""))
    return fields | {"cpu": re.search(r"cpu=(\d+)", fields["TRES"]).group(1), "gpu": gres.group(1) if gres else "0"}


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


def slurm_config(path: Path) -> Path:
    """The shared reduced run's config (conftest.reduced_config) cut to what needs no second look through Slurm: its
    first experiment, the k-mer and majority baselines, no evidence and no predictions. Every rule kept runs as in
    the local run, with the same seeds, so its outputs must be the same files."""
    config = reduced_config()
    first = next(iter(config["experiments"]))
    config["experiments"] = {first: config["experiments"][first]}
    config["baselines"] |= {name: {"enabled": False} for name in ("composition", "cnn", "embeddings")}
    config["evidence"] = {"enabled": False}
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


def slurm_command(workdir: Path, config: Path, *targets: str, resources: list[str], max_threads: int) -> list[str]:
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(REPO_ROOT / "Snakefile"),
               "--profile", "slurm", "--directory", str(workdir), "--configfile", str(config),
               "--set-resources", *resources, "--max-threads", str(max_threads),
               "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]
    if not sacct_works():
        command += ["--slurm-status-command", "squeue"]
    return command


def small_memory() -> list[str]:
    return [f"{rule}:mem_mb={TEST_MEM_MB}" for rule in rules_asking_for_memory(more_than=TEST_MEM_MB)]


class TimeLimitedRuns(NamedTuple):
    slurm: subprocess.Popen  # the training through Slurm, in the short partition
    local: subprocess.Popen  # the same training on this machine, uninterrupted
    slurm_dir: Path  # their snakemake --directory
    local_dir: Path
    run: Path  # results/<run_name>, relative to either directory
    experiment: str


class SlurmRun(NamedTuple):
    process: subprocess.Popen  # snakemake --profile slurm
    workdir: Path  # its --directory
    config: Path  # its --configfile


# The Slurm runs start with the module's first test (autouse) and go on in the background, beside the rest of the
# suite; the tests that read them wait for them, and come last in the session (conftest.DEFERRED).
@pytest.fixture(scope="session", autouse=True)
def slurm_run(slurm, tmp_path_factory):
    """`slurm_config` through Slurm, from the start (the local run of the same config is the shared finished run)."""
    base = tmp_path_factory.mktemp("slurm")
    workdir = base / "slurm_run"
    workdir.mkdir()
    config = slurm_config(base / "slurm.yaml")
    # its jobs fit beside the time-limited training, which holds a CPU per GPU
    command = slurm_command(workdir, config, resources=profile_resources(cpus_per_gpu=1) + small_memory(),
                            max_threads=node_cpus() - TIMED_TRAIN["gpus"])
    with open(base / "slurm_run.out", "w") as out:
        run = SlurmRun(subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT), workdir, config)
    yield run
    if run.process.poll() is None:
        run.process.terminate()
        run.process.wait(timeout=60)


@pytest.fixture(scope="session", autouse=True)
def time_limited_runs(slurm, slurm_run, first_training_inputs, tmp_path_factory):
    """The first experiment's training with TIMED_TRAIN, through Slurm in the short partition (its allocations
    stopped by WAIT_FOR_THE_TIME_LIMIT) and locally, on copies of the shared reduced run as far as that training's
    inputs (whose data they reuse)."""
    base = tmp_path_factory.mktemp("time_limited")
    config = yaml.safe_load(slurm_config(base / "cut.yaml").read_text())
    config["train"] |= TIMED_TRAIN
    config_path = base / "timed.yaml"
    config_path.write_text(yaml.safe_dump(config))
    hook = base / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(WAIT_FOR_THE_TIME_LIMIT)
    reduced = first_training_inputs
    run, experiment = reduced.run.relative_to(reduced.workdir), next(iter(config["experiments"]))
    target = str(run / experiment / "model" / "train_summary.json")
    workdirs = {}
    with reduced_run_lock(tmp_path_factory):  # not while another worker finishes the run
        for name in ("slurm", "local"):
            workdirs[name] = shutil.copytree(reduced.workdir, base / name)
            shutil.rmtree(workdirs[name] / run / experiment / "model", ignore_errors=True)
    resources = profile_resources(cpus_per_gpu=1) + small_memory() + [f"train:slurm_partition={SHORT_PARTITION}"]
    with open(base / "slurm.out", "w") as slurm_out, open(base / "local.out", "w") as local_out:
        runs = TimeLimitedRuns(
            subprocess.Popen(slurm_command(workdirs["slurm"], config_path, target, resources=resources,
                                           max_threads=TIMED_TRAIN["gpus"]),
                             cwd=REPO_ROOT, stdout=slurm_out, stderr=subprocess.STDOUT,
                             env=os.environ | {"PYTHONPATH": f"{hook}{os.pathsep}{SRC}"}),
            subprocess.Popen([sys.executable, "-m", "snakemake", target, "--snakefile", str(REPO_ROOT / "Snakefile"),
                              "--directory", str(workdirs["local"]), "--configfile", str(config_path), "--cores", "2"],
                             cwd=REPO_ROOT, stdout=local_out, stderr=subprocess.STDOUT),
            workdirs["slurm"], workdirs["local"], run, experiment)
    yield runs
    for process in (runs.slurm, runs.local):
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def finished_output(process: subprocess.Popen, workdir: Path) -> str:
    process.wait(timeout=RUN_TIMEOUT_S)
    output = (workdir.parent / f"{workdir.name}.out").read_text()
    assert process.returncode == 0, output[-6000:]
    return output


def test_workflow_runs_through_slurm_and_matches_the_local_run(slurm_run, finished_run):
    workdir, config = slurm_run.workdir, slurm_run.config
    output = finished_output(slurm_run.process, workdir)
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
    # The GPU requests went to Slurm as written: train.gpus for training, the profile's 1 for evaluation.
    gpus = {job_id: granted(job_id)["gpu"] for job_id in submitted}
    assert {job_id: count for job_id, count in gpus.items() if count != "0"} == {
        job_id: "1" for job_id, rule in submitted.items() if rule in ("train", "evaluate_checkpoint")}
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


def test_a_job_larger_than_any_node_stops_the_run_before_anything_is_submitted(slurm, tmp_path):
    cpus = node_cpus() + 1
    config = slurm_config(tmp_path / "slurm.yaml")
    command = slurm_command(tmp_path, config, resources=profile_resources(cpus_per_gpu=cpus) + small_memory(),
                            max_threads=node_cpus())
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(rf"^rule train asks Slurm for {cpus} CPUs, 1 GPUs, {TEST_MEM_MB} MB, more than any node of "
                     rf"partition '\w+' has \(largest: \S+ with {node_cpus()} CPUs, \d+ GPUs, \d+ MB\); it would pend "
                     rf"forever", output, re.MULTILINE), output[-3000:]
    assert not SUBMITTED.search(output)

def test_a_training_stopped_twice_by_the_time_limit_ends_with_the_weights_of_an_uninterrupted_run(time_limited_runs):
    """Each allocation of the 2-GPU training gets SIGTERM at the short partition's time limit, finishes its step and
    fails; Snakemake starts it again (train.retries), with the partition's time limit as its runtime although the
    rule asks for more, and it resumes from its last checkpoint."""
    from safetensors.torch import load_file

    runs = time_limited_runs
    finished_output(runs.local, runs.local_dir)
    output = finished_output(runs.slurm, runs.slurm_dir)
    allocations = [(job_id, Path(log)) for job_id, log in SUBMITTED.findall(output) if "rule_train" in log]
    records = [granted(job_id) for job_id, _ in allocations]
    assert [record["JobState"] for record in records] == ["TIMEOUT", "TIMEOUT", "COMPLETED"]
    for record in records:
        assert (record["Partition"], record["TimeLimit"]) == (SHORT_PARTITION, "00:02:00")
        assert record["gpu"] == record["cpu"] == str(TIMED_TRAIN["gpus"])
    for (job_id, log), checkpoint in zip(allocations, (3, 6)):
        text = log.read_text()
        assert "DUE TO TIME LIMIT" in text and f"re-run to resume from checkpoint-{checkpoint}" in text, text[-3000:]
    train_log = (runs.slurm_dir / runs.run / "logs" / runs.experiment / "train.log").read_text()
    assert "resuming from checkpoint-6" in train_log
    print("\n" + "\n".join(f"train allocation {job_id}: JobState={record['JobState']} TimeLimit={record['TimeLimit']} "
                           f"TRES={record['TRES']} JOB_GRES={record['JOB_GRES']}"
                           for (job_id, _), record in zip(allocations, records)))

    model = runs.run / runs.experiment / "model"
    summaries = [json.loads((workdir / model / "train_summary.json").read_text())
                 for workdir in (runs.slurm_dir, runs.local_dir)]
    assert summaries[0]["checkpoints"] == summaries[1]["checkpoints"] == [3, 6, 9]
    for step in summaries[1]["checkpoints"]:
        assert_same_weights(load_file(runs.slurm_dir / model / f"checkpoint-{step}" / "model.safetensors"),
                            load_file(runs.local_dir / model / f"checkpoint-{step}" / "model.safetensors"))
