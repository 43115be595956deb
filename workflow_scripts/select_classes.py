from plasmidlm import pipeline
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    pipeline.select,
    validated=snakemake.input.validated,
    validation=snakemake.input.validation,
    classes_config=snakemake.params.classes,
    out_selected=snakemake.output.selected,
    out_classes=snakemake.output.classes,
)
