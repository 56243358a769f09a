"""Real (non-dry) runs of small targets: outputs, logs and benchmarks are right; a failing rule leaves nothing
behind and the rerun continues from the finished upstream work."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from workflow_workspace import REPO, make_workspace, run_snakemake, snakemake_env, tiny_config

SMALL_TARGETS = ("results/preprocess/lidc/splits.json", "results/plan.json")


def run_ok(wf, *args, timeout=900):
    proc = run_snakemake(wf, "--cores", "2", *args, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_small_target_runs_for_real(tiny_workspace):
    cfg = tiny_config()
    run_ok(tiny_workspace, *SMALL_TARGETS)
    res = tiny_workspace / "results"

    cohort = pd.read_csv(res / "synthetic/nodules/cohort.csv")
    assert len(cohort) == cfg["synthetic"]["counts"]["nodules"]
    assert {"sample_id", "patient_id", "image", "label"} <= set(cohort.columns)

    splits = json.loads((res / "preprocess/lidc/splits.json").read_text())
    assert splits["n_folds"] == len(splits["folds"]) == cfg["splits"]["folds"]
    groups = [set(splits["test"])] + [set(f) for f in splits["folds"]]
    assert sum(map(len, groups)) == len(set().union(*groups)) == len(cohort)  # disjoint and complete
    patient = dict(zip(cohort.sample_id.astype(str), cohort.patient_id.astype(str)))
    patient_sets = [{patient[str(s)] for s in g} for g in groups]
    assert sum(map(len, patient_sets)) == len(set().union(*patient_sets))  # no patient in two groups

    variants = json.loads((res / "plan.json").read_text())["variants"]
    assert list(variants) == ["scratch", "smart"]                 # name order: the tables' row order
    assert variants == {
        "smart": {"method": "smart", "set": {}, "label": "SMART (S)", "tables": ["I", "II", "III", "IV", "V", "VI"],
                  "sa": True, "heads": ["cls"]},
        "scratch": {"method": "scratch", "set": {}, "label": "Scratch", "tables": ["II", "III"], "sa": True,
                    "heads": ["cls"]},
    }
    for rule_log in ("synth/nodules.log", "splits/lidc.log", "plan_json.log"):
        assert (res / "logs" / rule_log).is_file()
        bench = (res / "benchmarks" / rule_log).with_suffix(".tsv")
        assert bench.read_text().splitlines()[0].startswith("s\th:m:s")

    again = run_ok(tiny_workspace, "-n", *SMALL_TARGETS)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_sharded_resampling_runs_and_a_forced_rerun_keeps_every_ct(tmp_path):
    wf = make_workspace(tmp_path / "wf", tiny_config(**{"synthetic.counts.ct": 3, "preprocess.shards": 3}))
    run_ok(wf, "results/preprocess/manifest.csv")
    pre = wf / "results/preprocess"
    manifest = pd.read_csv(pre / "manifest.csv")
    assert len(manifest) == 3 and (manifest.status == "ok").all()
    shards = [pd.read_csv(pre / f"resample/shard_{i}_of_3.csv") for i in range(3)]
    assert sorted(pd.concat(shards).case_id) == manifest.case_id.tolist()
    cts = {p.name: p.stat().st_mtime_ns for p in (pre / "ct_2mm").glob("*.nii.gz")}
    assert sorted(cts) == sorted(f"{c}.nii.gz" for c in manifest.case_id)
    # Forcing the shards reruns them the way a failure would: Snakemake deletes their declared outputs first. The CTs
    # are not declared, so they stay, and every shard skips them by fingerprint instead of resampling again.
    run_ok(wf, "results/preprocess/manifest.csv", "--forcerun", "resample_shard")
    assert {p.name: p.stat().st_mtime_ns for p in (pre / "ct_2mm").glob("*.nii.gz")} == cts
    assert pd.read_csv(pre / "manifest.csv").case_id.tolist() == manifest.case_id.tolist()
    logs = [(wf / f"results/logs/resample/shard_{i}_of_3.log").read_text() for i in range(3)]
    assert sum("0 resampled" in log for log in logs) == 3


def test_failed_rule_leaves_no_output_and_rerun_picks_up(tmp_path):
    # 16 samples cannot make 40 patient-disjoint folds: `smart splits` exits non-zero.
    wf = make_workspace(tmp_path / "wf", tiny_config(**{"splits.folds": 40}))
    proc = run_snakemake(wf, "--cores", "2", "results/preprocess/lidc/splits.json", timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule splits" in out
    splits_dir = wf / "results/preprocess/lidc"
    assert not (splits_dir / "splits.json").exists()
    assert not [p for p in splits_dir.glob("*") if p.name != "splits.json"], "temp files left behind"
    assert "cannot make 40 folds" in (wf / "results/logs/splits/lidc.log").read_text()
    cohort = wf / "results/synthetic/nodules/cohort.csv"
    assert cohort.is_file()  # upstream output of the successful job is kept
    mtime = cohort.stat().st_mtime_ns

    make_workspace(wf, tiny_config())  # fix the config
    rerun = run_ok(wf, "results/preprocess/lidc/splits.json")
    assert "rule splits:" in rerun.stdout + rerun.stderr
    assert "rule synth_cohort:" not in rerun.stdout + rerun.stderr
    assert cohort.stat().st_mtime_ns == mtime
    assert json.loads((splits_dir / "splits.json").read_text())["n_folds"] == 2


@pytest.mark.slow
def test_tiny_config_runs_every_rule(tiny_workspace):
    """Every rule once (tiny config: 1 pretrained variant + scratch, 1 fold) up to the tables."""
    run_ok(tiny_workspace, "all", timeout=3600)
    res = tiny_workspace / "results"
    assert (res / "pretrain/smart/encoder.pt").is_file()
    for variant in ("smart", "scratch"):
        metrics = json.loads((res / f"finetune/lidc/{variant}__cls/1.0/fold_0/metrics.json").read_text())
        assert 0.0 <= metrics["test"]["auc"] <= 1.0 or metrics["test"]["auc"] is None
    assert (res / "cluster/smart/umap.png").stat().st_size > 0
    assert json.loads((res / "zeroshot/random/summary.json").read_text())
    for n in range(1, 7):
        assert (res / f"tables/table{n}.md").is_file()


@pytest.mark.slow
def test_full_demo_runs_and_reports(demo_workspace):
    """The shipped demo end to end (target: <= 15 min on 2 cores), then `snakemake --report`."""
    run_ok(demo_workspace, timeout=3600)
    report = run_snakemake(demo_workspace, "--report", "report.html", timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (demo_workspace / "report.html").stat().st_size > 10_000
    # The README's demo tables are what this demo writes (re-render with the command in README "What the demo produces")
    res = demo_workspace / "results"
    check = subprocess.run([sys.executable, "-m", "smart", "tables", "--results", str(res), "--plan",
                            str(res / "plan.json"), "--out", str(res / "tables"),
                            "--check-readme", str(REPO / "README.md")], capture_output=True, text=True, timeout=600,
                           env=snakemake_env())
    assert check.returncode == 0, check.stdout + check.stderr
