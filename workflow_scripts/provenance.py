from plasmidlm.jobs import run_logged
from plasmidlm.steps import report

run_logged(
    snakemake.log[0],
    report.provenance,
    inputs={"fasta": snakemake.input.fasta, "labels": snakemake.input.labels},
    config=snakemake.params.config,
    out=snakemake.output.provenance,
    out_config=snakemake.output.config,
    models=snakemake.input.models,
)
