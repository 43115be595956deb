from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.validate,
    fasta=snakemake.input.fasta,
    labels=snakemake.input.labels,
    data_config=snakemake.params.data,
    window_length=snakemake.params.window_length,
    out_table=snakemake.output.table,
    out_summary=snakemake.output.summary,
)
