"""Stage 6 — the paper's Tables I-VI (and Figs. 6, 10) from every metrics file; `snakemake --report` collects them
with captions."""

TABLE_NUMBERS = range(1, 7)
# Fig. 6 (limited data) exists when a task fine-tunes on a fraction < 1: `smart tables` writes it then.
LIMITED_DATA = any(float(f) < 1.0 for task in task_names() for f in config["tasks"][task]["fractions"])
# Fig. 10 (UMAPs over the noisy teacher's drop ratio) exists when the config has an ablation named `pdr` and
# clustering runs: `smart tables --pdr-sweep` draws it (rules/common.smk pdr_sweep_variants).
PDR_SWEEP = bool(pdr_sweep_variants())


rule variants_json:
    # The config's variants mapping, as `smart tables` reads it (ARCHITECTURE "Result paths").
    output:
        f"{RESULTS}/tables/variants.json",
    params:
        variants=variants_json_arg(),
    log:
        f"{LOGS}/variants_json.log",
    benchmark:
        f"{BENCH}/variants_json.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m workflow_scripts.write_variants --out {output:q} --variants {params.variants:q} > {log:q} 2>&1"


rule tasks_json:
    # The config's tasks and the task filling each paper table, as `smart tables` reads them.
    output:
        f"{RESULTS}/tables/tasks.json",
    params:
        tasks=tasks_json_arg(),
    log:
        f"{LOGS}/tasks_json.log",
    benchmark:
        f"{BENCH}/tasks_json.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m workflow_scripts.write_tasks --out {output:q} --tasks {params.tasks:q} > {log:q} 2>&1"


rule tables:
    input:
        results=table_inputs,
        variants=f"{RESULTS}/tables/variants.json",
        tasks=f"{RESULTS}/tables/tasks.json",
        pdr_sweep=pdr_sweep_inputs,
    output:
        md=expand(f"{RESULTS}/tables/table{{n}}.md", n=TABLE_NUMBERS),
        csv=[
            report(
                f"{RESULTS}/tables/table{n}.csv",
                caption=f"../report/table{n}.rst",
                category="Tables",
                labels={"table": f"Table {n}"},
            )
            for n in TABLE_NUMBERS
        ],
        **(
            {
                "limited_data": report(
                    f"{RESULTS}/tables/limited_data.png",
                    caption="../report/limited_data.rst",
                    category="Tables",
                    labels={"table": "Fig. 6 (limited data)"},
                )
            }
            if LIMITED_DATA
            else {}
        ),
        **(
            {
                "pdr_umaps": report(
                    f"{RESULTS}/tables/pdr_umaps.png",
                    caption="../report/pdr_umaps.rst",
                    category="Task 1: OrganMNIST3D clustering",
                    labels={"variant": "Fig. 10 (PDR sweep)"},
                ),
                "pdr_umaps_csv": f"{RESULTS}/tables/pdr_umaps.csv",
            }
            if PDR_SWEEP
            else {}
        ),
    params:
        results=results_root,
        out=output_parent,
        pdr_sweep=pdr_sweep_arg,
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCH}/tables.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m smart tables --results {params.results:q} --variants {input.variants:q} --tasks {input.tasks:q} "
        "--out {params.out:q} {params.pdr_sweep} > {log:q} 2>&1"
