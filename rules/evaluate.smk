rule evaluate_checkpoint:
    input:
        summary=f"{RUN}/{{experiment}}/model/train_summary.json",
        checkpoint=f"{RUN}/{{experiment}}/model/checkpoint-{{step}}",
        test=f"{RUN}/data/test_windows.tsv.gz",
        val=f"{RUN}/data/val_windows.tsv.gz",
        # no test metrics unless the leakage check passed
        leakage=f"{RUN}/{{experiment}}/leakage.json",
    output:
        metrics=f"{RUN}/{{experiment}}/eval/checkpoint-{{step}}/metrics.json",
        predictions=f"{RUN}/{{experiment}}/eval/checkpoint-{{step}}/predictions.tsv.gz",
    log:
        f"{RUN}/logs/{{experiment}}/evaluate_checkpoint-{{step}}.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        evaluate=config["evaluate"],
        seed=config["seed"],
        trust_remote_code=lambda wildcards: EXPERIMENTS[wildcards.experiment]["model"][
            "trust_remote_code"
        ],
    script:
        "../workflow_scripts/evaluate_checkpoint.py"
