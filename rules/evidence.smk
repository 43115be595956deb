rule shuffled_test_windows:
    input:
        layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        layout.data_file(RUN, "test_windows_shuffled.tsv.gz", "{length_dir}"),
    log:
        layout.log(RUN, "{length_dir}test_windows_shuffled"),
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
        split=layout.data_file(RUN, "split.tsv"),
    output:
        tiles=layout.data_file(RUN, "test_tiles.tsv.gz", "{length_dir}"),
        contigs=layout.data_file(RUN, "test_contigs.tsv.gz", "{length_dir}"),
    log:
        layout.log(RUN, "{length_dir}contig_tiles"),
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
        unpack(model_inputs),
        summary=layout.train_summary(RUN, "{experiment}"),
        training_log=layout.training_log(RUN, "{experiment}"),
        test=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_windows.tsv.gz"
        ),
        val=lambda wildcards: experiment_data_file(
            wildcards.experiment, "val_windows.tsv.gz"
        ),
        shuffled=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_windows_shuffled.tsv.gz"
        ),
        tiles=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_tiles.tsv.gz"
        ),
        contigs=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_contigs.tsv.gz"
        ),
        # no test metrics unless the leakage check passed
        leakage=layout.leakage(RUN, "{experiment}"),
        evaluations=lambda wildcards: [
            layout.checkpoint_predictions(RUN, wildcards.experiment, step)
            for step in checkpoint_steps(wildcards.experiment)
        ],
    output:
        json=layout.evidence_metrics(RUN, "{experiment}"),
        contig_lengths=layout.contig_lengths(RUN, "{experiment}"),
        shuffled_predictions=layout.evidence_file(
            RUN, "{experiment}", "shuffled_predictions.tsv.gz"
        ),
    log:
        layout.log(RUN, "{experiment}/evidence"),
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("model_evidence", model_memory("model_evidence")),
        runtime=minutes("model_evidence"),
        gpu=config["evaluate"]["gpus"],
    params:
        model_dir=lambda wildcards, input: os.path.dirname(input.summary),
        length=lambda wildcards: experiment_length(wildcards.experiment),
        eval_dir=lambda wildcards: layout.eval_dir(RUN, wildcards.experiment),
        evaluate={
            key: config["evaluate"][key]
            for key in ("batch_size", "bootstrap", "both_strands", "precision")
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
        split=layout.data_file(RUN, "split.tsv"),
        shuffled=layout.data_file(RUN, "test_windows_shuffled.tsv.gz", "{length_dir}"),
        tiles=layout.data_file(RUN, "test_tiles.tsv.gz", "{length_dir}"),
        contigs=layout.data_file(RUN, "test_contigs.tsv.gz", "{length_dir}"),
    output:
        json=layout.kmer_evidence(RUN, "{length_dir}"),
        contig_lengths=layout.kmer_contig_lengths(RUN, "{length_dir}"),
    log:
        layout.log(RUN, "baselines/{length_dir}kmer_evidence"),
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
