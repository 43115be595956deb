rule kmer_baseline:
    input:
        fasta=config["data"]["fasta"],
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        metrics=layout.baseline_metrics(RUN, "{length_dir}", "kmer"),
        predictions=layout.baseline_file(
            RUN, "{length_dir}", "kmer", "predictions.tsv.gz"
        ),
    log:
        layout.log(RUN, "baselines/{length_dir}kmer"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("kmer_baseline", kmer_baseline_features),
        runtime=minutes("kmer_baseline"),
    params:
        kmer=config["baselines"]["kmer"],
        windows=window_policy,
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/kmer_baseline.py"


rule majority_baseline:
    input:
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        metrics=layout.baseline_metrics(RUN, "{length_dir}", "majority"),
        predictions=layout.baseline_file(
            RUN, "{length_dir}", "majority", "predictions.tsv.gz"
        ),
    log:
        layout.log(RUN, "baselines/{length_dir}majority"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("majority_baseline"),
        runtime=minutes("majority_baseline"),
    params:
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/majority_baseline.py"


rule embeddings_baseline:
    input:
        unpack(embeddings_model_inputs),
        fasta=config["data"]["fasta"],
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        logistic_metrics=layout.baseline_metrics(
            RUN, "{length_dir}", "embeddings_logistic"
        ),
        logistic_predictions=layout.baseline_file(
            RUN, "{length_dir}", "embeddings_logistic", "predictions.tsv.gz"
        ),
        cnn_metrics=layout.baseline_metrics(RUN, "{length_dir}", "embeddings_cnn"),
        cnn_predictions=layout.baseline_file(
            RUN, "{length_dir}", "embeddings_cnn", "predictions.tsv.gz"
        ),
    log:
        layout.log(RUN, "baselines/{length_dir}embeddings"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("embeddings_baseline"),
        runtime=minutes("embeddings_baseline"),
        gpu=config["evaluate"]["gpus"],
    params:
        embeddings=config["baselines"]["embeddings"],
        model=embeddings_model(),
        from_experiment=config["baselines"]["embeddings"]["model"] in EXPERIMENTS,
        trust_remote_code=embeddings_trust_remote_code(config, EXPERIMENTS),
        windows=window_policy,
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/embeddings_baseline.py"


rule composition_baselines:
    input:
        fasta=config["data"]["fasta"],
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        **{
            f"{name}_{kind}": layout.baseline_file(RUN, "{length_dir}", name, file)
            for name in COMPOSITION_BASELINES
            for kind, file in (
                ("metrics", "metrics.json"),
                ("predictions", "predictions.tsv.gz"),
            )
        },
    log:
        layout.log(RUN, "baselines/{length_dir}composition"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("composition_baselines"),
        runtime=minutes("composition_baselines"),
    params:
        composition=config["baselines"]["composition"],
        windows=window_policy,
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/composition_baselines.py"


rule cnn_baseline:
    input:
        train=lambda wildcards: layout.train_windows(
            RUN, cnn_experiment(length_of(wildcards))
        ),
        val=layout.data_file(RUN, "val_windows.tsv.gz", "{length_dir}"),
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
        # no test metrics unless the leakage check of these training windows passed
        leakage=lambda wildcards: layout.leakage(
            RUN, cnn_experiment(length_of(wildcards))
        ),
    output:
        metrics=layout.baseline_metrics(RUN, "{length_dir}", "cnn"),
        predictions=layout.baseline_file(
            RUN, "{length_dir}", "cnn", "predictions.tsv.gz"
        ),
    log:
        layout.log(RUN, "baselines/{length_dir}cnn"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("cnn_baseline"),
        runtime=minutes("cnn_baseline"),
    params:
        cnn={
            key: value
            for key, value in config["baselines"]["cnn"].items()
            if key != "enabled"
        },
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/cnn_baseline.py"
