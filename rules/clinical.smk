"""Clinical data preparation (docs/data_preparation.md): the raters' consensus as a rule, and the treatment-response
cohort's crops cut from full CTs. Config block `clinical`."""


rule raters_consensus:
    # Rater masks -> one consensus per case on its CT grid (masks resampled in physical space first).
    input:
        input_raters_csv(),
    output:
        raters=consensus_raters_csv(),
    params:
        out=output_parent,
        method=config["clinical"]["consensus"],
        margin=config["clinical"]["consensus_margin"],
    log:
        f"{LOGS}/raters_consensus.log",
    benchmark:
        f"{BENCH}/raters_consensus.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("clinical"),
    shell:
        "python -m smart consensus --raters {input:q} --out-dir {params.out:q} --method {params.method} "
        "--margin {params.margin} > {log:q} 2>&1"


rule response_crops:
    # The converter of every task with source = lesions: its cohort lists full CTs + a mask or centre per lesion; cut
    # the crops the fine-tuning reads (the paper's treatment-response cohort).
    input:
        lesion_table,
    output:
        cohort=f"{PRE}/{{task}}/cohort.csv",
        crops=directory(f"{PRE}/{{task}}/crops"),
    wildcard_constraints:
        task=_alternatives(tasks_from("lesions")),
    params:
        out=output_parent,
        size=config["clinical"]["response_crop_size"],
        spacing=config["clinical"]["response_crop_spacing"],
    log:
        f"{LOGS}/response_crops/{{task}}.log",
    benchmark:
        f"{BENCH}/response_crops/{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("clinical"),
    shell:
        "python -m smart cohort-crops --cohort {input:q} --out-dir {params.out:q} --crop-size {params.size} "
        "--spacing {params.spacing} > {log:q} 2>&1"
