from plasmidlm.jobs import run_logged
from plasmidlm.steps import baselines

run_logged(
    snakemake.log[0],
    baselines.kmer_baseline,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    kmer_config=snakemake.params.kmer,
    windows_config=snakemake.params.windows,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_metrics=snakemake.output.metrics,
    out_predictions=snakemake.output.predictions,
)
