import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The workflow uses the library of its own checkout; its scripts find it through the link
# workflow_scripts/plasmidlm -> ../src/plasmidlm (Snakemake puts a script's folder on sys.path).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from plasmidlm import layout
from plasmidlm.config import (
    SCHEMA_PATH,
    check_config_given,
    check_references,
    embeddings_trust_remote_code,
    resolve_experiments,
)

# No `configfile:` directive here: Snakemake would deep-merge a --configfile into it, so that a user's file
# could never drop the demo's experiments. The workflow profile (profiles/default/config.yaml) passes the
# demo, config.yaml, as the default --configfile instead; a --configfile on the command line replaces it,
# and Snakemake hands that same file to every job it spawns (on Slurm too).
check_config_given(config)
validate(config, str(SCHEMA_PATH))
check_references(config)
EXPERIMENTS = resolve_experiments(config)
RUN = layout.run_folder(config["run_name"])


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/baselines.smk"
include: "rules/evidence.smk"
include: "rules/report.smk"
include: "rules/predict.smk"
include: "rules/manifest.smk"


# On Slurm, a job asking for more than any node of its partition has would pend forever: stop before submitting.
onstart:
    check_slurm_requests()


rule all:
    default_target: True
    input:
        layout.report_html(RUN),
        layout.comparison(RUN),
        expand(
            PREDICTED_SEQUENCES,
            sample=config["predict"]["fasta"],
            experiment=EXPERIMENTS,
        ),
        # written last: rule manifest waits for every other file listed here
        layout.manifest(RUN),
