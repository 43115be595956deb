from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.near_duplicate_groups,
    sketches=snakemake.input.sketches,
    selected=snakemake.input.selected,
    pairs=snakemake.input.pairs,
    linkage=snakemake.params.linkage,
    measure=snakemake.params.measure,
    out_groups=snakemake.output.groups,
    out_json=snakemake.output.json,
)
