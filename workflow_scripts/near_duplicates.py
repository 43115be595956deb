from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.near_duplicates,
    sketches=snakemake.input.sketches,
    selected=snakemake.input.selected,
    measure=snakemake.params.measure,
    threshold=snakemake.params.threshold,
    out=snakemake.output[0],
)
