"""Stage 2 — self-supervised pretraining, one job per pretrained variant (Sec. III, IV-C).

`--resume` is always passed: the engine restarts from results/pretrain/{variant}/checkpoint_last.pt when present, so
`--retries` / a resubmitted SLURM job continue instead of starting over. checkpoint_last.pt is deliberately not an
output (Snakemake would delete it when a job fails, which is exactly when it is needed).
"""

PRETRAIN_RES = config["pretrain"]["resources"]


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
    log:
        f"{LOGS}/pretrain/{{variant}}.log",
    benchmark:
        f"{BENCH}/pretrain/{{variant}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: PRETRAIN_RES["cpus_per_task"]
    resources:
        gpu=PRETRAIN_RES["gpu"],
        gpu_model=PRETRAIN_RES["gpu_model"],
        runtime=PRETRAIN_RES["runtime"],
        mem_mb=PRETRAIN_RES["mem_mb"],
        cpus_per_task=PRETRAIN_RES["cpus_per_task"],
    shell:
        # One process per GPU under torchrun (DDP); plain python on CPU so the demo needs no launcher.
        "if [ {resources.gpu} -gt 0 ]; then launch='torchrun --standalone --nproc_per_node {resources.gpu}'; "
        "else launch=python; fi; "
        "$launch -m smart pretrain {params.args} --manifest {input.manifest:q} --out {params.out:q} --resume "
        "> {log:q} 2>&1"
