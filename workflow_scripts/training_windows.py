from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.training_windows,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows_path=snakemake.input.test,
    windows_config=snakemake.params.windows,
    length=snakemake.params.length,
    seed=snakemake.params.seed,
    experiment=snakemake.wildcards.experiment,
    out=snakemake.output.windows,
    out_leakage=snakemake.output.leakage,
)
