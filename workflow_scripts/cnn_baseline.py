from plasmidlm.jobs import run_logged
from plasmidlm.steps import baselines

run_logged(
    snakemake.log[0],
    baselines.cnn_baseline,
    threads=snakemake.threads,
    train_windows=snakemake.input.train,
    val_windows=snakemake.input.val,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    cnn_config=snakemake.params.cnn,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_metrics=snakemake.output.metrics,
    out_predictions=snakemake.output.predictions,
)
