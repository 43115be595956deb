import json
import re

from plasmidlm.config import length_folder, window_lengths
from plasmidlm.evidence import COMPOSITION_BASELINES

# Every window length an experiment uses gets its own held-out windows and baselines: windows.length's in
# data/ and baselines/, another length L's in data/length-L/ and baselines/length-L/ (plasmidlm.config.length_folder).
# Rules that make them take the wildcard `length_dir`: "" or "length-L/".
WINDOW_LENGTHS = window_lengths(EXPERIMENTS)


def length_dir(length):
    folder = length_folder(length, config["windows"]["length"])
    return f"{folder}/" if folder else ""


LENGTH_DIRS = {length: length_dir(length) for length in WINDOW_LENGTHS}
LENGTH_OF_DIR = {folder: length for length, folder in LENGTH_DIRS.items()}


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "no-experiments",
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


# How windows are cut (plasmidlm.windows.WindowPolicy), besides their length: the same for the held-out windows,
# the baselines' and the pretraining's (an experiment's training windows follow its own windows section).
WINDOW_POLICY_KEYS = ("circular", "ambiguous", "max_n_fraction")


def window_policy(wildcards):
    """The window policy of a job with the wildcard `length_dir`: its length and WINDOW_POLICY_KEYS."""
    return {
        "length": length_of(wildcards),
        **{key: config["windows"][key] for key in WINDOW_POLICY_KEYS},
    }


def experiment_length(experiment):
    return EXPERIMENTS[experiment]["windows"]["length"]


def data_dir(length):
    """The folder (with a final /) of one window length's validation and test windows, and what is derived
    from them."""
    return f"{RUN}/data/{LENGTH_DIRS[length]}"


def baselines_dir(length):
    """The folder (with a final /) of one window length's baselines."""
    return f"{RUN}/baselines/{LENGTH_DIRS[length]}"


def experiment_data(experiment):
    """The held-out windows' folder (with a final /) of an experiment's window length."""
    return data_dir(experiment_length(experiment))


def split_inputs(wildcards):
    inputs = {"selected": f"{RUN}/data/selected.tsv"}
    if config["split"]["near_duplicates"]["enabled"]:
        inputs["groups"] = f"{RUN}/data/near_duplicate_groups.tsv"
        inputs["group_summary"] = f"{RUN}/data/near_duplicate_groups.json"
        inputs["pairs"] = f"{RUN}/data/near_duplicates.tsv"
    return inputs


def epoch_schedule(experiment):
    settings = EXPERIMENTS[experiment]
    if not settings["windows"]["resample_each_epoch"]:
        return None
    return {
        key: settings["train"][key] for key in ("batch_size", "epochs", "max_steps")
    }


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
    if config["baselines"]["composition"]["enabled"]:
        names += list(COMPOSITION_BASELINES)
    if config["baselines"]["cnn"]["enabled"]:
        names.append("cnn")
    if config["baselines"]["embeddings"]["enabled"]:
        names += ["embeddings_logistic", "embeddings_cnn"]
    return names


def cnn_experiment(length):
    """The experiment whose training windows the one-hot CNN trains on at a window length.

    baselines.cnn.experiment (default: the first) when it has that length, else the first that has it.
    """
    chosen = config["baselines"]["cnn"]["experiment"] or next(iter(EXPERIMENTS))
    if experiment_length(chosen) == length:
        return chosen
    return next(name for name in EXPERIMENTS if experiment_length(name) == length)


def evidence_outputs():
    """Controls, calibration and contig-length curves of every experiment (and the k-mer baseline)."""
    if not config["evidence"]["enabled"]:
        return []
    outputs = expand(
        f"{RUN}/{{experiment}}/evidence/metrics.json", experiment=EXPERIMENTS
    )
    if config["baselines"]["kmer"]["enabled"]:
        outputs += [
            f"{baselines_dir(length)}kmer/evidence.json" for length in WINDOW_LENGTHS
        ]
    return outputs


def embeddings_model_inputs(wildcards):
    """The training outputs of the model the embeddings come from, when this workflow trains it."""
    model = config["baselines"]["embeddings"]["model"]
    if model in EXPERIMENTS:
        return {
            "summary": f"{RUN}/{model}/model/train_summary.json",
            "training_log": f"{RUN}/{model}/model/training_log.tsv",
        }
    if model == PRETRAINED:
        return {"pretrained": f"{RUN}/pretrain/train_summary.json"}
    return {}


def embeddings_model():
    """The model folder of an experiment (its best checkpoint is chosen at run time), or a directory or hub id."""
    model = config["baselines"]["embeddings"]["model"]
    if model == PRETRAINED:
        return PRETRAINED_MODEL
    return f"{RUN}/{model}/model" if model in EXPERIMENTS else model


# PRETRAINED (from plasmidlm.config, imported by the Snakefile): model.name_or_path of experiments that
# fine-tune the pretrain stage's model
PRETRAINED_MODEL = f"{RUN}/pretrain/model"


def uses_pretraining():
    return config["baselines"]["embeddings"]["model"] == PRETRAINED or any(
        settings["model"]["name_or_path"] == PRETRAINED
        for settings in EXPERIMENTS.values()
    )


def experiment_model(experiment):
    """An experiment's model config; "pretrained" becomes the pretrain stage's model and its tokenizer."""
    model = EXPERIMENTS[experiment]["model"]
    if model["name_or_path"] != PRETRAINED:
        return model
    pretrain = config["pretrain"]
    return model | {
        "name_or_path": PRETRAINED_MODEL,
        "kmer": pretrain["kmer"],
        "kmer_stride": pretrain["kmer_stride"],
    }


def pretrained_inputs(wildcards):
    if EXPERIMENTS[wildcards.experiment]["model"]["name_or_path"] == PRETRAINED:
        return {"pretrained": f"{RUN}/pretrain/train_summary.json"}
    return {}


from plasmidlm import resources as job_resources
from plasmidlm.checkpoints import epochs_to_draw


def memory(job, counts=None):
    """A rule's mem_mb: plasmidlm.resources.mem_mb from its input sizes (and `counts(wildcards, input)`), the attempt."""

    def mem_mb(wildcards, input, attempt):
        sizes = job_resources.input_mb(input.items())
        return job_resources.mem_mb(
            job, sizes | (counts(wildcards, input) if counts else {}), attempt
        )

    return mem_mb


def minutes(job, counts=None):
    """A rule's runtime: plasmidlm.resources.runtime from its input sizes (and `counts(wildcards, input)`), the
    attempt."""

    def runtime(wildcards, input, attempt):
        sizes = job_resources.input_mb(input.items())
        return job_resources.runtime(
            job, sizes | (counts(wildcards, input) if counts else {}), attempt
        )

    return runtime


def drawn_epochs(experiment, split):
    """Epochs of training windows an experiment draws: those training runs when fresh each epoch, otherwise 1."""
    schedule = epoch_schedule(experiment)
    if schedule is None:
        return 1
    per_epoch = (
        job_resources.training_plasmids(split)
        * EXPERIMENTS[experiment]["windows"]["per_plasmid"]
    )
    return epochs_to_draw(per_epoch, **schedule)


def drawn_training_windows(wildcards, input):
    """Training windows of one epoch (the data stage draws and writes fresh ones epoch by epoch)."""
    settings = EXPERIMENTS[wildcards.experiment]
    plasmids = job_resources.training_plasmids(input.split)
    return {"windows": plasmids * settings["windows"]["per_plasmid"]}


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
    windows = job_resources.training_plasmids(input.split) * kmer["windows_per_plasmid"]
    if kmer["max_windows"]:
        windows = min(windows, kmer["max_windows"])
    return {"features": job_resources.kmer_features_mb(windows, kmer["k"])}
