from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.near_duplicates,
    sketches=snakemake.input.sketches,
    selected=snakemake.input.selected,
    measure=snakemake.params.measure,
    threshold=snakemake.params.threshold,
    out=snakemake.output[0],
)
