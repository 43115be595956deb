# Hub models are fetched once, before the jobs that load them, by a localrule: it runs on the host that runs
# snakemake (with --profile slurm, the submitting host, which has internet), never on a compute node. The
# revision is resolved to a commit and the files go into the store shared by runs (config model_store); the
# manifest that pins the revision (plasmidlm.hub.revision_manifest) is an input of every job that loads the model,
# so changing model.revision re-runs exactly what depends on the model. Those jobs load the store folder with the
# hub switched off (plasmidlm.hub.model_folder). A local model folder gets a manifest of its files too.
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
        # the store folder that holds this manifest's repository folder
        store=lambda wildcards, output: os.path.dirname(
            os.path.dirname(os.path.dirname(output[0]))
        ),
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
