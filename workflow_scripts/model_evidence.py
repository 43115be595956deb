from plasmidlm.jobs import run_logged
from plasmidlm.steps import evidence

run_logged(
    snakemake.log[0],
    evidence.model_evidence,
    threads=snakemake.threads,
    model_dir=snakemake.params.model_dir,
    eval_dir=snakemake.params.eval_dir,
    test_windows=snakemake.input.test,
    val_windows=snakemake.input.val,
    shuffled_windows=snakemake.input.shuffled,
    tiles_path=snakemake.input.tiles,
    contigs_path=snakemake.input.contigs,
    length=snakemake.params.length,
    evaluate_config=snakemake.params.evaluate,
    evidence_config=snakemake.params.evidence,
    seed=snakemake.params.seed,
    trust_remote_code=snakemake.params.trust_remote_code,
    out_json=snakemake.output.json,
    out_contig_lengths=snakemake.output.contig_lengths,
    out_shuffled_predictions=snakemake.output.shuffled_predictions,
)
