"""Stage 2 — self-supervised pretraining, one job per pretrained variant (Sec. III, IV-C).

`--resume` is always passed: the engine restarts from results/pretrain/{variant}/checkpoint_last.pt when present, so
`--retries` / a resubmitted SLURM job continue instead of starting over. checkpoint_last.pt is deliberately not an
output (Snakemake would delete it when a job fails, which is exactly when it is needed). The engine resumes it only
when its resolved config and input manifest match the job's (else it starts fresh and says so in the log), and a
finished run removes it, so a forced rerun (`snakemake -f`, changed params) retrains.

Launch (rules/common.smk `pretrain_launcher`): python on CPU, `torchrun --standalone` on one GPU node, and with
`resources.pretrain.nodes: N` `srun` + one `torchrun --nnodes N` per node with a c10d rendezvous on the first node.
"""


rule pretrain:
    input:
        manifest=f"{PRE}/manifest.csv",
    output:
        encoder=f"{RESULTS}/pretrain/{{variant}}/encoder.pt",
        checkpoint=f"{RESULTS}/pretrain/{{variant}}/checkpoint_final.pt",
        metrics=f"{RESULTS}/pretrain/{{variant}}/metrics.jsonl",
        config=f"{RESULTS}/pretrain/{{variant}}/config.json",
        card=f"{RESULTS}/pretrain/{{variant}}/MODEL_CARD.md",
    params:
        out=output_parent,
        args=pretrain_args,
        launch=pretrain_launcher,
    log:
        f"{LOGS}/pretrain/{{variant}}.log",
    benchmark:
        f"{BENCH}/pretrain/{{variant}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: rule_threads("pretrain")
    resources:
        **rule_resources("pretrain"),
    shell:
        "{params.launch} -m smart pretrain {params.args} --manifest {input.manifest:q} --out {params.out:q} --resume "
        "> {log:q} 2>&1"
