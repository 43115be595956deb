"""The layout of a run's results folder, `results/<run>/`: the one definition of where each file lies.

The rules build their inputs and outputs with these functions and the library reads the folder with them,
so a path is named in one place. Each function takes the run folder (`run`) and returns a path as a string
joined with "/"; a rule passes a Snakemake wildcard such as "{experiment}" for a name it leaves open.

Window lengths: the held-out windows and baselines of the run's `windows.length` lie in data/ and
baselines/, those of another length L in data/length-L/ and baselines/length-L/. `length_dir` is that
sub-folder with its final "/" ("" for `windows.length`), the form every function here takes.
"""

from __future__ import annotations

# The folders of a run that are not an experiment's (an experiment may not take their names)
RUN_FOLDERS = ("data", "logs", "pretrain", "baselines", "report", "predict")
TRAIN_SUMMARY = "train_summary.json"
TRAINING_LOG = "training_log.tsv"
# The final model of pretraining, in the pretraining folder beside its checkpoints
PRETRAINED_MODEL = "model"
MANIFEST = "manifest.tsv"
# The log of the job that writes the manifest (relative to the run folder)
MANIFEST_LOG = "logs/manifest.log"


def run_folder(run_name: str) -> str:
    return f"results/{run_name}"


def length_folder(length: int, default: int) -> str:
    """The sub-folder of data/ and baselines/ that holds one window length's held-out windows and baselines:
    none ("") for the run's `windows.length`, so that a run with one length keeps its paths, else `length-<L>`."""
    return "" if length == default else f"length-{length}"


def length_dir(length: int, default: int) -> str:
    """`length_folder` with a final "/" (or ""), to put before a file name."""
    folder = length_folder(length, default)
    return f"{folder}/" if folder else ""


# --- shared data ---------------------------------------------------------------------------------------------

def data_dir(run: str, length_dir: str = "") -> str:
    """The folder (with a final /) of the run's data tables, or of one window length's held-out windows."""
    return f"{run}/data/{length_dir}"


def data_file(run: str, name: str, length_dir: str = "") -> str:
    return f"{data_dir(run, length_dir)}{name}"


def run_config(run: str) -> str:
    return f"{run}/config.yaml"


def provenance(run: str) -> str:
    return f"{run}/provenance.json"


def log(run: str, name: str) -> str:
    """The log of one job: logs/<name>.log (`name` may hold sub-folders)."""
    return f"{run}/logs/{name}.log"


def manifest(run: str) -> str:
    return f"{run}/{MANIFEST}"


def manifest_log(run: str) -> str:
    return f"{run}/{MANIFEST_LOG}"


# --- one experiment --------------------------------------------------------------------------------------------

def experiment_file(run: str, experiment: str, name: str) -> str:
    """A file of an experiment's own folder, e.g. train_windows.tsv.gz or leakage.json."""
    return f"{run}/{experiment}/{name}"


def model_dir(run: str, experiment: str) -> str:
    """Where an experiment's training writes its checkpoints, summary and log."""
    return f"{run}/{experiment}/model"


def summary_in(model_dir) -> str:
    """The training summary (steps of the checkpoints kept, ...) of a training output folder."""
    return f"{model_dir}/{TRAIN_SUMMARY}"


def training_log_in(model_dir) -> str:
    """The training log (loss and held-out accuracy per step) of a training output folder."""
    return f"{model_dir}/{TRAINING_LOG}"


def train_summary(run: str, experiment: str) -> str:
    return summary_in(model_dir(run, experiment))


def training_log(run: str, experiment: str) -> str:
    return training_log_in(model_dir(run, experiment))


def checkpoint_in(model_dir, step) -> str:
    """One checkpoint (an HF model folder) of a training output folder."""
    return f"{model_dir}/checkpoint-{step}"


def checkpoint_dir(run: str, experiment: str, step) -> str:
    return checkpoint_in(model_dir(run, experiment), step)


def eval_dir(run: str, experiment: str) -> str:
    return f"{run}/{experiment}/eval"


def checkpoint_predictions_in(eval_dir, step) -> str:
    """One checkpoint's predictions on the test windows, in an experiment's evaluation folder."""
    return f"{eval_dir}/checkpoint-{step}/predictions.tsv.gz"


def checkpoint_metrics(run: str, experiment: str, step) -> str:
    """One checkpoint's window- and plasmid-level metrics on the test windows."""
    return f"{eval_dir(run, experiment)}/checkpoint-{step}/metrics.json"


def checkpoint_predictions(run: str, experiment: str, step) -> str:
    return checkpoint_predictions_in(eval_dir(run, experiment), step)


def leakage(run: str, experiment: str) -> str:
    return experiment_file(run, experiment, "leakage.json")


def train_windows(run: str, experiment: str) -> str:
    return experiment_file(run, experiment, "train_windows.tsv.gz")


def evidence_file(run: str, experiment: str, name: str) -> str:
    """A file of the evidence on an experiment's best checkpoint: metrics.json, contig_lengths.tsv, ..."""
    return f"{run}/{experiment}/evidence/{name}"


def evidence_metrics(run: str, experiment: str) -> str:
    return evidence_file(run, experiment, "metrics.json")


def contig_lengths(run: str, experiment: str) -> str:
    """Accuracy per contig length of an experiment's best checkpoint."""
    return evidence_file(run, experiment, "contig_lengths.tsv")


# --- pretraining, baselines, report, predictions --------------------------------------------------------------

def pretrain_dir(run: str) -> str:
    return f"{run}/pretrain"


def pretrain_summary(run: str) -> str:
    return summary_in(pretrain_dir(run))


def pretrain_log(run: str) -> str:
    return training_log_in(pretrain_dir(run))


def pretrained_model_in(pretrain_dir) -> str:
    """The final model of a pretraining output folder, beside its checkpoints."""
    return f"{pretrain_dir}/{PRETRAINED_MODEL}"


def pretrained_model(run: str) -> str:
    """The pretrained masked-LM model folder, which experiments with model `pretrained` fine-tune."""
    return pretrained_model_in(pretrain_dir(run))


def baseline_dir(run: str, length_dir: str, name: str) -> str:
    return f"{run}/baselines/{length_dir}{name}"


def baseline_file(run: str, length_dir: str, name: str, file: str) -> str:
    """A file of one baseline at one window length: metrics.json, predictions.tsv.gz, (k-mer) evidence.json ..."""
    return f"{baseline_dir(run, length_dir, name)}/{file}"


def baseline_metrics(run: str, length_dir: str, name: str) -> str:
    return baseline_file(run, length_dir, name, "metrics.json")


def kmer_evidence(run: str, length_dir: str) -> str:
    """The evidence (shuffled windows, contig lengths) on the k-mer baseline of one window length."""
    return baseline_file(run, length_dir, "kmer", "evidence.json")


def kmer_contig_lengths(run: str, length_dir: str) -> str:
    return baseline_file(run, length_dir, "kmer", "contig_lengths.tsv")


def comparison(run: str) -> str:
    return f"{run}/report/comparison.tsv"


def report_html(run: str) -> str:
    return f"{run}/report/report.html"


def experiment_summary(run: str) -> str:
    """One row per experiment and sweep setting: the spread over replicates of the best checkpoints, the cost."""
    return f"{run}/report/experiments.tsv"


def seed_differences(run: str) -> str:
    """Paired differences over replicates between experiments, and against the k-mer baseline."""
    return f"{run}/report/seed_differences.tsv"


def prediction_paths(out_prefix) -> tuple[str, str]:
    """The per-window and per-sequence tables of predictions (`plasmidlm predict --out PREFIX`)."""
    return f"{out_prefix}.windows.tsv.gz", f"{out_prefix}.sequences.tsv"


def predictions(run: str, sample: str, experiment: str) -> tuple[str, str]:
    """The per-window and per-sequence predictions of an experiment for one predict.fasta sample."""
    return prediction_paths(f"{run}/predict/{sample}/{experiment}")
