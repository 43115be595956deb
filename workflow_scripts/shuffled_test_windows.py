from plasmidlm.jobs import run_logged
from plasmidlm.steps import evidence

run_logged(
    snakemake.log[0],
    evidence.shuffled_test_windows,
    test_windows=snakemake.input[0],
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
