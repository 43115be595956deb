from plasmidlm import report
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    report.write_report,
    run_dir=snakemake.params.run_dir,
    experiments=snakemake.params.experiments,
    baselines=snakemake.params.baselines,
    config=snakemake.params.config,
    out_comparison=snakemake.output.comparison,
    out_html=snakemake.output.html,
    out_experiments=snakemake.output.experiments,
    out_seed_differences=snakemake.output.seed_differences,
)
