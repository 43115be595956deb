rule predict:
    input:
        fasta=lambda wildcards: config["predict"]["fasta"][wildcards.sample],
        summary=f"{RUN}/{{experiment}}/model/train_summary.json",
        training_log=f"{RUN}/{{experiment}}/model/training_log.tsv",
        evidence=lambda wildcards: (
            [f"{RUN}/{wildcards.experiment}/evidence/metrics.json"]
            if config["evidence"]["enabled"]
            else []
        ),
    output:
        sequences=f"{RUN}/predict/{{sample}}/{{experiment}}.sequences.tsv",
        windows=f"{RUN}/predict/{{sample}}/{{experiment}}.windows.tsv.gz",
    log:
        f"{RUN}/logs/{{experiment}}/predict_{{sample}}.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("predict"),
        runtime=minutes("predict"),
    params:
        predict={
            key: value for key, value in config["predict"].items() if key != "fasta"
        },
        batch_size=config["evaluate"]["batch_size"],
        trust_remote_code=lambda wildcards: EXPERIMENTS[wildcards.experiment]["model"][
            "trust_remote_code"
        ],
        model_dir=lambda wildcards, input: os.path.dirname(input.summary),
    script:
        "../workflow_scripts/predict.py"
