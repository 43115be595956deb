"""Re-planning after config edits: a dry run (`snakemake -n`) on a finished run, with one config key changed,
plans exactly the jobs that depend on that key, with Snakemake's default rerun triggers.

Two jobs follow any config edit, by design: `provenance` (it records the resolved config in
results/<run>/config.yaml, so its params are the whole config) and, through it, `report`; `manifest` follows
any change in the folder. `train` is a checkpoint: the evaluation jobs of its checkpoints join the plan only
once it has run, so a dry run that re-trains lists no `evaluate_checkpoint` jobs.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter

import pytest
import yaml
from snakemake.utils import validate

from conftest import snakemake
from plasmidlm import layout, plan
from plasmidlm.config import SCHEMA_PATH, resolve_experiments, window_lengths

DATA_RULES = {"validate", "select_classes", "sketch", "near_duplicates", "near_duplicate_groups", "split",
              "held_out_windows",
              "training_windows", "kmer_coverage", "leakage"}
ALWAYS = {"provenance", "report", "manifest", "all"}
JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")


def planned_jobs(output: str) -> list[dict]:
    """The jobs of a dry run's output: {"rule", "wildcards" (dict), "reason"} each."""
    jobs = []
    for line in output.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append({"rule": header.group(1), "wildcards": {}, "reason": ""})
        elif jobs and line.startswith("    wildcards: "):
            jobs[-1]["wildcards"] = dict(item.split("=", 1) for item in line.split(": ", 1)[1].split(", "))
        elif jobs and line.startswith("    reason: "):
            jobs[-1]["reason"] = line.split(": ", 1)[1]
    return jobs


def dry_run(finished_run, tmp_path, edit=None) -> tuple[list[dict], str]:
    """Dry-run the finished run with `edit(config)` applied to a copy of its config."""
    config = yaml.safe_load(finished_run.config.read_text())
    if edit is not None:
        edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(finished_run.workdir), "--configfile", str(path), "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return planned_jobs(result.stdout), output


def rules(jobs) -> Counter:
    return Counter(job["rule"] for job in jobs)


class Run:
    """What the finished run's config runs: its experiments, window lengths, predict samples, baselines."""

    def __init__(self, finished_run):
        self.config = yaml.safe_load(finished_run.config.read_text())
        validate(self.config, str(SCHEMA_PATH))  # fills in the schema's defaults, as the workflow does
        resolved = resolve_experiments(self.config)
        self.experiments = sorted(resolved)
        self.lengths = window_lengths(resolved)  # each has its held-out windows and baselines
        self.samples = len(self.config["predict"]["fasta"])
        self.checkpoints = len(list(finished_run.run.glob("*/eval/checkpoint-*/metrics.json")))
        baselines = self.config["baselines"]
        baseline_rules = {"majority_baseline"}
        if baselines["kmer"]["enabled"]:
            baseline_rules.add("kmer_baseline")
        if baselines["composition"]["enabled"]:
            baseline_rules.add("composition_baselines")
        # the one-hot CNN trains at each length on an experiment's training windows
        self.cnn_experiments = set()
        if baselines["cnn"]["enabled"]:
            baseline_rules.add("cnn_baseline")
            self.cnn_experiments = {plan.cnn_experiment(self.config, resolved, length) for length in self.lengths}
        # controls and calibration of each experiment's best checkpoint, and the k-mer baseline's controls
        self.evidence = self.config["evidence"]["enabled"]
        self.test_window_rules = Counter()
        if self.evidence:
            self.test_window_rules = Counter({"shuffled_test_windows": len(self.lengths),
                                              "model_evidence": len(self.experiments)})
            if "kmer_baseline" in baseline_rules:
                self.test_window_rules["kmer_evidence"] = len(self.lengths)
            # predictions use the temperature that the evidence step fits
            self.test_window_rules["predict"] = len(self.experiments) * self.samples
        # the embeddings baseline may use an experiment's best checkpoint, and then follows its training
        self.embeddings_experiment = None
        if baselines["embeddings"]["enabled"]:
            baseline_rules.add("embeddings_baseline")
            self.embeddings_experiment = plan.embeddings_experiment(self.config, resolved)
        self.baseline_jobs = Counter(dict.fromkeys(baseline_rules, len(self.lengths)))  # every baseline at each length

    def retrained(self, experiments) -> Counter:
        """The jobs that re-training `experiments` plans (and ALWAYS)."""
        jobs = Counter({"train": len(experiments), "predict": len(experiments) * self.samples,
                        "model_evidence": len(experiments) if self.evidence else 0})
        if self.embeddings_experiment in experiments:
            jobs["embeddings_baseline"] = len(self.lengths)
        return +jobs + Counter(dict.fromkeys(ALWAYS, 1))


@pytest.fixture
def run(finished_run):
    return Run(finished_run)


def test_no_change_plans_nothing(finished_run, tmp_path):
    jobs, output = dry_run(finished_run, tmp_path)
    assert jobs == []
    assert "Nothing to be done" in output


def test_learning_rate_retrains_and_reports_but_keeps_data_and_baselines(finished_run, run, tmp_path):
    def edit(config):
        config["train"]["learning_rate"] *= 2

    jobs, output = dry_run(finished_run, tmp_path, edit)
    assert rules(jobs) == run.retrained(run.experiments)
    assert not DATA_RULES & set(rules(jobs))
    trained = [job for job in jobs if job["rule"] == "train"]
    assert sorted(job["wildcards"]["experiment"] for job in trained) == run.experiments
    assert all(job["reason"].startswith("Params have changed") for job in trained)
    # train is a checkpoint: the evaluation of its new checkpoints joins the plan once it has run
    assert "DAG of jobs will be updated after completion" in output


def test_test_window_count_redraws_test_windows_and_reevaluates_without_training(finished_run, run, tmp_path):
    def edit(config):
        config["windows"]["test_count"] //= 2

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    expected = Counter({"held_out_windows": len(run.lengths), "kmer_coverage": len(run.lengths),
                        "leakage": len(run.experiments), "evaluate_checkpoint": run.checkpoints})
    assert rules(jobs) == expected + run.test_window_rules + run.baseline_jobs + Counter(dict.fromkeys(ALWAYS, 1))
    windows = [job for job in jobs if job["rule"] == "held_out_windows"]
    assert sorted(job["wildcards"]["length_dir"] for job in windows) == sorted(
        layout.length_dir(length, run.config["windows"]["length"]) for length in run.lengths)
    for job in windows:
        assert job["wildcards"]["held_out"] == "test" and job["reason"].startswith("Params have changed")
    # the evaluations are re-planned because their input, the test windows, will be new; not for a param
    for job in jobs:
        if job["rule"] in {"evaluate_checkpoint", "kmer_coverage", "leakage", *run.baseline_jobs,
                           *run.test_window_rules}:
            assert job["reason"].startswith("Input files updated by another job"), job


@pytest.mark.parametrize("experiment, section, key, value", [
    ("first", "windows", "per_plasmid", 3),
    ("random", "train", "learning_rate", 0.01),
])
def test_changing_one_experiment_leaves_the_others_untouched(finished_run, run, tmp_path, experiment, section,
                                                             key, value):
    def edit(config):
        config["experiments"][experiment].setdefault(section, {})[key] = value

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    assert {job["wildcards"]["experiment"] for job in jobs if "experiment" in job["wildcards"]} == {experiment}
    expected = run.retrained([experiment])
    if section == "windows":
        expected += Counter({"training_windows": 1, "leakage": 1})
        if experiment in run.cnn_experiments:
            expected["cnn_baseline"] = 1
    assert rules(jobs) == expected


def test_near_duplicate_threshold_regroups_without_sketching_again(finished_run, tmp_path):
    def edit(config):
        config.setdefault("split", {})["near_duplicates"] = {"threshold": 0.5}

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    planned = rules(jobs)
    assert planned["near_duplicates"] == 1 and planned["near_duplicate_groups"] == 1 and planned["split"] == 1
    assert not {"validate", "select_classes", "sketch"} & set(planned)
    [grouping] = [job for job in jobs if job["rule"] == "near_duplicates"]
    assert grouping["reason"].startswith("Params have changed")


def test_linkage_regroups_without_searching_pairs_again(finished_run, tmp_path):
    def edit(config):
        config.setdefault("split", {})["near_duplicates"] = {"linkage": "centroid"}

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    planned = rules(jobs)
    assert planned["near_duplicate_groups"] == 1 and planned["split"] == 1
    assert not {"validate", "select_classes", "sketch", "near_duplicates"} & set(planned)


def test_batch_size_redraws_training_windows_only_when_they_are_fresh_every_epoch(finished_run, tmp_path):
    def edit(config):
        config["train"]["batch_size"] *= 2

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    assert "training_windows" not in rules(jobs)

    def edit_fresh(config):
        edit(config)
        config["windows"]["resample_each_epoch"] = True

    jobs, _ = dry_run(finished_run, tmp_path, edit_fresh)
    assert rules(jobs)["training_windows"] == len(yaml.safe_load(finished_run.config.read_text())["experiments"])


def test_other_logging_steps_rerun_training_which_keeps_its_checkpoints_and_their_evaluations(finished_run, run,
                                                                                              tmp_path):
    """Snakemake re-runs `train` for any changed train key (its params hold them all) and first removes its
    declared outputs, never the checkpoints; the job keeps them, trains nothing, and no evaluation re-runs."""
    workdir = shutil.copytree(finished_run.workdir, tmp_path / "copy")
    results = workdir / finished_run.run.relative_to(finished_run.workdir)

    def files(pattern):
        return {str(path.relative_to(results)): path.stat().st_mtime_ns for path in sorted(results.glob(pattern))
                if path.is_file()}

    checkpoints, evaluations = files("*/model/checkpoint-*/**/*"), files("*/eval/checkpoint-*/*")
    config = yaml.safe_load(finished_run.config.read_text())
    config["train"]["logging_steps"] += 1
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config))
    # only the training jobs run; the dry run after them says what the rest of the workflow would re-run
    summaries = [str(path.relative_to(workdir)) for path in sorted(results.glob("*/model/train_summary.json"))]
    result = snakemake("--directory", str(workdir), "--configfile", str(edited), "--cores", "2", *summaries,
                       check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert rules(planned_jobs(result.stderr)) == {"train": len(run.experiments)}
    assert files("*/model/checkpoint-*/**/*") == checkpoints
    rest = snakemake("--directory", str(workdir), "--configfile", str(edited), "-n")
    assert not {"train", "evaluate_checkpoint"} & set(rules(planned_jobs(rest.stdout))), rest.stdout[-3000:]
    assert files("*/eval/checkpoint-*/*") == evaluations
    for experiment in run.experiments:
        log = (results / "logs" / experiment / "train.log").read_text()
        assert "resuming from checkpoint-6" in log and "set aside" not in log
        assert not (results / experiment / "model" / "set_aside").exists()


MODEL_INFERENCE_RULES = {"evaluate_checkpoint", "embeddings_baseline", "model_evidence", "predict"}


def gpus_requested(output: str) -> dict:
    """{rule: the `gpu` resource of each of its jobs} in a dry run's output (0 where a job sets none)."""
    requests, rule = {}, None
    for line in output.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            rule = header.group(1)
            requests.setdefault(rule, [])
        elif rule and line.startswith("    resources: "):
            resources = dict(item.split("=", 1) for item in line.split(": ", 1)[1].split(", "))
            requests[rule].append(int(resources.get("gpu", 0)))
    return requests


@pytest.mark.parametrize("gpus", [0, 1])
def test_every_job_running_a_model_for_inference_asks_for_evaluate_gpus(finished_run, tmp_path, gpus):
    config = yaml.safe_load(finished_run.config.read_text())
    config["evaluate"]["gpus"] = gpus
    path = tmp_path / "gpus.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(finished_run.workdir), "--configfile", str(path), "-n",
                       "--forcerun", *MODEL_INFERENCE_RULES, "cnn_baseline", "kmer_baseline")
    requested = gpus_requested(result.stdout)
    assert MODEL_INFERENCE_RULES <= requested.keys()
    for rule in MODEL_INFERENCE_RULES:
        assert set(requested[rule]) == {gpus}, rule
    # the CPU-only baselines never take a GPU, whatever the setting
    assert set(requested["cnn_baseline"]) == set(requested["kmer_baseline"]) == {0}


def test_inference_gpus_re_run_no_job(finished_run, tmp_path):
    def edit(config):
        config["evaluate"]["gpus"] = 0

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    assert set(rules(jobs)) == ALWAYS


def test_adding_replicates_plans_only_the_new_replicates(finished_run, run, tmp_path):
    def edit(config):
        config["experiments"]["random"]["replicates"] = 3

    jobs, _ = dry_run(finished_run, tmp_path, edit)
    new = ["random.rep2", "random.rep3"]
    assert sorted({job["wildcards"]["experiment"] for job in jobs if "experiment" in job["wildcards"]}) == new
    assert rules(jobs) == run.retrained(new) + Counter({"training_windows": 2, "leakage": 2})
    assert all(job["reason"].startswith("Missing output files") for job in jobs if job["rule"] == "train")
