"""Stage 3 — downstream classification: fine-tuning (task x variant x head x fraction x fold) and the frozen-feature
linear probe (Sec. IV-B, V-B/C/F). Every variant of a task shares the task's splits.json; every choice (epoch, C) is
made on an inner split of the training folds, never on the fold or test set reported (docs/evaluation.md "Selection").

Fine-tuning always passes `--resume`: a killed, preempted or retried job continues its checkpoint_last.pt (written every
`checkpoint_every` epochs and on SIGTERM/SIGUSR1; not an output, so Snakemake keeps it when the job fails) when its
config and inputs still match; a finished job deletes it, so a forced rerun trains again."""


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
    threads: rule_threads("finetune")
    resources:
        **rule_resources("finetune"),
    shell:
        "python -m smart finetune --encoder {params.encoder:q} --cohort {input.cohort:q} --splits {input.splits:q} "
        "--fold {wildcards.fold} --out {params.out:q} --head {wildcards.head} --fraction {wildcards.fraction} "
        "--resume {params.args} > {log:q} 2>&1"


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
    threads: rule_threads("probe")
    resources:
        **rule_resources("probe"),
    shell:
        "python -m smart linear-probe --encoder {params.encoder:q} --cohort {input.cohort:q} "
        "--splits {input.splits:q} --fold {wildcards.fold} --out {params.out:q} --fraction {wildcards.fraction} "
        "{params.args} > {log:q} 2>&1"
