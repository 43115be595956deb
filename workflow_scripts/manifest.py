import os

from plasmidlm import manifest
from plasmidlm.jobs import run_logged

run_dir = os.path.dirname(snakemake.output[0])
run_logged(snakemake.log[0], manifest.write_manifest, run_dir=run_dir)
