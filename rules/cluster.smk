"""Stage 4 — Task 1: OrganMNIST3D features of each pretrained encoder -> UMAP + intra/inter-cluster distances
(Tables I, V, VI; Fig. 3, 8-10)."""


rule embed:
    input:
        encoder=f"{RESULTS}/pretrain/{{variant}}/encoder.pt",
        npz=organmnist_npz(),
    output:
        f"{RESULTS}/cluster/{{variant}}/features.npz",
    log:
        f"{LOGS}/embed/{{variant}}.log",
    benchmark:
        f"{BENCH}/embed/{{variant}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: rule_threads("embed")
    resources:
        **rule_resources("embed"),
    shell:
        "python -m smart embed --encoder {input.encoder:q} --npz {input.npz:q} --out {output:q} > {log:q} 2>&1"


rule umap:
    input:
        f"{RESULTS}/cluster/{{variant}}/features.npz",
    output:
        clusters=f"{RESULTS}/cluster/{{variant}}/clusters.json",
        layout=f"{RESULTS}/cluster/{{variant}}/umap.csv",
        figure=report(
            f"{RESULTS}/cluster/{{variant}}/umap.png",
            caption="../report/umap.rst",
            category="Task 1: OrganMNIST3D clustering",
            labels={"variant": "{variant}"},
        ),
    params:
        out=output_parent,
        numba_cache=numba_cache_dir,
    log:
        f"{LOGS}/umap/{{variant}}.log",
    benchmark:
        f"{BENCH}/umap/{{variant}}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("umap")
    resources:
        **rule_resources("umap"),
    shell:
        # numba (umap-learn) compiles into a cache; keep it inside the results tree so read-only envs work.
        "NUMBA_CACHE_DIR={params.numba_cache:q} python -m smart umap --features {input:q} --out {params.out:q} "
        "> {log:q} 2>&1"
