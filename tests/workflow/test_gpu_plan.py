"""`smart plan` on the paper config and the workflow's before-any-job GPU-memory refusal (issue 18 items 1-2).

The paper config's placeholders are filled with stand-in files (test_dryrun.paper_overlay); job counts must be
Snakemake's own, the predictions the memory model's at each rule's settings (computed here from the coefficients
file independently of the plan code), and a config whose fine-tuning does not fit its A40 must stop `snakemake -n`
before any job with the rule, the GiB and a setting that fits.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_dryrun import paper_expected, paper_overlay
from workflow_workspace import REPO, load_yaml, make_workspace, run_snakemake, snakemake_env

GIB = 2**30
PAPER = load_yaml(REPO / "config/paper.yaml")
GPU_RULES_IN_ALL = {"pretrain", "finetune", "linear_probe", "embed", "zeroshot", "attention_maps"}


def smart_plan(workdir: Path, *configfiles: str, json_out: Path,
               targets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    # documented form: python -m smart plan --configfile config/paper.yaml my_paths.yaml --json plan.json
    cmd = [sys.executable, "-m", "smart", "plan", *targets, "--configfile", *configfiles, "--json", str(json_out),
           "--directory", str(workdir)]
    return subprocess.run(cmd, cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=600)


def expected_peak_gb(step: str, variant: str, crop: list[int], batch: int) -> float:
    """max(fixed + per_voxel * voxels * batch, optimiser phase), straight from the shipped coefficients file."""
    coef = json.loads((REPO / "smart/resources/memory_coefficients.json").read_text())["steps"][step][variant]
    voxels = crop[0] * crop[1] * crop[2] * batch
    return round(max(coef["fixed_bytes"] + coef["bytes_per_voxel"] * voxels, coef["optimizer_bytes"]) / GIB, 2)


@pytest.fixture(scope="module")
def paper_workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    return make_workspace(root / "wf"), paper_overlay(root)


def test_paper_plan_every_gpu_rule_fits(paper_workspace, tmp_path):
    workdir, overlay = paper_workspace
    proc = smart_plan(workdir, "config/paper.yaml", str(overlay), json_out=tmp_path / "plan.json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert set(plan["rules"]) == GPU_RULES_IN_ALL  # segmentation is off in `all` (config/paper.yaml)
    for rule, row in plan["rules"].items():
        assert {"jobs", "gpus", "gpu_model", "gpu_mem_limit_gb", "predicted_peak_gb", "fits", "gpu_hours"} <= set(row)
        assert row["fits"] is True, (rule, row)
        assert row["gpu_hours"] > 0 and "projection" in row["gpu_hours_basis"]
    expected_jobs = paper_expected()
    for rule in ("pretrain", "finetune", "linear_probe", "embed"):
        assert plan["rules"][rule]["jobs"] == expected_jobs[rule]
    res = PAPER["resources"]
    pre, ft = plan["rules"]["pretrain"], plan["rules"]["finetune"]
    assert (pre["gpus"], pre["gpu_model"], pre["gpu_mem_limit_gb"]) == (res["pretrain"]["gpu"], "a100", 80.0)
    assert (ft["gpus"], ft["gpu_model"], ft["gpu_mem_limit_gb"]) == (1, "a40", 48.0)
    assert plan["rules"]["embed"]["gpu_model"] == "any (smallest listed: a100_40)"
    # predictions at each rule's own settings: pretraining 128^3 x 4 view pairs per GPU in bf16; fine-tuning one
    # micro-batch of 4 at 128^3, bf16 (precision auto on CUDA) with activation checkpointing
    ft_set = PAPER["finetune"]["set"]
    assert pre["predicted_peak_gb"] == expected_peak_gb("pretrain", "bf16", [128] * 3, 4)
    assert ft["predicted_peak_gb"] == expected_peak_gb("finetune", "bf16+checkpointing", ft_set["crop_size"],
                                                       ft_set["micro_batch_size"])
    assert ft["effective_batch"] == 40 and ft["batch_in_flight"] == ft_set["micro_batch_size"]
    # GPU-hours: 800 epochs x ceil(10,412 CTs / 16) steps, each 4 GPUs x 4 pairs x 128^3 voxels x the measured FLOPs
    # per voxel, at MFU 0.30 of the A100's 312 TFLOP/s bf16 peak
    coef = json.loads((REPO / "smart/resources/memory_coefficients.json").read_text())["steps"]["pretrain"]["bf16"]
    hours = 800 * -(-10412 // 16) * coef["flops_per_voxel"] * 128**3 * 4 * 4 / (312e12 * 0.30 * 4) / 3600
    assert pre["hours_per_job"] == float(f"{hours:.4g}")  # 4 significant digits
    assert pre["gpu_hours"] == float(f"{hours * 4 * pre['jobs']:.4g}")
    assert pre["runtime_lengths"] == max(1, math.ceil(hours * 60 / res["pretrain"]["runtime"]))
    assert pre["retries_needed"] == pre["runtime_lengths"] - 1 and plan["retries"] == 1
    assert pre["retries_ok"] is (pre["runtime_lengths"] <= 2)
    assert plan["disk_gb"] > 0 and plan["disk_breakdown_gb"]["ct_cache"] == round(10412 * 2 * 179 * 179 * 188 * 2 / 1e9, 1)
    for rule in GPU_RULES_IN_ALL:
        assert any(line.split()[:1] == [rule] and " yes " in line for line in proc.stdout.splitlines()), rule


def test_unfit_finetuning_is_refused_before_any_job(paper_workspace, tmp_path):
    workdir, overlay = paper_workspace
    unfit = tmp_path / "unfit.yaml"
    unfit.write_text(yaml.safe_dump({"finetune": {"set": {**PAPER["finetune"]["set"], "micro_batch_size": 40,
                                                          "activation_checkpointing": False}},
                                     "resources": {"finetune": {"gpu_model": "a40"}}}))
    proc = run_snakemake(workdir, "-n", "--configfile", "config/paper.yaml", str(overlay), str(unfit), timeout=600)
    assert proc.returncode != 0
    assert "Job stats" not in proc.stdout  # refused while parsing: no DAG, no job
    text = " ".join((proc.stderr + proc.stdout).split())
    gib = expected_peak_gb("finetune", "bf16", [128] * 3, 40)
    assert f"resources.finetune: one job is predicted to need {gib:.1f} GiB" in text
    assert "but a40 has 48 GiB" in text
    assert "finetune.set micro_batch_size:" in text and "activation_checkpointing: true" in text
    # the plan shows the same: finetune does not fit, exit status 1
    plan_proc = smart_plan(workdir, "config/paper.yaml", str(overlay), str(unfit), json_out=tmp_path / "plan.json")
    assert plan_proc.returncode == 1, plan_proc.stderr[-2000:]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["rules"]["finetune"]["fits"] is False and plan["rules"]["finetune"]["predicted_peak_gb"] == gib
    assert all(row["fits"] for rule, row in plan["rules"].items() if rule != "finetune")


def test_plan_bad_card_is_one_line(paper_workspace, tmp_path):
    workdir, overlay = paper_workspace
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"resources": {"finetune": {"gpu_model": "v100"}}}))
    proc = smart_plan(workdir, "config/paper.yaml", str(overlay), str(bad), json_out=tmp_path / "plan.json")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "smart plan: error: config resources.finetune.gpu_model='v100' is not in the card table "
        "(smart/resources/cards.py: a100_40, a100_80, a40, h100, h200, l40s); set resources.finetune.gpu_mem_gb to "
        "its memory in GiB")
    assert not (tmp_path / "plan.json").exists()
