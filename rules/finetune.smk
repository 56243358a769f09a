"""Stage 3 — downstream classification: fine-tuning (task x variant x head x fraction x fold) and the frozen-feature
linear probe (Sec. IV-B, V-B/C/F). Every variant of a task shares the task's splits.json."""

FINETUNE_RES = config["finetune"]["resources"]


rule finetune:
    input:
        encoder=encoder_input,
        cohort=cohort_input,
        splits=splits_input,
    output:
        f"{RESULTS}/finetune/{{task}}/{{variant}}__{{head}}/{{fraction}}/fold_{{fold}}/metrics.json",
    params:
        encoder=encoder_arg,
        out=output_parent,
        args=downstream_args,
    log:
        f"{LOGS}/finetune/{{task}}/{{variant}}__{{head}}/{{fraction}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/finetune/{{task}}/{{variant}}__{{head}}/{{fraction}}/fold_{{fold}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: FINETUNE_RES["cpus_per_task"]
    resources:
        gpu=FINETUNE_RES["gpu"],
        gpu_model=FINETUNE_RES["gpu_model"],
        runtime=FINETUNE_RES["runtime"],
        mem_mb=FINETUNE_RES["mem_mb"],
        cpus_per_task=FINETUNE_RES["cpus_per_task"],
    shell:
        "python -m smart finetune --encoder {params.encoder:q} --cohort {input.cohort:q} --splits {input.splits:q} "
        "--fold {wildcards.fold} --out {params.out:q} --head {wildcards.head} --fraction {wildcards.fraction} "
        "{params.args} > {log:q} 2>&1"


rule linear_probe:
    input:
        encoder=encoder_input,
        cohort=cohort_input,
        splits=splits_input,
    output:
        f"{RESULTS}/probe/{{task}}/{{variant}}/{{fraction}}/fold_{{fold}}/metrics.json",
    params:
        encoder=encoder_arg,
        out=output_parent,
        args=downstream_args,
    log:
        f"{LOGS}/probe/{{task}}/{{variant}}/{{fraction}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/probe/{{task}}/{{variant}}/{{fraction}}/fold_{{fold}}.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        runtime=20,
        mem_mb=3000,
        cpus_per_task=1,
    shell:
        "python -m smart linear-probe --encoder {params.encoder:q} --cohort {input.cohort:q} "
        "--splits {input.splits:q} --fold {wildcards.fold} --out {params.out:q} --fraction {wildcards.fraction} "
        "{params.args} > {log:q} 2>&1"
