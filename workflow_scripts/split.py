from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.split,
    selected=snakemake.input.selected,
    near_duplicate_pairs=snakemake.input.get("near_duplicates"),
    split_config=snakemake.params.split,
    seed=snakemake.params.seed,
    out_split=snakemake.output.split,
    out_summary=snakemake.output.summary,
    out_json=snakemake.output.json,
)
