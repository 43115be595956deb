rule provenance:
    input:
        fasta=config["data"]["fasta"],
        labels=config["data"]["labels"],
        # the manifest of every model the run loads: repository, commit, file hashes
        models=sorted({*HUB_MODELS, *LOCAL_MODELS}),
    output:
        provenance=layout.provenance(RUN),
        config=layout.run_config(RUN),
    log:
        layout.log(RUN, "provenance"),
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
            layout.train_summary(RUN, "{experiment}"), experiment=EXPERIMENTS
        ),
        training_logs=expand(
            layout.training_log(RUN, "{experiment}"), experiment=EXPERIMENTS
        ),
        leakage=expand(layout.leakage(RUN, "{experiment}"), experiment=EXPERIMENTS),
        # every baseline at every window length
        baselines=[
            layout.baseline_metrics(RUN, LENGTH_DIRS[length], baseline)
            for length in WINDOW_LENGTHS
            for baseline in baseline_names()
        ],
        split_summary=layout.data_file(RUN, "split_summary.tsv"),
        split=layout.data_file(RUN, "split.json"),
        classes=layout.data_file(RUN, "classes.tsv"),
        validation=layout.data_file(RUN, "validate.json"),
        provenance=layout.provenance(RUN),
        pretraining=[layout.pretrain_log(RUN)] if uses_pretraining() else [],
        evidence=evidence_outputs(),
    output:
        comparison=report(
            layout.comparison(RUN),
            caption="captions/comparison.rst",
            category="Comparison",
        ),
        html=report(
            layout.report_html(RUN),
            caption="captions/report.rst",
            category="Comparison",
        ),
        # per experiment and sweep setting over replicates, and the paired differences over seeds
        experiments=layout.experiment_summary(RUN),
        seed_differences=layout.seed_differences(RUN),
    log:
        layout.log(RUN, "report"),
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
