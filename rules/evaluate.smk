# Only the checkpoint directory ties an evaluation to training, not train_summary.json: a train job re-run
# for a key that leaves the checkpoints valid (e.g. logging_steps) rewrites the summary but not them, and
# their evaluations stay. A checkpoint trained anew is a new directory, so its evaluation runs again.
rule evaluate_checkpoint:
    input:
        unpack(model_inputs),
        checkpoint=layout.checkpoint_dir(RUN, "{experiment}", "{step}"),
        test=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_windows.tsv.gz"
        ),
        val=lambda wildcards: experiment_data_file(
            wildcards.experiment, "val_windows.tsv.gz"
        ),
        # no test metrics unless the leakage check passed
        leakage=layout.leakage(RUN, "{experiment}"),
    output:
        metrics=layout.checkpoint_metrics(RUN, "{experiment}", "{step}"),
        predictions=layout.checkpoint_predictions(RUN, "{experiment}", "{step}"),
    log:
        layout.log(RUN, "{experiment}/evaluate_checkpoint-{step}"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("evaluate_checkpoint", model_memory("evaluate_checkpoint")),
        runtime=minutes("evaluate_checkpoint"),
        gpu=config["evaluate"]["gpus"],
    params:
        evaluate={
            key: config["evaluate"][key]
            for key in ("batch_size", "bootstrap", "both_strands", "precision")
        },
        seed=config["seed"],
        trust_remote_code=lambda wildcards: EXPERIMENTS[wildcards.experiment]["model"][
            "trust_remote_code"
        ],
    script:
        "../workflow_scripts/evaluate_checkpoint.py"
