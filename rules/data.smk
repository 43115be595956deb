rule validate:
    input:
        fasta=config["data"]["fasta"],
        labels=config["data"]["labels"],
    output:
        table=layout.data_file(RUN, "validated.tsv"),
        summary=layout.data_file(RUN, "validate.json"),
    log:
        layout.log(RUN, "validate"),
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
        validated=layout.data_file(RUN, "validated.tsv"),
        validation=layout.data_file(RUN, "validate.json"),
    output:
        selected=layout.data_file(RUN, "selected.tsv"),
        classes=layout.data_file(RUN, "classes.tsv"),
    log:
        layout.log(RUN, "select_classes"),
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
        validated=layout.data_file(RUN, "validated.tsv"),
    output:
        layout.data_file(RUN, "sketches.npz"),
    log:
        layout.log(RUN, "sketch"),
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
        sketches=layout.data_file(RUN, "sketches.npz"),
        selected=layout.data_file(RUN, "selected.tsv"),
    output:
        layout.data_file(RUN, "near_duplicates.tsv"),
    log:
        layout.log(RUN, "near_duplicates"),
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
        sketches=layout.data_file(RUN, "sketches.npz"),
        selected=layout.data_file(RUN, "selected.tsv"),
        pairs=layout.data_file(RUN, "near_duplicates.tsv"),
    output:
        groups=layout.data_file(RUN, "near_duplicate_groups.tsv"),
        json=layout.data_file(RUN, "near_duplicate_groups.json"),
    log:
        layout.log(RUN, "near_duplicate_groups"),
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
        split=layout.data_file(RUN, "split.tsv"),
        summary=report(
            layout.data_file(RUN, "split_summary.tsv"),
            caption="captions/split_summary.rst",
            category="Data",
        ),
        json=layout.data_file(RUN, "split.json"),
    log:
        layout.log(RUN, "split"),
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
        split=layout.data_file(RUN, "split.tsv"),
    output:
        layout.data_file(RUN, "{held_out}_windows.tsv.gz", "{length_dir}"),
    log:
        layout.log(RUN, "{length_dir}{held_out}_windows"),
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
        split=layout.data_file(RUN, "split.tsv"),
    output:
        layout.train_windows(RUN, "{experiment}"),
    log:
        layout.log(RUN, "{experiment}/training_windows"),
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
        split=layout.data_file(RUN, "split.tsv"),
        test=layout.data_file(RUN, "test_windows.tsv.gz", "{length_dir}"),
    output:
        layout.data_file(RUN, "test_kmer_coverage.tsv.gz", "{length_dir}"),
    log:
        layout.log(RUN, "{length_dir}kmer_coverage"),
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
        split=layout.data_file(RUN, "split.tsv"),
        train=layout.train_windows(RUN, "{experiment}"),
        val=lambda wildcards: experiment_data_file(
            wildcards.experiment, "val_windows.tsv.gz"
        ),
        test=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_windows.tsv.gz"
        ),
        coverage=lambda wildcards: experiment_data_file(
            wildcards.experiment, "test_kmer_coverage.tsv.gz"
        ),
    output:
        layout.leakage(RUN, "{experiment}"),
    log:
        layout.log(RUN, "{experiment}/leakage"),
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
