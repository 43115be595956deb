rule kmer_baseline:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/test_windows.tsv.gz",
    output:
        metrics=f"{RUN}/baselines/kmer/metrics.json",
        predictions=f"{RUN}/baselines/kmer/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/kmer.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("kmer_baseline", kmer_baseline_features),
        runtime=minutes("kmer_baseline"),
    params:
        kmer=config["baselines"]["kmer"],
        length=config["windows"]["length"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/kmer_baseline.py"


rule majority_baseline:
    input:
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/test_windows.tsv.gz",
    output:
        metrics=f"{RUN}/baselines/majority/metrics.json",
        predictions=f"{RUN}/baselines/majority/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/majority.log",
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
        test=f"{RUN}/data/test_windows.tsv.gz",
    output:
        logistic_metrics=f"{RUN}/baselines/embeddings_logistic/metrics.json",
        logistic_predictions=f"{RUN}/baselines/embeddings_logistic/predictions.tsv.gz",
        cnn_metrics=f"{RUN}/baselines/embeddings_cnn/metrics.json",
        cnn_predictions=f"{RUN}/baselines/embeddings_cnn/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/embeddings.log",
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
        length=config["windows"]["length"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/embeddings_baseline.py"


rule composition_baselines:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/test_windows.tsv.gz",
    output:
        **{
            f"{name}_{kind}": f"{RUN}/baselines/{name}/{file}"
            for name in COMPOSITION_BASELINES
            for kind, file in (
                ("metrics", "metrics.json"),
                ("predictions", "predictions.tsv.gz"),
            )
        },
    log:
        f"{RUN}/logs/baselines/composition.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("composition_baselines"),
        runtime=minutes("composition_baselines"),
    params:
        composition=config["baselines"]["composition"],
        length=config["windows"]["length"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/composition_baselines.py"


rule cnn_baseline:
    input:
        train=lambda wildcards: f"{RUN}/{cnn_experiment()}/train_windows.tsv.gz",
        val=f"{RUN}/data/val_windows.tsv.gz",
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/test_windows.tsv.gz",
        # no test metrics unless the leakage check of these training windows passed
        leakage=lambda wildcards: f"{RUN}/{cnn_experiment()}/leakage.json",
    output:
        metrics=f"{RUN}/baselines/cnn/metrics.json",
        predictions=f"{RUN}/baselines/cnn/predictions.tsv.gz",
    log:
        f"{RUN}/logs/baselines/cnn.log",
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
