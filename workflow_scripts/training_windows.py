from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.training_windows,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    windows_config=snakemake.params.windows,
    length=snakemake.params.length,
    seed=snakemake.params.seed,
    experiment=snakemake.wildcards.experiment,
    out=snakemake.output[0],
    epoch_schedule=snakemake.params.epoch_schedule,
)
