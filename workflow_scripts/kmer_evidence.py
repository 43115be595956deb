from plasmidlm.jobs import run_logged
from plasmidlm.steps import evidence

run_logged(
    snakemake.log[0],
    evidence.kmer_evidence,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    shuffled_windows=snakemake.input.shuffled,
    tiles_path=snakemake.input.tiles,
    contigs_path=snakemake.input.contigs,
    kmer_config=snakemake.params.kmer,
    windows_config=snakemake.params.windows,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_json=snakemake.output.json,
    out_contig_lengths=snakemake.output.contig_lengths,
)
