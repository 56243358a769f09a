"""Stage 5 — zero-shot tumour localisation from SA maps, with a random-attention baseline (Sec. V-E), and attention
figures on CT slices (Fig. 4)."""


rule zeroshot:
    input:
        encoder=zeroshot_encoder_input,
        raters=raters_csv(),
    output:
        dsc=f"{RESULTS}/zeroshot/{{variant}}/dsc.csv",
        summary=f"{RESULTS}/zeroshot/{{variant}}/summary.json",
        overlays=report(
            f"{RESULTS}/zeroshot/{{variant}}/overlays.png",
            caption="../report/zeroshot.rst",
            category="Zero-shot localisation",
            labels={"encoder": "{variant}"},
        ),
    params:
        encoder=zeroshot_encoder_arg,
        out=output_parent,
    wildcard_constraints:
        variant=ZEROSHOT_NAMES,
    log:
        f"{LOGS}/zeroshot/{{variant}}.log",
    benchmark:
        f"{BENCH}/zeroshot/{{variant}}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("zeroshot")
    resources:
        **rule_resources("zeroshot"),
    shell:
        "python -m smart zeroshot --encoder {params.encoder:q} --raters {input.raters:q} --out {params.out:q} "
        "> {log:q} 2>&1"


rule attention_maps:
    input:
        encoder=f"{RESULTS}/pretrain/{{variant}}/encoder.pt",
        cohort=cohort_input,
    output:
        report(
            f"{RESULTS}/figures/attention/{{task}}/{{variant}}.png",
            caption="../report/attention.rst",
            category="Attention maps",
            labels={"task": "{task}", "encoder": "{variant}"},
        ),
    log:
        f"{LOGS}/attention_maps/{{task}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/attention_maps/{{task}}/{{variant}}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("attention_maps")
    resources:
        **rule_resources("attention_maps"),
    shell:
        "python -m smart attention-maps --encoder {input.encoder:q} --cohort {input.cohort:q} --out {output:q} "
        "> {log:q} 2>&1"
