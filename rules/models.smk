# Hub models are fetched once, before the jobs that load them, by a localrule: it runs on the host that runs
# snakemake (with --profile slurm, the submitting host, which has internet), never on a compute node. The
# revision is resolved to a commit and the files go into the store shared by runs (config model_store); the
# manifest that pins the revision (plasmidlm.hub.revision_manifest) is an input of every job that loads the model,
# so changing model.revision re-runs exactly what depends on the model. Those jobs load the store folder with the
# hub switched off (plasmidlm.hub.model_folder). A local model folder gets a manifest of its files too.
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
    batch (training's, or the inference batch) of windows of at most one token per nucleotide."""

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
if embeddings_manifest() and config["baselines"]["embeddings"]["model"] not in EXPERIMENTS:
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


localrules:
    fetch_model,
    local_model_manifest,


rule fetch_model:
    output:
        f"{MODEL_STORE}/{{repo}}/revisions/{{revision}}.json",
    log:
        layout.log(RUN, "models/{repo}@{revision}"),
    wildcard_constraints:
        repo=r"[^/]+--[^/]+",
        revision=r"[^/]+",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("fetch_model"),
        runtime=minutes("fetch_model"),
    params:
        model=lambda wildcards, output: HUB_MODELS[output[0]],
        store=MODEL_STORE,
    script:
        "../workflow_scripts/fetch_model.py"


rule local_model_manifest:
    input:
        lambda wildcards: hub.folder_files(
            LOCAL_MODELS[f"{MODEL_STORE}/local/{wildcards.name}.json"]
        ),
    output:
        f"{MODEL_STORE}/local/{{name}}.json",
    log:
        layout.log(RUN, "models/local-{name}"),
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("local_model_manifest"),
        runtime=minutes("local_model_manifest"),
    params:
        folder=lambda wildcards, output: LOCAL_MODELS[output[0]],
    script:
        "../workflow_scripts/local_model_manifest.py"
