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
    if config["baselines"]["embeddings"]["enabled"]:
        names += ["embeddings_logistic", "embeddings_cnn"]
    return names


def embeddings_model_inputs(wildcards):
    """An experiment's training outputs when the embeddings come from its best checkpoint."""
    model = config["baselines"]["embeddings"]["model"]
    if model in EXPERIMENTS:
        return {
            "summary": f"{RUN}/{model}/model/train_summary.json",
            "training_log": f"{RUN}/{model}/model/training_log.tsv",
        }
    return {}


def embeddings_model():
    """The model folder of an experiment (its best checkpoint is chosen at run time), or a directory or hub id."""
    model = config["baselines"]["embeddings"]["model"]
    return f"{RUN}/{model}/model" if model in EXPERIMENTS else model
