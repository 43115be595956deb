from plasmidlm.jobs import run_logged
from plasmidlm.steps import train

run_logged(
    snakemake.log[0],
    train.train,
    threads=snakemake.threads,
    train_windows=snakemake.input.windows,
    val_windows=snakemake.input.val,
    split_path=snakemake.input.split,
    model_config=snakemake.params.model,
    train_config=snakemake.params.train,
    window_length=snakemake.params.window_length,
    seed=snakemake.params.seed,
    model_dir=snakemake.params.model_dir,
    out_summary=snakemake.output.summary,
    out_log=snakemake.output.log_table,
    model_manifest=snakemake.input.get("model_manifest"),
)
