from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.held_out_windows,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    split_name=snakemake.wildcards.held_out,
    windows_config=snakemake.params.windows,
    count=snakemake.params.n_windows,
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
