from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.jobs import run_logged
from plasmidlm.steps import baselines

run_logged(
    snakemake.log[0],
    baselines.composition_baselines,
    fasta=snakemake.input.fasta,
    split_path=snakemake.input.split,
    test_windows=snakemake.input.test,
    composition_config=snakemake.params.composition,
    windows_config=snakemake.params.windows,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_metrics={name: snakemake.output[f"{name}_metrics"] for name in COMPOSITION_BASELINES},
    out_predictions={name: snakemake.output[f"{name}_predictions"] for name in COMPOSITION_BASELINES},
)
