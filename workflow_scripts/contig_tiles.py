from plasmidlm.jobs import run_logged
from plasmidlm.steps import evidence

run_logged(
    snakemake.log[0],
    evidence.contig_tiles,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    length=snakemake.params.length,
    contig_lengths=snakemake.params.contig_lengths,
    seed=snakemake.params.seed,
    out_tiles=snakemake.output.tiles,
    out_contigs=snakemake.output.contigs,
)
