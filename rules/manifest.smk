# The last step of a run: path, size and SHA-256 of every file in results/<run>/ (plasmidlm.manifest), so
# that a copied or shared results folder can be checked with plasmidlm.manifest.verify_manifest.
rule manifest:
    input:
        # everything rule all collects but the manifest: all other files of the run are written by then
        lambda wildcards: [
            path for path in rules.all.input if path != layout.manifest(RUN)
        ],
    output:
        layout.manifest(RUN),
    log:
        # plasmidlm.manifest.UNLISTED: still being written while the files are hashed
        layout.manifest_log(RUN),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("manifest"),
        runtime=minutes("manifest"),
    script:
        "../workflow_scripts/manifest.py"
