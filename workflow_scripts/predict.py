from plasmidlm.jobs import run_logged
from plasmidlm.steps import predict

run_logged(
    snakemake.log[0],
    predict.predict_with_best,
    threads=snakemake.threads,
    model_dir=snakemake.params.model_dir,
    fasta=snakemake.input.fasta,
    predict_config=snakemake.params.predict,
    batch_size=snakemake.params.batch_size,
    precision=snakemake.params.precision,
    trust_remote_code=snakemake.params.trust_remote_code,
    out_windows=snakemake.output.windows,
    out_sequences=snakemake.output.sequences,
    evidence=snakemake.input.evidence[0] if snakemake.input.evidence else None,
)
