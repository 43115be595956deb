rule validate:
    input:
        fasta=config["data"]["fasta"],
        labels=config["data"]["labels"],
    output:
        table=f"{RUN}/data/validated.tsv",
        summary=f"{RUN}/data/validate.json",
    log:
        f"{RUN}/logs/validate.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("validate"),
        runtime=minutes("validate"),
    params:
        data=config["data"],
        # the longest length of an experiment: every length then draws from the same plasmids
        window_length=max(WINDOW_LENGTHS),
    script:
        "../workflow_scripts/validate.py"


rule select_classes:
    input:
        validated=f"{RUN}/data/validated.tsv",
        validation=f"{RUN}/data/validate.json",
    output:
        selected=f"{RUN}/data/selected.tsv",
        classes=f"{RUN}/data/classes.tsv",
    log:
        f"{RUN}/logs/select_classes.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("select_classes"),
        runtime=minutes("select_classes"),
    params:
        classes=config["classes"],
    script:
        "../workflow_scripts/select_classes.py"


rule sketch:
    input:
        fasta=config["data"]["fasta"],
        validated=f"{RUN}/data/validated.tsv",
    output:
        f"{RUN}/data/sketches.npz",
    log:
        f"{RUN}/logs/sketch.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 2
    resources:
        mem_mb=memory("sketch"),
        runtime=minutes("sketch"),
    params:
        ksize=config["split"]["near_duplicates"]["ksize"],
        scaled=config["split"]["near_duplicates"]["scaled"],
    script:
        "../workflow_scripts/sketch.py"


rule near_duplicates:
    input:
        sketches=f"{RUN}/data/sketches.npz",
        selected=f"{RUN}/data/selected.tsv",
    output:
        f"{RUN}/data/near_duplicates.tsv",
    log:
        f"{RUN}/logs/near_duplicates.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("near_duplicates"),
        runtime=minutes("near_duplicates"),
    params:
        measure=config["split"]["near_duplicates"]["measure"],
        threshold=config["split"]["near_duplicates"]["threshold"],
    script:
        "../workflow_scripts/near_duplicates.py"


rule near_duplicate_groups:
    input:
        sketches=f"{RUN}/data/sketches.npz",
        selected=f"{RUN}/data/selected.tsv",
        pairs=f"{RUN}/data/near_duplicates.tsv",
    output:
        groups=f"{RUN}/data/near_duplicate_groups.tsv",
        json=f"{RUN}/data/near_duplicate_groups.json",
    log:
        f"{RUN}/logs/near_duplicate_groups.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("near_duplicate_groups"),
        runtime=minutes("near_duplicate_groups"),
    params:
        linkage=config["split"]["near_duplicates"]["linkage"],
        measure=config["split"]["near_duplicates"]["measure"],
    script:
        "../workflow_scripts/near_duplicate_groups.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        split=f"{RUN}/data/split.tsv",
        summary=report(
            f"{RUN}/data/split_summary.tsv",
            caption="captions/split_summary.rst",
            category="Data",
        ),
        json=f"{RUN}/data/split.json",
    log:
        f"{RUN}/logs/split.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("split"),
        runtime=minutes("split"),
    params:
        split={
            key: config["split"][key]
            for key in (
                "val_fraction",
                "test_fraction",
                "assignment",
                "max_deviation",
                "accept_deviation",
                "cross_class_groups",
            )
        },
        seed=config["seed"],
    script:
        "../workflow_scripts/split.py"


rule held_out_windows:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
    output:
        f"{RUN}/data/{{length_dir}}{{held_out}}_windows.tsv.gz",
    log:
        f"{RUN}/logs/{{length_dir}}{{held_out}}_windows.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("held_out_windows"),
        runtime=minutes("held_out_windows"),
    params:
        # every length from the same seed: the same windows per plasmid, at positions of its own length
        windows=window_policy,
        n_windows=lambda wildcards: config["windows"][f"{wildcards.held_out}_count"],
        seed=config["seed"],
    script:
        "../workflow_scripts/held_out_windows.py"


rule training_windows:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
    output:
        f"{RUN}/{{experiment}}/train_windows.tsv.gz",
    log:
        f"{RUN}/logs/{{experiment}}/training_windows.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("training_windows", drawn_training_windows),
        runtime=minutes("training_windows", training_windows_passes),
    params:
        # only the training keys: windows.val_count/test_count must not redraw training windows
        windows=lambda wildcards: {
            key: EXPERIMENTS[wildcards.experiment]["windows"][key]
            for key in (
                "strategy",
                "per_plasmid",
                "reverse_complement_p",
                "circular",
                "ambiguous",
                "max_n_fraction",
                "resample_each_epoch",
            )
        },
        # with fresh windows every epoch, how many epochs training will run
        epoch_schedule=lambda wildcards: epoch_schedule(wildcards.experiment),
        length=lambda wildcards: experiment_length(wildcards.experiment),
        seed=config["seed"],
    script:
        "../workflow_scripts/training_windows.py"


# Once per window length: which test windows have all their k-mers in training plasmids depends only on the
# split and the test windows, not on an experiment.
rule kmer_coverage:
    input:
        fasta=config["data"]["fasta"],
        split=f"{RUN}/data/split.tsv",
        test=f"{RUN}/data/{{length_dir}}test_windows.tsv.gz",
    output:
        f"{RUN}/data/{{length_dir}}test_kmer_coverage.tsv.gz",
    log:
        f"{RUN}/logs/{{length_dir}}kmer_coverage.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("kmer_coverage"),
        runtime=minutes("kmer_coverage"),
    params:
        kmer=config["leakage"]["kmer"],
    script:
        "../workflow_scripts/kmer_coverage.py"


# Separate from drawing the windows, so that a new test window count does not redraw training windows.
rule leakage:
    input:
        split=f"{RUN}/data/split.tsv",
        train=f"{RUN}/{{experiment}}/train_windows.tsv.gz",
        val=lambda wildcards: f"{experiment_data(wildcards.experiment)}val_windows.tsv.gz",
        test=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_windows.tsv.gz",
        coverage=lambda wildcards: f"{experiment_data(wildcards.experiment)}test_kmer_coverage.tsv.gz",
    output:
        f"{RUN}/{{experiment}}/leakage.json",
    log:
        f"{RUN}/logs/{{experiment}}/leakage.log",
    conda:
        "../envs/plasmidlm.yaml"
    threads: 1
    resources:
        mem_mb=memory("leakage"),
        runtime=minutes("leakage"),
    params:
        kmer=config["leakage"]["kmer"],
    script:
        "../workflow_scripts/leakage.py"
