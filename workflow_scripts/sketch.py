from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.sketch,
    fasta=snakemake.input.fasta,
    validated=snakemake.input.validated,
    ksize=snakemake.params.ksize,
    scaled=snakemake.params.scaled,
    out=snakemake.output[0],
    threads=snakemake.threads,
)
