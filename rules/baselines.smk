rule kmer_baseline:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        metrics=f"{RUN}/baselines/{{length_dir}}kmer/metrics.json",
        predictions=f"{RUN}/baselines/{{length_dir}}kmer/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/{{length_dir}}kmer.log",
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
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        metrics=f"{RUN}/baselines/{{length_dir}}majority/metrics.json",
        predictions=f"{RUN}/baselines/{{length_dir}}majority/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/{{length_dir}}majority.log",
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
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        logistic_metrics=f"{RUN}/baselines/{{length_dir}}embeddings_logistic/metrics.json",
        logistic_predictions=f"{RUN}/baselines/{{length_dir}}embeddings_logistic/predictions.tsv.gz",
        cnn_metrics=f"{RUN}/baselines/{{length_dir}}embeddings_cnn/metrics.json",
        cnn_predictions=f"{RUN}/baselines/{{length_dir}}embeddings_cnn/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/{{length_dir}}embeddings.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("embeddings_baseline"),
        runtime=minutes("embeddings_baseline"),
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
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        **{
            f"{name}_{kind}": f"{RUN}/baselines/{{length_dir}}{name}/{file}"
            for name in COMPOSITION_BASELINES
            for kind, file in (
                ("metrics", "metrics.json"),
                ("predictions", "predictions.tsv.gz"),
            )
        },
    log:
        f"{RUN}/logs/baselines/{{length_dir}}composition.log",
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
        train=lambda wildcards: f"{RUN}/{cnn_experiment(length_of(wildcards))}/train_windows.tsv.gz",
        val=f"{RUN}/data/{{length_dir}}val_windows.tsv.gz",
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
        # no test metrics unless the leakage check of these training windows passed
        leakage=lambda wildcards: f"{RUN}/{cnn_experiment(length_of(wildcards))}/leakage.json",
    output:
        metrics=f"{RUN}/baselines/{{length_dir}}cnn/metrics.json",
        predictions=f"{RUN}/baselines/{{length_dir}}cnn/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/{{length_dir}}cnn.log",
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
