# Masked-LM pretraining on the training split. Checkpoints and the final model (pretrain/model) are not
# declared outputs, so that Snakemake never deletes them and a re-run resumes (see rules/train.smk).
rule pretrain:
    input:
        fasta=config["data"]["fasta"],
        split=layout.data_file(RUN, "split.tsv"),
        extra=config["pretrain"]["extra_fasta"],
    output:
        summary=layout.pretrain_summary(RUN),
        log_table=layout.pretrain_log(RUN),
    log:
        layout.log(RUN, "pretrain"),
    # a job stopped by a time limit is started again and resumes from its last checkpoint
    retries: config["pretrain"]["retries"]
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("pretrain", pretraining_windows),
        runtime=minutes("pretrain"),
        gpu=config["pretrain"]["gpus"],
    params:
        pretrain={
            key: value
            for key, value in config["pretrain"].items()
            if key != "extra_fasta"
        },
        windows=plan.window_policy(config, config["windows"]["length"]),
        seed=config["seed"],
        output_dir=lambda wildcards, output: os.path.dirname(output.summary),
    script:
        "../workflow_scripts/pretrain.py"
