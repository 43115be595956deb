rule shuffled_test_windows:
    input:
        f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        f"{RUN}/data/{{length_dir}}test_windows_shuffled.tsv.gz",
    log:
        f"{RUN}/logs/{{length_dir}}test_windows_shuffled.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("shuffled_test_windows"),
        runtime=minutes("shuffled_test_windows"),
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/shuffled_test_windows.py"


rule contig_tiles:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
    output:
        tiles=f"{RUN}/data/{{length_dir}}test_tiles.tsv.gz",
        contigs=f"{RUN}/data/{{length_dir}}test_contigs.tsv.gz",
    log:
        f"{RUN}/logs/{{length_dir}}contig_tiles.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("contig_tiles"),
        runtime=minutes("contig_tiles"),
    params:
        length=length_of,
        contig_lengths=config["evidence"]["contig_lengths"],
        seed=config["seed"],
    script:
        "../workflow_scripts/contig_tiles.py"


rule model_evidence:
    input:
        summary=f"{RUN}/{{experiment}}/model/train_summary.json",
        training_log=f"{RUN}/{{experiment}}/model/training_log.tsv",
        test=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_windows.tsv.gz",
        val=lambda wildcards: f"{experiment_data(wildcards.experiment)}val_windows.tsv.gz",
        shuffled=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_windows_shuffled.tsv.gz",
        tiles=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_tiles.tsv.gz",
        contigs=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_contigs.tsv.gz",
        # no test metrics unless the leakage check passed
        leakage=f"{RUN}/{{experiment}}/leakage.json",
        evaluations=lambda wildcards: [
            f"{RUN}/{wildcards.experiment}/eval/checkpoint-{step}/predictions.tsv.gz"
            for step in checkpoint_steps(wildcards.experiment)
        ],
    output:
        json=f"{RUN}/{{experiment}}/evidence/metrics.json",
        contig_lengths=f"{RUN}/{{experiment}}/evidence/contig_lengths.tsv",
        shuffled_predictions=f"{RUN}/{{experiment}}/evidence/shuffled_predictions.tsv.gz",
    log:
        f"{RUN}/logs/{{experiment}}/evidence.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("model_evidence"),
        runtime=minutes("model_evidence"),
    params:
        model_dir=lambda wildcards, input: os.path.dirname(input.summary),
        length=lambda wildcards: experiment_length(wildcards.experiment),
        eval_dir=lambda wildcards: f"{RUN}/{wildcards.experiment}/eval",
        evaluate={
            key: config["evaluate"][key]
            for key in ("batch_size", "bootstrap", "both_strands")
        },
        evidence={"calibration_bins": config["evidence"]["calibration_bins"]},
        seed=config["seed"],
        trust_remote_code=lambda wildcards: EXPERIMENTS[wildcards.experiment]["model"][
            "trust_remote_code"
        ],
    script:
        "../workflow_scripts/model_evidence.py"


rule kmer_evidence:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
        shuffled=f"{RUN}/data/{{length_dir}}test_windows_shuffled.tsv.gz",
        tiles=f"{RUN}/data/{{length_dir}}test_tiles.tsv.gz",
        contigs=f"{RUN}/data/{{length_dir}}test_contigs.tsv.gz",
    output:
        json=f"{RUN}/baselines/{{length_dir}}kmer/evidence.json",
        contig_lengths=f"{RUN}/baselines/{{length_dir}}kmer/contig_lengths.tsv",
    log:
        f"{RUN}/logs/baselines/{{length_dir}}kmer_evidence.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("kmer_evidence"),
        runtime=minutes("kmer_evidence"),
    params:
        kmer=config["baselines"]["kmer"],
        windows=window_policy,
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow_scripts/kmer_evidence.py"
