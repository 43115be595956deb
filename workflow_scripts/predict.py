import torch

from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

torch.set_num_threads(snakemake.threads)
run_logged(
    snakemake.log[0],
    pipeline.predict_with_best,
    model_dir=snakemake.params.model_dir,
    fasta=snakemake.input.fasta,
    predict_config=snakemake.params.predict,
    batch_size=snakemake.params.batch_size,
    out_sequences=snakemake.output.sequences,
)
