"""The workflow through `--profile slurm` on a real single-node SLURM (marker `slurm`). Part of the default suite: CI
must exercise the SLURM path for real (issue 4), ~3 min with the daemons, plus ~40 s of apt on a fresh machine.

Run: python -m pytest tests/workflow -m slurm -q   (root + apt-get, or an installed slurm-wlm + munge)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from slurm_cluster import slurm_run, submitted_jobs
from workflow_workspace import make_workspace, run_snakemake, snakemake_env, tiny_config

pytestmark = [pytest.mark.slurm]

TARGETS = ("results/preprocess/lidc/splits.json", "results/plan.json")


def test_profile_is_found_from_the_repository_root(demo_workspace):
    proc = run_snakemake(demo_workspace, "--profile", "slurm", "-n", "preprocess", "--slurm-no-account",
                         timeout=300)
    # the profile's executor is active (a dry run submits nothing, but loads the plugin and its settings)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_small_target_runs_through_sbatch(tmp_path, slurm_cluster):
    wf = make_workspace(tmp_path / "wf", tiny_config())
    proc = slurm_run(wf, slurm_cluster, *TARGETS)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    jobs = submitted_jobs(out)
    assert set(jobs) == {"synth_cohort", "splits", "plan_json"}, jobs
    assert len(set(jobs.values())) == 3
    for rule, job in jobs.items():
        # SLURM's own log of the job (kept for failed jobs; successful ones may be cleaned up by the plugin)
        for slurm_log in (wf / ".snakemake/slurm_logs" / f"rule_{rule}").rglob(f"{job}.log"):
            assert f"rule {rule}:" in slurm_log.read_text()
    splits = json.loads((wf / "results/preprocess/lidc/splits.json").read_text())
    assert splits["n_folds"] == 2
    assert set(json.loads((wf / "results/plan.json").read_text())["variants"]) == {"scratch", "smart"}
    assert "SLURM-job" not in out  # no failure messages


def test_failing_rule_is_reported_and_does_not_hang(tmp_path, slurm_cluster):
    wf = make_workspace(tmp_path / "wf", tiny_config(**{"splits.folds": 40}))
    proc = slurm_run(wf, slurm_cluster, "results/preprocess/lidc/splits.json", timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    jobs = submitted_jobs(out)
    assert "splits" in jobs and "synth_cohort" in jobs
    assert f"SLURM-job '{jobs['splits']}' failed" in out
    assert "Error in rule splits" in out
    assert not (wf / "results/preprocess/lidc/splits.json").exists()
    assert "cannot make 40 folds" in (wf / "results/logs/splits/lidc.log").read_text()
    assert list((wf / ".snakemake/slurm_logs/rule_splits").rglob(f"{jobs['splits']}.log"))


def test_multi_node_pretraining_runs_through_srun_and_matches_one_process(tmp_path, slurm_cluster):
    """`resources.pretrain.nodes: 2` -> sbatch --nodes/--ntasks + `srun torchrun --nnodes 2` with a c10d rendezvous.
    The loopback cluster has one node, so the test lets SLURM place both "node" tasks on it (--set-resources
    pretrain:nodes=1) while the launcher still starts 2 torchrun agents of 1 process each (gloo on CPU). Same global
    batch (2 x 1 vs 1 x 2) and no drop path: the encoder equals a 1-process run to float32 reduction noise."""
    from smart.train.checkpoint import load_checkpoint

    steps = 3
    cfg = tiny_config(**{"variants": {"smart": {"method": "smart"}}, "ablations": {}, "segmentation.variants": ["smart"],
                         "pretrain.max_steps": steps,
                         "pretrain.set": {"data.batch_size": 1, "model.drop_path_rate": 0.0, "train.steps": steps},
                         "resources": {"pretrain": {"gpu": 1, "nodes": 2, "cpus_per_task": 1, "mem_mb": 3000,
                                                    "runtime": 30}}})
    wf = make_workspace(tmp_path / "wf", cfg)
    proc = slurm_run(wf, slurm_cluster, "results/pretrain/smart/encoder.pt", timeout=1200,
                     extra_resources=("pretrain:nodes=1",))
    out = proc.stdout + proc.stderr
    log = (wf / "results/logs/pretrain/smart.log")
    assert proc.returncode == 0, out[-4000:] + (log.read_text()[-4000:] if log.exists() else "")
    assert "srun --ntasks 2 --kill-on-bad-exit=1 torchrun --nnodes 2 --nproc_per_node 1 --rdzv_backend c10d" in out
    assert "pretrain" in submitted_jobs(out)
    two = load_checkpoint(wf / "results/pretrain/smart/checkpoint_final.pt")
    assert two["world_size"] == 2 and two["step"] == steps

    env = snakemake_env()
    env["OMP_NUM_THREADS"] = "1"
    single = subprocess.run(
        [sys.executable, "-m", "smart", "pretrain", "--method", "smart", "--preset", "tiny", "--max-steps", str(steps),
         "--set", "data.batch_size=2", "--set", "model.drop_path_rate=0.0", "--set", f"train.steps={steps}",
         "--manifest", "results/preprocess/manifest.csv", "--out", str(tmp_path / "one")],
        cwd=wf, env=env, capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    one = load_checkpoint(tmp_path / "one/checkpoint_final.pt")
    worst = max(float((one["model"][k].float() - two["model"][k].float()).abs().max()) for k in one["model"]
                if one["model"][k].is_floating_point())
    print(f"SLURM 2 tasks x 1 vs 1 process x 2 after {steps} steps: max |weight difference| = {worst:.3g}")
    assert worst < 1e-4, worst
