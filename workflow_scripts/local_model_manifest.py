from plasmidlm import hub
from plasmidlm.jobs import run_logged

run_logged(
    snakemake.log[0],
    hub.manifest_local,
    folder=snakemake.params.folder,
    out_manifest=snakemake.output[0],
)
