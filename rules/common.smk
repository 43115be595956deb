import json
import re

from plasmidlm import plan
from plasmidlm.config import window_lengths
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.replicates import expand_experiments

# Every path of the run comes from plasmidlm.layout (the library reads the results folder with it too).
# Every window length an experiment uses gets its own held-out windows and baselines: windows.length's in
# data/ and baselines/, another length L's in data/length-L/ and baselines/length-L/ (plasmidlm.layout.length_dir).
# Rules that make them take the wildcard `length_dir`: "" or "length-L/".
WINDOW_LENGTHS = window_lengths(EXPERIMENTS)
LENGTH_DIRS = {
    length: layout.length_dir(length, config["windows"]["length"])
    for length in WINDOW_LENGTHS
}
LENGTH_OF_DIR = {folder: length for length, folder in LENGTH_DIRS.items()}
# The predictions of an experiment for one predict.fasta sample
PREDICTED_WINDOWS, PREDICTED_SEQUENCES = layout.predictions(
    RUN, "{sample}", "{experiment}"
)


# Each experiment that runs: replicate and sweep setting of a config experiment (plasmidlm.replicates)
REPLICATES = expand_experiments(config)


wildcard_constraints:
    # names of replicates and sweep settings hold "." (plasmidlm.replicates)
    experiment="|".join(map(re.escape, EXPERIMENTS)) or "no-experiments",
    step=r"\d+",
    held_out="val|test",
    # one of LENGTH_DIRS (a non-empty pattern, which "" alone would not be)
    length_dir="(?:"
    + "|".join(re.escape(folder) for folder in sorted(LENGTH_OF_DIR, reverse=True))
    + ")",
    sample="|".join(map(re.escape, config["predict"]["fasta"])) or "no-samples",


def length_of(wildcards):
    """The window length of a job with the wildcard `length_dir`."""
    return LENGTH_OF_DIR[wildcards.length_dir]


def window_policy(wildcards):
    """The window policy (plasmidlm.plan.window_policy) of a job with the wildcard `length_dir`."""
    return plan.window_policy(config, length_of(wildcards))


def experiment_length(experiment):
    return plan.experiment_length(EXPERIMENTS, experiment)


def experiment_data_file(experiment, name):
    """A file of the held-out windows (or derived from them) of an experiment's window length."""
    return layout.data_file(RUN, name, LENGTH_DIRS[experiment_length(experiment)])


def split_inputs(wildcards):
    inputs = {"selected": layout.data_file(RUN, "selected.tsv")}
    if config["split"]["near_duplicates"]["enabled"]:
        inputs["groups"] = layout.data_file(RUN, "near_duplicate_groups.tsv")
        inputs["group_summary"] = layout.data_file(RUN, "near_duplicate_groups.json")
        inputs["pairs"] = layout.data_file(RUN, "near_duplicates.tsv")
    return inputs


def training_seed(experiment):
    """The run's seed for an experiment's first replicate, another for each further one."""
    return REPLICATES[experiment].seed


def epoch_schedule(experiment):
    return plan.epoch_schedule(EXPERIMENTS[experiment])


def checkpoint_steps(experiment):
    """Steps of the checkpoints an experiment's training produced (known once training has run)."""
    summary = checkpoints.train.get(experiment=experiment).output.summary
    with open(summary) as handle:
        return json.load(handle)["checkpoints"]


def checkpoint_metrics(wildcards):
    return [
        layout.checkpoint_metrics(RUN, experiment, step)
        for experiment in EXPERIMENTS
        for step in checkpoint_steps(experiment)
    ]


def baseline_names():
    return plan.baseline_names(config)


def cnn_experiment(length):
    return plan.cnn_experiment(config, EXPERIMENTS, length)


def evidence_outputs():
    """Controls, calibration and contig-length curves of every experiment (and the k-mer baseline)."""
    if not config["evidence"]["enabled"]:
        return []
    outputs = expand(
        layout.evidence_metrics(RUN, "{experiment}"), experiment=EXPERIMENTS
    )
    if config["baselines"]["kmer"]["enabled"]:
        outputs += [
            layout.kmer_evidence(RUN, LENGTH_DIRS[length]) for length in WINDOW_LENGTHS
        ]
    return outputs


def embeddings_model_inputs(wildcards):
    """The training outputs of the model the embeddings come from, when this workflow trains it."""
    experiment = plan.embeddings_experiment(config, EXPERIMENTS)
    if experiment:
        return {
            "summary": layout.train_summary(RUN, experiment),
            "training_log": layout.training_log(RUN, experiment),
        }
    if plan.embeddings_use_pretrained(config):
        return {"pretrained": layout.pretrain_summary(RUN)}
    return {}


def embeddings_model():
    """The model folder of an experiment (its best checkpoint is chosen at run time), or a directory or hub id."""
    if plan.embeddings_use_pretrained(config):
        return PRETRAINED_MODEL
    experiment = plan.embeddings_experiment(config, EXPERIMENTS)
    if experiment:
        return layout.model_dir(RUN, experiment)
    return config["baselines"]["embeddings"]["model"]


# The pretrain stage's model, which experiments with model.name_or_path: pretrained (plasmidlm.config.PRETRAINED)
# fine-tune
PRETRAINED_MODEL = layout.pretrained_model(RUN)


def uses_pretraining():
    return plan.uses_pretraining(config, EXPERIMENTS)


def experiment_model(experiment):
    return plan.experiment_model(config, EXPERIMENTS[experiment], PRETRAINED_MODEL)


def pretrained_inputs(wildcards):
    if plan.fine_tunes_pretrained(EXPERIMENTS[wildcards.experiment]):
        return {"pretrained": layout.pretrain_summary(RUN)}
    return {}


import functools

from plasmidlm import cluster
from plasmidlm import resources as job_resources


@functools.cache
def slurm_partitions():
    """The cluster's partitions (plasmidlm.cluster, from sinfo) when this run submits its jobs to Slurm; none
    otherwise. Known once the run starts: resources and onstart are evaluated after the executor is chosen.
    """
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return {}
    return cluster.read_partitions()


def job_partition(wildcards, input, attempt, threads, rulename):
    """The partition a job goes to on Slurm (its slurm_partition resource, or the default), or None: not on Slurm,
    or a partition that does not exist (check_slurm_requests says so). Takes a resource function's arguments: a
    slurm_partition from the profile or the command line is a function of them too."""
    partitions = slurm_partitions()
    resource = workflow.get_rule(rulename).resources.get("slurm_partition")
    if resource.is_evaluable():
        resource = resource.evaluate(
            wildcards,
            input=input,
            attempt=attempt,
            threads=threads,
            rulename=rulename,
            async_run=workflow.async_run,
        )
    name = resource.value
    if not partitions or (name and name not in partitions):
        return None
    return cluster.partition_named(partitions, name)


def memory(job, *counts):
    """A rule's mem_mb: plasmidlm.resources.mem_mb from its input sizes (and each `counts(wildcards, input)`), the
    attempt; on Slurm, a retry asks for at most the largest node of the rule's partition.
    """

    def mem_mb(wildcards, input, attempt, threads, rulename):
        sizes = job_resources.input_mb(input.items())
        for count in counts:
            sizes |= count(wildcards, input)
        partition = job_partition(wildcards, input, attempt, threads, rulename)
        return job_resources.mem_mb(
            job,
            sizes,
            attempt,
            cap=cluster.largest_node(partition).mem_mb if partition else None,
        )

    return mem_mb


def minutes(job, counts=None):
    """A rule's runtime: plasmidlm.resources.runtime from its input sizes (and `counts(wildcards, input)`), the
    attempt; at most the time limit of the rule's partition on Slurm, or config cluster.max_runtime.
    """

    def runtime(wildcards, input, attempt, threads, rulename):
        sizes = job_resources.input_mb(input.items())
        return job_resources.runtime(
            job,
            sizes | (counts(wildcards, input) if counts else {}),
            attempt,
            cap=cluster.runtime_limit(
                job_partition(wildcards, input, attempt, threads, rulename),
                fallback=config["cluster"]["max_runtime"],
            ),
        )

    return runtime


def check_slurm_requests():
    """On Slurm: stop before any job is submitted when one asks for more than any node of its partition has
    (plasmidlm.cluster.check_fits). Jobs whose memory depends on inputs not made yet are checked without it.
    """
    partitions = slurm_partitions()
    if not partitions:
        return
    for job in workflow.dag.needrun_jobs():
        if not job.is_local:
            cluster.check_fits(
                job.rule.name,
                cluster.job_request(job.resources, job.threads),
                cluster.partition_named(
                    partitions, job.resources.get("slurm_partition")
                ),
            )


def drawn_epochs(experiment, split):
    """Epochs of training windows an experiment draws: those training runs when fresh each epoch, otherwise 1."""
    return plan.drawn_epochs(
        EXPERIMENTS[experiment], job_resources.training_plasmids(split)
    )


def drawn_training_windows(wildcards, input):
    """Training windows of one epoch (the data stage draws and writes fresh ones epoch by epoch)."""
    plasmids = job_resources.training_plasmids(input.split)
    return {
        "windows": plan.training_windows_per_epoch(
            EXPERIMENTS[wildcards.experiment], plasmids
        )
    }


def training_windows_passes(wildcards, input):
    """The FASTA is read once per epoch of fresh windows: its size times the epochs drawn."""
    fasta = job_resources.input_mb([("fasta", input.fasta)])["fasta"]
    return {"fasta": fasta * drawn_epochs(wildcards.experiment, input.split)}


def windows_of_one_epoch(wildcards, input):
    """Training holds one epoch's windows at a time: the MB of the window table per epoch drawn."""
    table = job_resources.input_mb([("windows", input.windows)])["windows"]
    return {"windows": table / drawn_epochs(wildcards.experiment, input.split)}


def pretraining_windows(wildcards, input):
    return {
        "corpus_windows": job_resources.training_plasmids(input.split)
        * config["pretrain"]["windows_per_plasmid"]
    }


def kmer_baseline_features(wildcards, input):
    kmer = config["baselines"]["kmer"]
    windows = plan.baseline_training_windows(
        kmer, job_resources.training_plasmids(input.split)
    )
    return {"features": job_resources.kmer_features_mb(windows, kmer["k"])}


# --- models: the manifests of hub models and local folders (rules/models.smk makes them) -------------------
from plasmidlm import hub
from plasmidlm.config import GPU_BATCH_SIZE

MODEL_STORE = config["model_store"].rstrip("/")


def model_manifest(name_or_path, revision):
    """The manifest of a hub id or local folder (None for the built-in and pretrained models)."""
    return hub.manifest_path(MODEL_STORE, name_or_path, revision)


def experiment_manifest(experiment):
    model = EXPERIMENTS[experiment]["model"]
    return model_manifest(model["name_or_path"], model["revision"])


def embeddings_manifest():
    """The manifest of the embeddings baseline's model: its experiment's, or that of its hub id or folder."""
    embeddings = config["baselines"]["embeddings"]
    if embeddings["model"] in EXPERIMENTS:
        return experiment_manifest(embeddings["model"])
    if plan.embeddings_use_pretrained(config) or not embeddings["enabled"]:
        return None
    return model_manifest(embeddings["model"], embeddings["revision"])


def model_inputs(wildcards):
    """{"model_manifest": path} for a job that loads an experiment's model, when that model has one."""
    path = experiment_manifest(wildcards.experiment)
    return {"model_manifest": path} if path else {}


def embeddings_model_manifest(wildcards):
    path = embeddings_manifest()
    return {"model_manifest": path} if path else {}


def model_memory(job):
    """A `counts` of memory(): the MB the model of a job's manifest needs (plasmidlm.resources.model_mb) for its
    batch (training's, or the inference batch) of windows of at most one token per nucleotide.
    """

    def counts(wildcards, input):
        if "model_manifest" not in input.keys():
            return {}
        if job == "train":
            batch = EXPERIMENTS[wildcards.experiment]["train"]["batch_size"]
        else:
            batch = config["evaluate"]["batch_size"] or GPU_BATCH_SIZE
        tokens = (
            length_of(wildcards)
            if job == "embeddings_baseline"
            else experiment_length(wildcards.experiment)
        )
        model = job_resources.read_model(input.model_manifest)
        return {
            "model": job_resources.model_mb(job, model, batch_size=batch, tokens=tokens)
        }

    return counts


# model manifest -> (hub id, revision) or local folder, for every model the run loads
_MODELS = [
    (settings["model"]["name_or_path"], settings["model"]["revision"])
    for settings in EXPERIMENTS.values()
]
if (
    embeddings_manifest()
    and config["baselines"]["embeddings"]["model"] not in EXPERIMENTS
):
    _MODELS.append(
        (
            config["baselines"]["embeddings"]["model"],
            config["baselines"]["embeddings"]["revision"],
        )
    )
HUB_MODELS = {
    model_manifest(name, revision): (name, revision)
    for name, revision in _MODELS
    if hub.model_kind(name) == "hub"
}
LOCAL_MODELS = {
    model_manifest(name, revision): name
    for name, revision in _MODELS
    if hub.model_kind(name) == "local"
}
