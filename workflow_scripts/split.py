from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.split,
    selected=snakemake.input.selected,
    groups=snakemake.input.get("groups"),
    group_summary=snakemake.input.get("group_summary"),
    pairs=snakemake.input.get("pairs"),
    split_config=snakemake.params.split,
    seed=snakemake.params.seed,
    out_split=snakemake.output.split,
    out_summary=snakemake.output.summary,
    out_json=snakemake.output.json,
)
