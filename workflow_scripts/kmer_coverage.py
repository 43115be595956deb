from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.kmer_coverage,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    kmer=snakemake.params.kmer,
    out=snakemake.output[0],
)
