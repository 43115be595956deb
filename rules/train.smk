# A checkpoint: which checkpoint-<step> directories training writes is known only after it ran.
# The checkpoint directories are not declared outputs, so Snakemake never deletes them: not when the job
# fails, and not before re-running it (it removes only train_summary.json and training_log.tsv). The job
# itself decides which checkpoints stay (plasmidlm.training.checkpointing.prepare_output_dir): a re-run for a
# key that does not change the trajectory (e.g. logging_steps) resumes from the last checkpoint and, when
# training had finished, ends at once; checkpoints that other parameters make invalid are moved to
# model/set_aside/. SIGTERM (a Slurm time limit) ends the job after the current step, as a failure, so that
# Snakemake starts it again (train.retries) and it resumes from its last checkpoint (docs/clusters.md).
checkpoint train:
    input:
        unpack(pretrained_inputs),
        unpack(model_inputs),
        windows=layout.train_windows(RUN, "{experiment}"),
        val=lambda wildcards: experiment_data_file(
            wildcards.experiment, "val_windows.tsv.gz"
        ),
        split=layout.data_file(RUN, "split.tsv"),
    output:
        summary=layout.train_summary(RUN, "{experiment}"),
        log_table=layout.training_log(RUN, "{experiment}"),
    log:
        layout.log(RUN, "{experiment}/train"),
    retries: max((EXPERIMENTS[name]["train"]["retries"] for name in EXPERIMENTS), default=0)
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("train", windows_of_one_epoch, model_memory("train")),
        runtime=minutes("train"),
        # train.gpus: data-parallel ranks in this one job (plasmidlm.training.distributed); Slurm gets that many GPUs.
        gpu=lambda wildcards: EXPERIMENTS[wildcards.experiment]["train"]["gpus"],
    params:
        model=lambda wildcards: experiment_model(wildcards.experiment),
        train=lambda wildcards: EXPERIMENTS[wildcards.experiment]["train"],
        # build_or_load checks that windows of this length fit the model's token limit
        window_length=lambda wildcards: experiment_length(wildcards.experiment),
        seed=lambda wildcards: training_seed(wildcards.experiment),
        model_dir=lambda wildcards: layout.model_dir(RUN, wildcards.experiment),
    script:
        "../workflow_scripts/train.py"
