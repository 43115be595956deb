from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.kmer_coverage,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    kmer=snakemake.params.kmer,
    out=snakemake.output[0],
)
