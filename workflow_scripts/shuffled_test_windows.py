from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.shuffled_test_windows,
    test_windows=snakemake.input[0],
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
