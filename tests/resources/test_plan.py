"""The plan's arithmetic on a config and a coefficients table written here: job counts parsed from Snakemake's
"Job stats" table, GPU-hours as FLOPs at the stated MFU, runtime lengths against the profile's retries, disk."""

from __future__ import annotations

import math

from resources_helpers import DATA, paper_config

from smart.resources.plan import BYTES_PER_CT, MFU, make_plan, parse_job_stats, render

JOB_STATS = """Building DAG of jobs...
Job stats:
job               count
--------------  -------
finetune            450
pretrain             22
resample              1
total               473

Reasons:
"""


def test_job_stats_are_parsed_without_the_total():
    assert parse_job_stats(JOB_STATS) == {"finetune": 450, "pretrain": 22, "resample": 1}
    assert parse_job_stats("Nothing to be done (all requested files are present and up to date).") == {}


def test_gpu_hours_runtime_lengths_and_disk():
    cfg = paper_config()
    cfg["finetune"].update(config_yaml=None, folds=None, tasks=None)
    cfg["resources"]["pretrain"]["runtime"] = 60  # one hour: the pretraining needs several lengths
    params = {"pretrain": 1000, "finetune": 100, "features": 50}
    data = {"steps": {k: {v: {**c, "held_out": {"parameters": params.get(k, 10)}} for v, c in variants.items()}
                      for k, variants in DATA["steps"].items()}}
    counts = parse_job_stats(JOB_STATS)
    plan = make_plan(cfg, counts, retries=1, data=data)
    assert set(plan["rules"]) == {"pretrain", "finetune"}  # GPU rules of the DAG; the others are listed as CPU rules
    assert plan["cpu_rules"] == {"resample": 1}
    pre = plan["rules"]["pretrain"]
    # 800 epochs x ceil(10,412 / (4 pairs x 4 GPUs)) steps x 1e6 FLOP/voxel x 128^3 x 16, at MFU x 312 TFLOP/s x 4
    hours = 800 * math.ceil(10412 / 16) * 1e6 * 128**3 * 16 / (MFU * 312e12 * 4) / 3600
    assert pre["hours_per_job"] == float(f"{hours:.4g}")
    assert pre["gpu_hours"] == float(f"{hours * 4 * 22:.4g}")
    assert pre["runtime_lengths"] == math.ceil(hours) and pre["retries_needed"] == math.ceil(hours) - 1
    assert math.ceil(hours) == 13 and pre["retries_ok"] is False  # 12.97 h in 1-h lengths: retries 1 is too few
    assert plan["rules"]["finetune"]["retries_ok"] is True
    assert ("pretrain: a job needs 13 runtime lengths of 60 min; the SLURM profile's retries: 1 allows 2 (set "
            "retries: 12 or a longer runtime)") in render(plan)
    # fine-tuning: training samples x epochs per job, averaged over (task, fraction): LIDC 2,624 - 1,000 test, response
    # 200 (no test set); 2 of 3 folds train; fractions 0.25/0.5/1.0; fp32 steps run at half the bf16 rate
    per_job = [cv * 2 / 3 * f * epochs for cv, epochs in ((1624, 1000), (200, 2000)) for f in (0.25, 0.5, 1.0)]
    ft_hours = sum(per_job) / 6 * 1e6 * 128**3 / (MFU * 149.7e12) / 3600  # bf16 (precision auto on CUDA), A40
    assert plan["rules"]["finetune"]["hours_per_job"] == float(f"{ft_hours:.4g}")
    # disk: the CT cache (twice 12 MB per CT), 22 pretraining checkpoints + encoders, 450 fine-tuning checkpoints
    assert BYTES_PER_CT == 2 * 179 * 179 * 188 * 2
    assert plan["disk_breakdown_gb"] == {"ct_cache": round(10412 * BYTES_PER_CT / 1e9, 1),
                                         "pretrain_checkpoints": round(22 * (8 * 1000 + 4 * 50) / 1e9, 1),
                                         "finetune_checkpoints": round(450 * 16 * 100 / 1e9, 1)}
