from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.near_duplicate_groups,
    sketches=snakemake.input.sketches,
    selected=snakemake.input.selected,
    pairs=snakemake.input.pairs,
    linkage=snakemake.params.linkage,
    measure=snakemake.params.measure,
    out_groups=snakemake.output.groups,
    out_json=snakemake.output.json,
)
