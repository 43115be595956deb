"""What a run makes, decided from its configuration: which model each experiment trains from and whether the
pretrain stage runs, which baselines run and on which experiment's windows, how windows are cut, how many epochs
of fresh training windows are drawn.

Functions over the validated config and the resolved experiments (plasmidlm.config.resolve_experiments); the
rules (rules/common.smk) turn their answers into paths.
"""

from __future__ import annotations

from plasmidlm.training.runs import epochs_to_draw
from plasmidlm.config import PRETRAINED
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.hub import model_kind

# How windows are cut (plasmidlm.windows.WindowPolicy), besides their length: the same for the held-out windows,
# the baselines' and the pretraining's (an experiment's training windows follow its own windows section).
WINDOW_POLICY_KEYS = ("circular", "ambiguous", "max_n_fraction")


def window_policy(config: dict, length: int) -> dict:
    """The window policy of the held-out windows, baselines and pretraining at one window length."""
    return {"length": length, **{key: config["windows"][key] for key in WINDOW_POLICY_KEYS}}


def experiment_length(experiments: dict[str, dict], experiment: str) -> int:
    return experiments[experiment]["windows"]["length"]


def epoch_schedule(settings: dict) -> dict | None:
    """The training schedule (batch_size, epochs, max_steps) that sets how many epochs of fresh windows an
    experiment's data stage draws; None when its windows are drawn once (`windows.resample_each_epoch` off)."""
    if not settings["windows"]["resample_each_epoch"]:
        return None
    return {key: settings["train"][key] for key in ("batch_size", "epochs", "max_steps")}


def training_windows_per_epoch(settings: dict, training_plasmids: int) -> int:
    return training_plasmids * settings["windows"]["per_plasmid"]


def drawn_epochs(settings: dict, training_plasmids: int) -> int:
    """Epochs of training windows an experiment draws: those training runs when fresh each epoch, otherwise 1."""
    schedule = epoch_schedule(settings)
    if schedule is None:
        return 1
    return epochs_to_draw(training_windows_per_epoch(settings, training_plasmids), **schedule)


def baseline_names(config: dict) -> list[str]:
    """The baselines the run makes, in report order: majority always, the others when enabled."""
    baselines = config["baselines"]
    names = ["majority"]
    if baselines["kmer"]["enabled"]:
        names.append("kmer")
    if baselines["composition"]["enabled"]:
        names += list(COMPOSITION_BASELINES)
    if baselines["cnn"]["enabled"]:
        names.append("cnn")
    if baselines["embeddings"]["enabled"]:
        names += ["embeddings_logistic", "embeddings_cnn"]
    return names


def cnn_experiment(config: dict, experiments: dict[str, dict], length: int) -> str:
    """The experiment whose training windows the one-hot CNN trains on at a window length:
    baselines.cnn.experiment (default: the first) when it has that length, else the first that has it."""
    chosen = config["baselines"]["cnn"]["experiment"] or next(iter(experiments))
    if experiment_length(experiments, chosen) == length:
        return chosen
    return next(name for name in experiments if experiment_length(experiments, name) == length)


def fine_tunes_pretrained(settings: dict) -> bool:
    """Whether an experiment fine-tunes the pretrain stage's model (model.name_or_path: pretrained)."""
    return settings["model"]["name_or_path"] == PRETRAINED


def embeddings_experiment(config: dict, experiments: dict[str, dict]) -> str | None:
    """The experiment whose trained model the embeddings baseline embeds with, if its model is one."""
    model = config["baselines"]["embeddings"]["model"]
    return model if model in experiments else None


def embeddings_use_pretrained(config: dict) -> bool:
    return config["baselines"]["embeddings"]["model"] == PRETRAINED


def uses_pretraining(config: dict, experiments: dict[str, dict]) -> bool:
    """Whether the pretrain stage runs: an experiment fine-tunes, or the embeddings baseline embeds with, its model."""
    return embeddings_use_pretrained(config) or any(map(fine_tunes_pretrained, experiments.values()))


def experiment_model(config: dict, settings: dict, pretrained_model: str) -> dict:
    """An experiment's model config; "pretrained" becomes the pretrain stage's model (at `pretrained_model`) with
    the tokenizer it was pretrained with. `revision` is kept for a hub model only: elsewhere it means nothing, and
    in the training record it would set aside the checkpoints of runs made before the key existed."""
    model = settings["model"]
    if model_kind(model["name_or_path"]) != "hub":
        model = {key: value for key, value in model.items() if key != "revision"}
    if not fine_tunes_pretrained(settings):
        return model
    pretrain = config["pretrain"]
    return model | {
        "name_or_path": pretrained_model,
        "kmer": pretrain["kmer"],
        "kmer_stride": pretrain["kmer_stride"],
    }


def baseline_training_windows(baseline: dict, training_plasmids: int) -> int:
    """The training windows a baseline with `windows_per_plasmid` and `max_windows` (k-mer, CNN) draws in all:
    as many per plasmid, at most max_windows (plasmidlm.windows.capped_counts)."""
    windows = training_plasmids * baseline["windows_per_plasmid"]
    return min(windows, baseline["max_windows"]) if baseline["max_windows"] else windows
