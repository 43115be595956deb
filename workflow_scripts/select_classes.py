from plasmidlm.jobs import run_logged
from plasmidlm.steps import data

run_logged(
    snakemake.log[0],
    data.select,
    validated=snakemake.input.validated,
    validation=snakemake.input.validation,
    classes_config=snakemake.params.classes,
    out_selected=snakemake.output.selected,
    out_classes=snakemake.output.classes,
)
