rule provenance:
    input:
        fasta=config["data"]["fasta"],
        labels=config["data"]["labels"],
    output:
        provenance=f"{RUN}/provenance.json",
        config=f"{RUN}/config.yaml",
    log:
        f"{RUN}/logs/provenance.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("provenance"),
        runtime=minutes("provenance"),
    params:
        config=config,
    script:
        "../workflow_scripts/provenance.py"


rule report:
    input:
        metrics=checkpoint_metrics,
        summaries=expand(
            f"{RUN}/{{experiment}}/model/train_summary.json", experiment=EXPERIMENTS
        ),
        training_logs=expand(
            f"{RUN}/{{experiment}}/model/training_log.tsv", experiment=EXPERIMENTS
        ),
        leakage=expand(f"{RUN}/{{experiment}}/leakage.json", experiment=EXPERIMENTS),
        # every baseline at every window length
        baselines=[
            f"{baselines_dir(length)}{baseline}/metrics.json"
            for length in WINDOW_LENGTHS
            for baseline in baseline_names()
        ],
        split_summary=f"{RUN}/data/split_summary.tsv",
        split=f"{RUN}/data/split.json",
        classes=f"{RUN}/data/classes.tsv",
        validation=f"{RUN}/data/validate.json",
        provenance=f"{RUN}/provenance.json",
        pretraining=[f"{RUN}/pretrain/training_log.tsv"] if uses_pretraining() else [],
        evidence=evidence_outputs(),
    output:
        comparison=report(
            f"{RUN}/report/comparison.tsv",
            caption="captions/comparison.rst",
            category="Comparison",
        ),
        html=report(
            f"{RUN}/report/report.html",
            caption="captions/report.rst",
            category="Comparison",
        ),
    log:
        f"{RUN}/logs/report.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("report"),
        runtime=minutes("report"),
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.provenance),
        experiments=list(EXPERIMENTS),
        baselines=baseline_names(),
        config=config,
    script:
        "../workflow_scripts/report.py"
