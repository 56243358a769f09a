"""``smart plan``: what a workflow config will ask of the cluster, before any job — per GPU rule of the planned DAG:
jobs, GPUs per job, card and its memory, predicted peak memory, fits, GPU-hours, runtime lengths; and disk.

* **Jobs** come from Snakemake's own dry run (``snakemake -n --configfile ...``, its "Job stats" table), run in the
  workflow folder; the config the workflow resolved (schema defaults filled) is handed back by the workflow's own
  fit-check hook (:func:`smart.resources.fit.workflow_check`, ``$SMART_PLAN_CONFIG``), so the plan reads exactly what
  the jobs will get.
* **Memory**: :mod:`smart.resources.fit` (the measured memory model).
* **GPU-hours** are a projection until a GPU has measured the steps (BENCHMARKS.md holds no GPU step time yet): model
  FLOPs per job (the measured ``flops_per_voxel`` of each step, ``torch.utils.flop_counter``) at an assumed
  :data:`MFU` of the card's dense bf16 peak (half of it for fp32 steps, i.e. TF32), labelled so in the output.
  Work per job uses the paper's data sizes (:data:`PAPER_SAMPLES`, overridable with ``--samples``).
* **Runtime lengths**: a job longer than its ``runtime`` finishes only through SLURM requeues that resume it
  (``retries`` in slurm/config.yaml): ``lengths = ceil(hours / runtime)``, needing ``retries >= lengths - 1``.
* **Disk**: the 2 mm CT cache (``ct_2mm`` + the int16 store, :data:`BYTES_PER_CT`), pretraining checkpoints and
  encoders, fine-tuning resume checkpoints (all jobs at once, an upper bound).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from smart.overlay import set_items
from smart.resources.cards import AMBIGUOUS, bf16_peak_tflops, smallest_card
from smart.resources.fit import PLAN_ENV, check_fits
from smart.resources.memory import coefficients_for, load_coefficients
from smart.resources.workload import GROUP_RULES, Workload

MFU = 0.30  # assumed model-FLOPs utilisation (projection; `smart bench gpu` measures the real one)
# Paper Sec. IV-A/VII: 10,412 pretraining CTs; LIDC 2,624 nodules (1,624 CV + 1,000 test); immunotherapy 200
# patients; OrganMNIST3D 1,742 volumes (971/161/610, medmnist 3.0.2); 5-rater tumours 21 (config/paper.yaml).
PAPER_SAMPLES = {"cts": 10412, "lidc": 2624, "response": 200, "organmnist": 1742, "raters": 21}
# One 2 mm CT of 179x179x188 (the paper data's median, DESIGN.md): int16 = 12 MB, kept twice (ct_2mm NIfTI as an
# uncompressed upper bound + the memory-mapped int16 store the pretraining loader reads).
BYTES_PER_CT = 2 * 179 * 179 * 188 * 2


def parse_job_stats(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table Snakemake prints for a dry run; ``{}`` when nothing to do."""
    if "Job stats:" not in output:
        return {}
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


def dry_run(configfiles: Sequence[str], targets: Sequence[str] = (), workdir: str | os.PathLike = ".",
            timeout: float = 900) -> tuple[dict[str, int], dict[str, Any]]:
    """``(rule -> jobs, resolved config)`` from ``snakemake -n`` in ``workdir``. ``ValueError`` with Snakemake's own
    last error line when the workflow refuses to plan."""
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "config.json"
        env = {**os.environ, PLAN_ENV: str(resolved)}
        cmd = [sys.executable, "-m", "snakemake", "-n", *targets, "--configfile", *configfiles]
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not resolved.is_file():
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            reason = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
            raise ValueError(f"snakemake -n {' '.join(targets)} --configfile {' '.join(configfiles)} failed in "
                             f"{workdir}: {reason}")
        return parse_job_stats(proc.stdout), json.loads(resolved.read_text())


def _card_peak_flops(gpu_model: str) -> float:
    model = str(gpu_model or "").lower()
    model = AMBIGUOUS.get(model, (model,))[0]
    tflops = bf16_peak_tflops(model) or smallest_card().bf16_tflops
    return tflops * 1e12


def _voxels(crop: Sequence[int]) -> int:
    return int(crop[0]) * int(crop[1]) * int(crop[2])


def job_samples(group: str, config: Mapping[str, Any], samples: Mapping[str, int]) -> tuple[float, str]:
    """``(forward-or-step units per job, how)``: optimisation steps (pretrain, segmentation) or samples passed through
    (the others) per job, from the paper's data sizes."""
    if group == "pretrain":
        from smart.config import load_config

        pre = config["pretrain"]
        schedule = {k: v for k, v in (pre["set"] or {}).items() if str(k).split(".")[0] in ("data", "train")}
        cfg = load_config("smart", pre["preset"], pre["config_yaml"], set_items(schedule))
        gpus = int(config["resources"]["pretrain"]["gpu"]) * int(config["resources"]["pretrain"]["nodes"])
        global_batch = int(cfg["data"]["batch_size"]) * max(gpus, 1)
        epochs = cfg["train"].get("epochs")
        steps = (epochs * math.ceil(samples["cts"] / global_batch) if epochs else int(cfg["train"]["steps"]))
        if pre.get("max_steps"):
            steps = min(steps, int(pre["max_steps"]))
        return float(steps), f"{steps} steps ({epochs} epochs of {samples['cts']} CTs at global batch {global_batch})"
    if group in ("finetune", "probe"):
        from smart.resources.workload import _downstream_configs

        folds = int(config["finetune"]["folds"] or config["splits"]["folds"])
        per_job = []
        for task, cfg in _downstream_configs(config):
            n = samples.get(task, samples["lidc"])
            test = config["tasks"][task].get("test_size") or 0
            cv = n - (test if test >= 1 else int(n * test))
            for fraction in config["tasks"][task]["fractions"]:
                train = cv * (folds - 1) / folds * fraction
                per_job.append(train * int(cfg["epochs"]) if group == "finetune" else n)
        unit = "training samples x epochs" if group == "finetune" else "samples embedded"
        return sum(per_job) / len(per_job), f"mean over tasks x fractions of {unit}"
    if group == "segmentation":
        steps = int((config["segmentation"].get("set") or {}).get("steps", 0) or 0)
        return float(steps), f"{steps} steps"
    n = samples["organmnist"] if group == "embed" else samples["raters"] if group == "zeroshot" else 3
    return float(n), f"{n} samples"


def gpu_hours(group: str, w: Workload, jobs: int, gpus: int, gpu_model: str, config: Mapping[str, Any],
              data: dict[str, Any], samples: Mapping[str, int]) -> tuple[float, float, str]:
    """``(GPU-hours of all jobs, hours per job, basis)`` — a FLOPs projection at :data:`MFU`."""
    coef = coefficients_for(w.step, w.variant, data)
    units, how = job_samples(group, config, samples)
    per_unit = float(coef["flops_per_voxel"]) * _voxels(w.crop)
    if group in ("pretrain", "segmentation"):
        per_unit *= w.effective_batch * (gpus if group == "pretrain" else 1)  # a step = the global batch
    rate = _card_peak_flops(gpu_model) * MFU * (0.5 if w.variant.startswith("fp32") else 1.0)
    hours_per_job = units * per_unit / (rate * max(gpus, 1)) / 3600
    basis = f"projection: model FLOPs at MFU {MFU:.2f} of the card's dense bf16 peak ({how})"
    return hours_per_job * jobs * max(gpus, 1), hours_per_job, basis


def profile_retries(workdir: str | os.PathLike = ".") -> int | None:
    """``retries`` of the SLURM profile (``slurm/config.yaml``) in ``workdir``; ``None`` when there is none."""
    import yaml

    path = Path(workdir) / "slurm" / "config.yaml"
    if not path.is_file():
        return None
    return int((yaml.safe_load(path.read_text()) or {}).get("retries", 0) or 0)


def disk_bytes(config: Mapping[str, Any], counts: Mapping[str, int], data: dict[str, Any],
               samples: Mapping[str, int]) -> dict[str, float]:
    """Bytes per kind: CT cache, pretraining checkpoints + encoders, fine-tuning/segmentation resume checkpoints."""
    out: dict[str, float] = {}
    if counts.get("resample") or counts.get("resample_shard"):
        out["ct_cache"] = float(samples["cts"] * BYTES_PER_CT)
    steps = data["steps"]
    if counts.get("pretrain") and "pretrain" in steps:
        total = next(iter(steps["pretrain"].values()))["held_out"]["parameters"]
        enc = next(iter(steps["features"].values()))["held_out"]["parameters"] if "features" in steps else 0
        # student + teacher weights + AdamW's two moments of the student (~ half the parameters) + the encoder file
        out["pretrain_checkpoints"] = float(counts["pretrain"] * (4 * total * 2 + 4 * enc))
    for group, rule, step in (("finetune", "finetune", "finetune"), ("segmentation", "segmentation_finetune",
                                                                     "segmentation")):
        if counts.get(rule) and step in steps:
            params = next(iter(steps[step].values()))["held_out"]["parameters"]
            # model + AdamW moments + the best epoch's weights, while a job runs (deleted when it finishes)
            out[f"{group}_checkpoints"] = float(counts[rule] * 4 * params * 4)
    return out


def make_plan(config: Mapping[str, Any], counts: Mapping[str, int], samples: Mapping[str, int] | None = None,
              retries: int | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan as JSON-ready dict: ``{"rules": {RULE: {...}}, "disk_gb": ..., ...}`` for the GPU rules of ``counts``."""
    samples = {**PAPER_SAMPLES, **(samples or {})}
    fits = check_fits(config, data)
    data = data if data is not None else (load_coefficients() if fits else {"steps": {}})
    rules: dict[str, Any] = {}
    for fit in fits:
        for rule in GROUP_RULES[fit.group]:
            jobs = int(counts.get(rule, 0))
            if not jobs:
                continue
            res = config["resources"][fit.group]
            gpus = int(res["gpu"]) * int(res.get("nodes", 1) or 1)
            total, per_job, basis = gpu_hours(fit.group, fit.workload, jobs, gpus, res.get("gpu_model", ""), config,
                                              data, samples)
            lengths = max(1, math.ceil(per_job * 60 / int(res["runtime"])))
            rules[rule] = {
                "jobs": jobs, "gpus": gpus, "gpu_model": fit.gpu_model, "gpu_mem_limit_gb": fit.gpu_mem_limit_gb,
                "predicted_peak_gb": fit.predicted_peak_gb, "fits": fit.fits, "gpu_hours": float(f"{total:.4g}"),
                "gpu_hours_basis": basis, "hours_per_job": float(f"{per_job:.4g}"), "runtime_min": int(res["runtime"]),
                "runtime_lengths": lengths, "retries_needed": lengths - 1,
                "retries_ok": None if retries is None else retries >= lengths - 1,
                "step": fit.workload.step, "crop": fit.workload.crop, "batch_in_flight": fit.workload.batch,
                "effective_batch": fit.workload.effective_batch, "precision": fit.workload.variant,
                "to_fit": fit.suggestions, "notes": fit.workload.notes}
    disk = disk_bytes(config, counts, data, samples)
    return {"rules": rules, "disk_gb": round(sum(disk.values()) / 1e9, 1),
            "disk_breakdown_gb": {k: round(v / 1e9, 1) for k, v in disk.items()},
            "cpu_rules": {r: n for r, n in counts.items() if r not in rules},
            "retries": retries, "samples": samples, "mfu_assumed": MFU,
            "memory_model": data.get("command", "python -m smart bench memory")}


def render(plan: Mapping[str, Any]) -> str:
    """The plan as a fixed-width table plus the disk line and the notes."""
    head = ("rule", "jobs", "gpus", "gpu_model", "card GiB", "peak GiB", "fits", "GPU-h", "h/job", "runtime x")
    rows = [head]
    for rule, r in plan["rules"].items():
        rows.append((rule, str(r["jobs"]), str(r["gpus"]), r["gpu_model"], f"{r['gpu_mem_limit_gb']:g}",
                     f"{r['predicted_peak_gb']:.1f}", "yes" if r["fits"] else "NO", f"{r['gpu_hours']:,.3g}",
                     f"{r['hours_per_job']:.3g}", str(r["runtime_lengths"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    parts = ", ".join(f"{k} {v:,.1f}" for k, v in plan["disk_breakdown_gb"].items()) or "none"
    lines.append(f"disk: {plan['disk_gb']:,.1f} GB ({parts})")
    lines.append(f"GPU-hours: projection (model FLOPs at MFU {plan['mfu_assumed']:.2f}; no GPU step time measured "
                 f"yet); memory: measured CPU model ({plan['memory_model']})")
    for rule, r in plan["rules"].items():
        if not r["fits"]:
            lines.append(f"{rule} does not fit: " + "; or ".join(r["to_fit"]))
        if r["retries_ok"] is False:
            lines.append(f"{rule}: a job needs {r['runtime_lengths']} runtime lengths of {r['runtime_min']} min; "
                         f"the SLURM profile's retries: {plan['retries']} allows {plan['retries'] + 1} (set retries: "
                         f"{r['retries_needed']} or a longer runtime)")
        for note in r["notes"]:
            lines.append(f"{rule}: {note}")
    return "\n".join(lines)
