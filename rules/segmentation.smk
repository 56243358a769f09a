"""Stage 7 — segmentation fine-tune (`snakemake segmentation`): MONAI SwinUNETR started from each listed variant's
encoder (exported in MONAI's self-supervised layout, loaded with SwinUNETR.load_from) and from scratch, trained on
labelled volumes, Dice per structure per variant in results/tables/segmentation.{csv,md} and the report.

Not part of `all` unless `segmentation.enabled`; helpers in rules/common.smk, section "segmentation". `--resume` is
always passed, as for pretraining: a resubmitted job continues from checkpoint_last.pt.
"""


rule synth_segmentation:
    output:
        f"{SYNTH}/segmentation/segmentation.csv",
    params:
        out=output_parent,
        seed=config["synthetic"]["seed"],
        n=SEG["count"],
    log:
        f"{LOGS}/synth/segmentation.log",
    benchmark:
        f"{BENCH}/synth/segmentation.tsv"
    conda:
        "../envs/data.yaml"
    threads: rule_threads("synth")
    resources:
        **rule_resources("synth"),
    shell:
        synth_command("segmentation")


rule monai_ssl_export:
    input:
        f"{RESULTS}/pretrain/{{variant}}/encoder.pt",
    output:
        f"{RESULTS}/pretrain/{{variant}}/monai_ssl.pt",
    log:
        f"{LOGS}/monai_ssl_export/{{variant}}.log",
    benchmark:
        f"{BENCH}/monai_ssl_export/{{variant}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m smart export --encoder {input:q} --format monai-ssl --out {output:q} > {log:q} 2>&1"


rule segmentation_finetune:
    input:
        csv=segmentation_csv(),
        weights=segmentation_weights_input,
    output:
        metrics=segmentation_metrics("{variant}"),
        model=f"{RESULTS}/segmentation/{{variant}}/model.pt",
    params:
        weights=segmentation_weights_arg,
        out=output_parent,
        args=segmentation_args,
    log:
        f"{LOGS}/segmentation/{{variant}}.log",
    benchmark:
        f"{BENCH}/segmentation/{{variant}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: rule_threads("segmentation")
    resources:
        **rule_resources("segmentation"),
    shell:
        "python -m smart segmentation --weights {params.weights:q} --csv {input.csv:q} --out {params.out:q} "
        "{params.args} --resume > {log:q} 2>&1"


rule segmentation_table:
    input:
        metrics=[segmentation_metrics(v) for v in segmentation_variants()],
        plan=PLAN_JSON,
    output:
        csv=report(
            f"{RESULTS}/tables/segmentation.csv",
            caption="../report/segmentation.rst",
            category="Tables",
            labels={"table": "Segmentation Dice"},
        ),
        md=f"{RESULTS}/tables/segmentation.md",
    log:
        f"{LOGS}/segmentation_table.log",
    benchmark:
        f"{BENCH}/segmentation_table.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m smart segmentation-table --plan {input.plan:q} --out-csv {output.csv:q} "
        "--out-md {output.md:q} {input.metrics:q} > {log:q} 2>&1"
