rule predict:
    input:
        unpack(model_inputs),
        fasta=lambda wildcards: config["predict"]["fasta"][wildcards.sample],
        summary=layout.train_summary(RUN, "{experiment}"),
        training_log=layout.training_log(RUN, "{experiment}"),
        evidence=lambda wildcards: (
            [layout.evidence_metrics(RUN, wildcards.experiment)]
            if config["evidence"]["enabled"]
            else []
        ),
    output:
        sequences=PREDICTED_SEQUENCES,
        windows=PREDICTED_WINDOWS,
    log:
        layout.log(RUN, "{experiment}/predict_{sample}"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("predict", model_memory("predict")),
        runtime=minutes("predict"),
        gpu=config["evaluate"]["gpus"],
    params:
        predict={
            key: value for key, value in config["predict"].items() if key != "fasta"
        },
        batch_size=config["evaluate"]["batch_size"],
        precision=config["evaluate"]["precision"],
        trust_remote_code=lambda wildcards: EXPERIMENTS[wildcards.experiment]["model"][
            "trust_remote_code"
        ],
        model_dir=lambda wildcards, input: os.path.dirname(input.summary),
    script:
        "../workflow_scripts/predict.py"
