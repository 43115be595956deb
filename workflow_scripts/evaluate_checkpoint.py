from plasmidlm.jobs import run_logged
from plasmidlm.steps import evaluate

run_logged(
    snakemake.log[0],
    evaluate.evaluate,
    threads=snakemake.threads,
    checkpoint_dir=snakemake.input.checkpoint,
    test_windows=snakemake.input.test,
    val_windows=snakemake.input.val,
    evaluate_config=snakemake.params.evaluate,
    seed=snakemake.params.seed,
    trust_remote_code=snakemake.params.trust_remote_code,
    out_metrics=snakemake.output.metrics,
    out_predictions=snakemake.output.predictions,
)
