from plasmidlm.jobs import run_logged
from plasmidlm.steps import baselines

run_logged(
    snakemake.log[0],
    baselines.embeddings_baseline,
    threads=snakemake.threads,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    model=snakemake.params.model,
    from_experiment=snakemake.params.from_experiment,
    embeddings_config=snakemake.params.embeddings,
    trust_remote_code=snakemake.params.trust_remote_code,
    windows_config=snakemake.params.windows,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_logistic_metrics=snakemake.output.logistic_metrics,
    out_logistic_predictions=snakemake.output.logistic_predictions,
    out_cnn_metrics=snakemake.output.cnn_metrics,
    out_cnn_predictions=snakemake.output.cnn_predictions,
    model_manifest=None if snakemake.params.from_experiment else snakemake.input.get("model_manifest"),
)
