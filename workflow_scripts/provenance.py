from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.provenance,
    inputs={"fasta": snakemake.input.fasta, "labels": snakemake.input.labels},
    config=snakemake.params.config,
    out=snakemake.output.provenance,
    out_config=snakemake.output.config,
)
