from plasmidlm import hub
from plasmidlm.jobs import run_logged

repo_id, revision = snakemake.params.model
run_logged(
    snakemake.log[0],
    hub.fetch,
    repo_id=repo_id,
    revision=revision,
    store=snakemake.params.store,
    out_manifest=snakemake.output[0],
)
