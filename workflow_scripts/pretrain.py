from plasmidlm.jobs import run_logged
from plasmidlm.steps import pretrain

run_logged(
    snakemake.log[0],
    pretrain.pretrain,
    threads=snakemake.threads,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    extra_fasta=list(snakemake.input.extra),
    pretrain_config=snakemake.params.pretrain,
    windows_config=snakemake.params.windows,
    seed=snakemake.params.seed,
    output_dir=snakemake.params.output_dir,
    out_summary=snakemake.output.summary,
    out_log=snakemake.output.log_table,
)
