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
