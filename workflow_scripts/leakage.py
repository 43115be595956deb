from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.leakage,
    split_path=snakemake.input.split,
    train_windows=snakemake.input.train,
    val_windows=snakemake.input.val,
    test_windows=snakemake.input.test,
    coverage=snakemake.input.coverage,
    kmer=snakemake.params.kmer,
    out=snakemake.output[0],
)
