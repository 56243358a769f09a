"""Downstream tasks are data (config `tasks:` / `table_tasks:`): a third task added by one config entry is planned by
the workflow (splits, fine-tuning, probe, its own overrides) and fills the paper table it is mapped to."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd

from test_dryrun import job_counts
from workflow_workspace import REPO, make_workspace, run_snakemake, snakemake_env, tiny_config

THIRD = "nodule_small"


def third_task_config() -> dict:
    """The tiny config plus a third task that reuses the synthetic nodule converter with its own split, fractions and
    epochs, and fills Table VI instead of LIDC."""
    cfg = tiny_config()
    cfg["tasks"][THIRD] = {"label": "Small", "title": "Small nodules", "source": "synthetic", "synthetic": "nodules",
                           "test_size": 0.3, "fractions": [0.5, 1.0], "set": {"epochs": 2}}
    cfg["finetune"]["tasks"] = ["lidc", THIRD]
    cfg["table_tasks"] = {**cfg.get("table_tasks", {}), "VI": THIRD}
    return cfg


def test_no_task_name_in_the_workflow_or_the_tables_code():
    quoted = re.compile(r"""["'](lidc|response)["']""")
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk")), REPO / "smart/eval/tables.py"]
    hits = [f"{p.relative_to(REPO)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
            if quoted.search(line)]
    assert hits == []


def test_third_task_is_planned_from_its_config_entry(tmp_path):
    cfg = third_task_config()
    wf = make_workspace(tmp_path / "wf", cfg)
    proc = run_snakemake(wf, "-n", "-p", "all", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out, counts = proc.stdout, job_counts(proc.stdout)
    variants, heads = len(cfg["variants"]), 1
    # lidc: fraction 1.0; third task: 0.5 and 1.0; one fold each; probe at fraction 1.0 for both tasks
    assert counts["finetune"] == variants * heads * (1 + 2)
    assert counts["linear_probe"] == variants * 2
    # both tasks draw on the one nodule generator; the response one feeds the attention maps (evaluate.attention_tasks)
    assert counts["splits"] == 2 and counts["synth_cohort"] == 2
    assert counts["plan_json"] == 1
    assert f"--out results/preprocess/{THIRD}/splits.json --test-size 0.3" in out
    assert "--out results/preprocess/lidc/splits.json --test-size 0.25" in out
    ft = [line for line in out.splitlines() if "-m smart finetune" in line and f"/{THIRD}/" in line]
    assert len(ft) == variants * 2
    assert all("--cohort results/synthetic/nodules/cohort.csv" in line and "--set epochs=2" in line for line in ft)
    assert not any(f"/{THIRD}/" in line and "epochs=2" not in line for line in out.splitlines()
                   if "-m smart finetune" in line)


def _metrics(root, kind, task, folder, fraction, aucs):
    for k, auc in enumerate(aucs):
        path = root / kind / task / folder / fraction / f"fold_{k}" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"test": {"auc": auc, "ap50": 0.5, "ar50": 0.25}}))


def test_third_task_fills_its_table(tmp_path):
    # The workflow's own plan_json rule writes plan.json; `smart tables` then reads metrics files made here.
    wf = make_workspace(tmp_path / "wf", third_task_config())
    proc = run_snakemake(wf, "--cores", "1", "results/plan.json", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((wf / "results/plan.json").read_text())["table_tasks"] == {
        "II": "lidc", "III": "response", "IV": "lidc", "V": "lidc", "VI": THIRD}

    res = wf / "results"
    _metrics(res, "finetune", "lidc", "smart__cls", "1.0", [0.9])
    _metrics(res, "probe", "lidc", "smart", "1.0", [0.8])
    _metrics(res, "finetune", THIRD, "smart__cls", "1.0", [0.6, 0.7])
    _metrics(res, "finetune", THIRD, "smart__cls", "0.5", [0.55])
    _metrics(res, "probe", THIRD, "smart", "1.0", [0.65])
    out = tmp_path / "tables"
    cmd = [sys.executable, "-m", "smart", "tables", "--results", str(res), "--plan",
           str(res / "plan.json"), "--out", str(out)]
    done = subprocess.run(cmd, env=snakemake_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    t6 = pd.read_csv(out / "table6.csv").set_index("variant")
    assert t6.loc["smart", "Small FT AUC"] == "0.650 ± 0.071"
    assert t6.loc["smart", "Small Probe AUC"] == "0.650 ± 0.000"
    assert f"probe/{THIRD}/smart/1.0/fold_0/metrics.json" in t6.loc["smart", "sources"]
    t5 = pd.read_csv(out / "table5.csv").set_index("variant")
    assert t5.loc["smart", "LIDC FT AUC"] == "0.900 ± 0.000"
    t2 = pd.read_csv(out / "table2.csv").set_index("variant")
    assert t2.loc["smart", "FT AUC"] == "0.900 ± 0.000" and t2.loc["smart", "FT AP50"] == "50.0 ± 0.0"
    limited = pd.read_csv(out / "limited_data.csv")
    assert set(limited["task"]) == {"lidc", THIRD}
    assert limited[(limited.task == THIRD) & (limited.fraction == 0.5)].auc_mean.item() == 0.55
