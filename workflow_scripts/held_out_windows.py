from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.held_out_windows,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    split_name=snakemake.wildcards.held_out,
    windows_config=snakemake.params.windows,
    count=snakemake.params.n_windows,
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
