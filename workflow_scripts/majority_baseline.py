from plasmidlm.jobs import run_logged
from plasmidlm.steps import baselines

run_logged(
    snakemake.log[0],
    baselines.majority_baseline,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_metrics=snakemake.output.metrics,
    out_predictions=snakemake.output.predictions,
)
