"""Stage 6 — the paper's Tables I-VI (and Figs. 6, 10) from every metrics file; `snakemake --report` collects them
with captions."""

TABLE_NUMBERS = range(1, 7)
# Fig. 6 (limited data) exists when a task fine-tunes on a fraction < 1: `smart tables` writes it then.
LIMITED_DATA = any(float(f) < 1.0 for task in task_names() for f in config["tasks"][task]["fractions"])
# Fig. 10 (UMAPs over the noisy teacher's drop ratio) exists when the config has an ablation named `pdr` and
# clustering runs: `smart tables --pdr-sweep` draws it (rules/common.smk pdr_sweep_variants).
PDR_SWEEP = bool(pdr_sweep_variants())


rule plan_json:
    # The plan resolved before any job (smart.workflow.plan.Plan), written once for the steps that read it
    # (ARCHITECTURE "Result paths"); rerun when it changes (its params).
    output:
        PLAN_JSON,
    params:
        plan=plan_json_arg(),
    log:
        f"{LOGS}/plan_json.log",
    benchmark:
        f"{BENCH}/plan_json.tsv"
    conda:
        "../envs/eval.yaml"
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    shell:
        "python -m workflow_scripts.write_plan --out {output:q} --plan {params.plan:q} > {log:q} 2>&1"


rule tables:
    input:
        results=table_inputs,
        plan=PLAN_JSON,
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
        "python -m smart tables --results {params.results:q} --plan {input.plan:q} "
        "--out {params.out:q} {params.pdr_sweep} > {log:q} 2>&1"
