"""The CPU study of issue #13 — `snakemake study`: seeds x study arms at the `small` preset.

Per seed: its own synthetic CTs (resampled to 2 mm) for pretraining and its own nodule cohort + splits (a fixed test
set of `study.test_size` nodules), so seeds vary the data as well as the initialisation. Per arm and seed: pretraining
(`smart pretrain --method M --preset small --set train.seed=S`), a linear probe (AUC + DeLong CI on the test set),
OrganMNIST-like embedding + UMAP distances (Table I) and zero-shot DSC; the `scratch` arm is the random-init encoder
(probe only) and the random-attention zero-shot baseline. workflow_scripts/study_table.py writes
results/study/study.{md,json}; docs/results_study.md records a run.
"""

rule study_synth_data:
    # One folder per seed: pretraining CTs and the nodule cohort of that seed.
    output:
        ct=directory(f"{STUDY}/data/seed_{{seed}}/ct_raw"),
        cohort=f"{STUDY}/data/seed_{{seed}}/nodules/cohort.csv",
    params:
        n_ct=STUDY_CFG["ct"],
        n_nodules=STUDY_CFG["nodules"],
    log:
        f"{LOGS}/study/synth/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/synth/seed_{{seed}}.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("synth"),
    shell:
        "(python -m smart synth ct --out {output.ct:q} --seed {wildcards.seed} --count {params.n_ct} && "
        "python -m smart synth nodules --out $(dirname {output.cohort:q}) --seed {wildcards.seed} "
        "--count {params.n_nodules}) > {log:q} 2>&1"


rule study_resample:
    input:
        ct=f"{STUDY}/data/seed_{{seed}}/ct_raw",
    output:
        ct_dir=directory(f"{STUDY}/data/seed_{{seed}}/ct_2mm"),
        manifest=f"{STUDY}/data/seed_{{seed}}/manifest.csv",
        rejected=f"{STUDY}/data/seed_{{seed}}/rejected.csv",
    params:
        spacing=config["preprocess"]["spacing"],
    log:
        f"{LOGS}/study/resample/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/resample/seed_{{seed}}.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("resample"),
    shell:
        "python -m smart resample --input {input.ct:q}/*.nii.gz --out-dir {output.ct_dir:q} "
        "--manifest {output.manifest:q} --rejected {output.rejected:q} --spacing {params.spacing} > {log:q} 2>&1"


rule study_splits:
    input:
        f"{STUDY}/data/seed_{{seed}}/nodules/cohort.csv",
    output:
        f"{STUDY}/data/seed_{{seed}}/splits.json",
    params:
        test_size=STUDY_CFG["test_size"],
    log:
        f"{LOGS}/study/splits/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/splits/seed_{{seed}}.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("splits"),
    shell:
        "python -m smart splits --cohort {input:q} --out {output:q} --test-size {params.test_size} "
        "--seed {wildcards.seed} > {log:q} 2>&1"


rule study_pretrain:
    input:
        manifest=f"{STUDY}/data/seed_{{seed}}/manifest.csv",
    output:
        encoder=f"{STUDY}/{{arm}}/seed_{{seed}}/pretrain/encoder.pt",
        metrics=f"{STUDY}/{{arm}}/seed_{{seed}}/pretrain/metrics.jsonl",
    params:
        out=output_parent,
        method=study_method,
        preset=STUDY_CFG["preset"],
        steps=STUDY_CFG["steps"],
        sets=study_pretrain_sets,
    log:
        f"{LOGS}/study/pretrain/{{arm}}/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/pretrain/{{arm}}/seed_{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: rule_threads("study")
    resources:
        **rule_resources("study"),
    shell:
        "python -m smart pretrain --method {params.method} --preset {params.preset} --manifest {input.manifest:q} "
        "--out {params.out:q} {params.sets} --set train.seed={wildcards.seed} --set train.steps={params.steps} --resume "
        "> {log:q} 2>&1"


rule study_probe:
    input:
        encoder=study_encoder_input,
        cohort=f"{STUDY}/data/seed_{{seed}}/nodules/cohort.csv",
        splits=f"{STUDY}/data/seed_{{seed}}/splits.json",
    output:
        f"{STUDY}/{{arm}}/seed_{{seed}}/probe/metrics.json",
    params:
        encoder=study_encoder_arg,
        out=output_parent,
        args=study_probe_args,
    log:
        f"{LOGS}/study/probe/{{arm}}/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/probe/{{arm}}/seed_{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        **rule_resources("probe"),
    shell:
        # Fold 0's training part fits the probe; the test split (study.test_size nodules) is what the table reports.
        "python -m smart linear-probe --encoder {params.encoder:q} --cohort {input.cohort:q} --splits {input.splits:q} "
        "--fold 0 --out {params.out:q} {params.args} > {log:q} 2>&1"


rule study_embed:
    input:
        encoder=f"{STUDY}/{{arm}}/seed_{{seed}}/pretrain/encoder.pt",
        npz=organmnist_npz(),
    output:
        f"{STUDY}/{{arm}}/seed_{{seed}}/cluster/features.npz",
    log:
        f"{LOGS}/study/embed/{{arm}}/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/embed/{{arm}}/seed_{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        **rule_resources("embed"),
    shell:
        "python -m smart embed --encoder {input.encoder:q} --npz {input.npz:q} --out {output:q} --device cpu "
        "> {log:q} 2>&1"


rule study_umap:
    input:
        f"{STUDY}/{{arm}}/seed_{{seed}}/cluster/features.npz",
    output:
        clusters=f"{STUDY}/{{arm}}/seed_{{seed}}/cluster/clusters.json",
        figure=f"{STUDY}/{{arm}}/seed_{{seed}}/cluster/umap.png",
    params:
        out=output_parent,
        numba_cache=numba_cache_dir,
    log:
        f"{LOGS}/study/umap/{{arm}}/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/umap/{{arm}}/seed_{{seed}}.tsv"
    conda:
        "../envs/eval.yaml"
    resources:
        **rule_resources("umap"),
    shell:
        "NUMBA_CACHE_DIR={params.numba_cache:q} python -m smart umap --features {input:q} --out {params.out:q} "
        "> {log:q} 2>&1"


rule study_zeroshot:
    input:
        encoder=study_zeroshot_encoder_input,
        raters=raters_csv(),
    output:
        summary=f"{STUDY}/{{arm}}/seed_{{seed}}/zeroshot/summary.json",
    params:
        encoder=study_zeroshot_encoder_arg,
        out=output_parent,
        crop=STUDY_CFG["zeroshot_crop"],
    log:
        f"{LOGS}/study/zeroshot/{{arm}}/seed_{{seed}}.log",
    benchmark:
        f"{BENCH}/study/zeroshot/{{arm}}/seed_{{seed}}.tsv"
    conda:
        "../envs/eval.yaml"
    resources:
        **rule_resources("zeroshot"),
    shell:
        "python -m smart zeroshot --encoder {params.encoder:q} --raters {input.raters:q} --out {params.out:q} "
        "--crop {params.crop} {params.crop} {params.crop} --seed {wildcards.seed} --device cpu > {log:q} 2>&1"


rule study_table:
    input:
        study_targets(),
    output:
        md=f"{STUDY}/study.md",
        json=f"{STUDY}/study.json",
        fig11=report(
            f"{STUDY}/fig11_ampd_noisy_teacher.png",
            caption="../report/study_fig11.rst",
            category="Study (issue #13)",
        ),
    params:
        root=output_parent,
        arms=json.dumps(study_arm_labels()),
        seeds=" ".join(str(s) for s in STUDY_CFG["seeds"]),
    log:
        f"{LOGS}/study/table.log",
    benchmark:
        f"{BENCH}/study/table.tsv"
    conda:
        "../envs/eval.yaml"
    resources:
        **rule_resources("report"),
    shell:
        "python -m workflow_scripts.study_table --root {params.root:q} --arms {params.arms:q} "
        "--seeds {params.seeds} --out-md {output.md:q} --out-json {output.json:q} --out-fig11 {output.fig11:q} "
        "> {log:q} 2>&1"

