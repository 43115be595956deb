import json
import re


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "no-experiments",
    step=r"\d+",
    held_out="val|test",
    sample="|".join(map(re.escape, config["predict"]["fasta"])) or "no-samples",


def checkpoint_steps(experiment):
    """Steps of the checkpoints an experiment's training produced (known once training has run)."""
    summary = checkpoints.train.get(experiment=experiment).output.summary
    with open(summary) as handle:
        return json.load(handle)["checkpoints"]


def checkpoint_metrics(wildcards):
    return [
        f"{RUN}/{experiment}/eval/checkpoint-{step}/metrics.json"
        for experiment in EXPERIMENTS
        for step in checkpoint_steps(experiment)
    ]


def baseline_names():
    names = ["majority"]
    if config["baselines"]["kmer"]["enabled"]:
        names.append("kmer")
    return names
