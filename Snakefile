import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The workflow always uses the library of its own checkout, locally and inside cluster jobs.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))

from plasmidlm.config import SCHEMA_PATH, resolve_experiments


configfile: "config.yaml"


validate(config, str(SCHEMA_PATH))
EXPERIMENTS = resolve_experiments(config)
RUN = f"results/{config['run_name']}"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/baselines.smk"
include: "rules/report.smk"


rule all:
    input:
        f"{RUN}/report/report.html",
        f"{RUN}/report/comparison.tsv",
    default_target: True
