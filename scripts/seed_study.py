#!/usr/bin/env python3
"""Three-seed demo study: does tiny-scale SMART pretraining beat a random-init encoder (linear probe, LIDC-like
synthetic nodules) and the random-attention baseline (zero-shot DSC on the synthetic 5-rater set)?

Every step is the real CLI (``python -m smart <step>``) run as a subprocess, exactly as the workflow runs it, so the
study measures the shipped code and not a re-implementation. Per seed ``s``:

1. ``synth ct`` (``--ct-count`` phantoms) -> ``resample`` (2 mm manifest);
2. ``synth nodules`` (``--nodules``) -> ``splits`` (seed ``s``);  ``synth raters`` (``--raters``);
3. ``pretrain --method M --preset tiny --set train.seed=s`` for ``--steps`` steps (``--method``, default smart;
   ``amip`` = the AMIP-only ablation, which isolates what the distillation losses add);
4. ``linear-probe`` of the pretrained encoder and of ``--encoder none`` (the same tiny architecture: downstream
   ``scratch_preset=tiny``; the random init is seeded by the downstream ``seed=s``) on each ``--folds`` fold;
5. ``zeroshot`` of the pretrained encoder and of ``--encoder random`` (random attention, ``--seed s``).

A step whose output file already exists is skipped, so an interrupted study resumes. Results: ``OUT/study.json``
(per-seed numbers, mean ± sample std over seeds, paired differences) and ``OUT/study.md`` (the table); for a
``--method`` other than smart, ``study_<method>.{json,md}``. In the JSON the key ``smart`` always denotes the encoder
pretrained with ``--method``.

Example (the run recorded in docs/results_seed_study.md)::

    python scripts/seed_study.py --out results/seed_study --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from smart.atomic import write_text  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="study folder (data, runs, study.json, study.md)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300, help="pretraining steps per seed (tiny preset)")
    p.add_argument("--ct-count", type=int, default=8, help="synthetic CTs for pretraining")
    p.add_argument("--nodules", type=int, default=160, help="synthetic nodules in the probe cohort (>= 120)")
    p.add_argument("--raters", type=int, default=6, help="cases in the synthetic 5-rater set")
    p.add_argument("--folds", type=int, nargs="+", default=[0], help="validation folds to probe (of 3)")
    p.add_argument("--probe-crop", type=int, default=32, help="probe input crop edge (voxels)")
    p.add_argument("--zeroshot-crop", type=int, default=64, help="zero-shot input crop edge (voxels)")
    p.add_argument("--method", default="smart", help="pretraining method or ablation (e.g. amip: AMIP only, no "
                   "distillation); results of a method other than smart go to seed_N/results_<method>")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra pretraining --set override (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per subprocess")
    args = p.parse_args(argv)
    if args.nodules < 120:
        p.error(f"--nodules must be >= 120 (got {args.nodules}): fewer leave too few test nodules for a stable AUC")
    if args.steps < 1 or args.ct_count < 1 or args.raters < 1:
        p.error("--steps, --ct-count and --raters must be positive")
    return args


class Runner:
    """Runs ``python -m smart ...`` steps, skipping those whose output exists, and logs each command + duration."""

    def __init__(self, log_path: Path, threads: int) -> None:
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                    **{k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
        self.timings: list[dict[str, Any]] = []

    def smart(self, args: list[str], done: Path) -> None:
        if done.exists():
            return
        cmd = [sys.executable, "-m", "smart", *args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        with self.log_path.open("a") as log:
            log.write(f"$ {' '.join(cmd)}\n[{seconds:.1f} s, rc {proc.returncode}]\n{proc.stdout[-2000:]}"
                      f"{proc.stderr[-4000:] if proc.returncode else ''}\n")
        self.timings.append({"step": args[0] + (f" {args[1]}" if args[0] == "synth" else ""), "seconds": seconds})
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        if not done.exists():
            raise RuntimeError(f"`{' '.join(cmd)}` succeeded but did not write {done}")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def run_seed(run: Runner, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    root = args.out / f"seed_{seed}"
    data = root / "data"  # shared by every method of the study
    res = root / ("results" if args.method == "smart" else f"results_{args.method}")
    s = str(seed)
    run.smart(["synth", "ct", "--out", str(data / "ct_raw"), "--seed", s, "--count", str(args.ct_count)],
              data / "ct_raw" / f"synct_{args.ct_count - 1:04d}.nii.gz")
    raw = sorted(str(p) for p in (data / "ct_raw").glob("synct_*.nii.gz"))
    manifest = data / "manifest.csv"
    run.smart(["resample", "--input", *raw, "--out-dir", str(data / "ct_2mm"), "--manifest", str(manifest),
               "--rejected", str(data / "rejected.csv")], manifest)
    cohort, splits = data / "nodules" / "cohort.csv", data / "splits.json"
    run.smart(["synth", "nodules", "--out", str(data / "nodules"), "--seed", s, "--count", str(args.nodules)], cohort)
    run.smart(["splits", "--cohort", str(cohort), "--out", str(splits), "--seed", s], splits)
    raters = data / "raters" / "raters.csv"
    run.smart(["synth", "raters", "--out", str(data / "raters"), "--seed", s, "--count", str(args.raters)], raters)

    pre = res / "pretrain"
    sets = [f"train.seed={seed}", f"train.steps={args.steps}", *args.sets]
    run.smart(["pretrain", "--method", args.method, "--preset", "tiny", "--manifest", str(manifest), "--out", str(pre),
               *[x for kv in sets for x in ("--set", kv)]], pre / "encoder.pt")
    log = [json.loads(line) for line in (pre / "metrics.jsonl").read_text().splitlines() if line.strip()]

    crop = args.probe_crop
    probe_sets = ["scratch_preset=tiny", f"seed={seed}", f"crop_size=[{crop},{crop},{crop}]"]
    probe: dict[str, list[float]] = {"smart": [], "random_init": []}
    for fold in args.folds:
        for name, enc in (("smart", str(pre / "encoder.pt")), ("random_init", "none")):
            out = res / "probe" / name / f"fold_{fold}"
            run.smart(["linear-probe", "--encoder", enc, "--cohort", str(cohort), "--splits", str(splits),
                       "--fold", str(fold), "--out", str(out), *[x for kv in probe_sets for x in ("--set", kv)]],
                      out / "metrics.json")
            probe[name].append(float(read_json(out / "metrics.json")["test"]["auc"]))

    zc = [str(args.zeroshot_crop)] * 3
    zeroshot: dict[str, float] = {}
    for name, enc in (("smart", str(pre / "encoder.pt")), ("random_attention", "random")):
        out = res / "zeroshot" / name
        run.smart(["zeroshot", "--encoder", enc, "--raters", str(raters), "--out", str(out), "--crop", *zc,
                   "--seed", s, "--device", "cpu"], out / "summary.json")
        zeroshot[name] = float(read_json(out / "summary.json")["dsc_mean"])

    return {"seed": seed, "probe_test_auc": {k: statistics.fmean(v) for k, v in probe.items()},
            "probe_test_auc_per_fold": probe, "zeroshot_dsc": zeroshot,
            "pretrain_first": log[0] if log else {}, "pretrain_last": log[-1] if log else {}}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and *sample* standard deviation (ddof 1; 0 for a single value) over seeds."""
    vals = [float(v) for v in values]
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    comparisons = {"probe_test_auc": ("smart", "random_init"), "zeroshot_dsc": ("smart", "random_attention")}
    out: dict[str, Any] = {}
    for metric, (ours, base) in comparisons.items():
        a = [r[metric][ours] for r in per_seed]
        b = [r[metric][base] for r in per_seed]
        out[metric] = {ours: mean_std(a), base: mean_std(b), "difference": mean_std([x - y for x, y in zip(a, b)]),
                       "seeds_where_smart_wins": sum(x > y for x, y in zip(a, b))}
    for loss in ("loss/ampd", "loss/aitd", "loss/gitd", "loss/amip"):
        vals = [r["pretrain_last"].get(loss) for r in per_seed]
        if all(v is not None for v in vals):
            out[f"final_{loss.split('/')[1]}"] = mean_std(vals)
    return out


def markdown(summary: dict[str, Any], per_seed: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def fmt(d: dict[str, float]) -> str:
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    n, m = len(per_seed), args.method
    lines = [f"Method `{args.method}`. Seeds {', '.join(str(r['seed']) for r in per_seed)}; {args.steps} tiny-preset "
             f"pretraining steps on "
             f"{args.ct_count} synthetic CTs; {args.nodules} nodules (probe folds {args.folds}); "
             f"{args.raters} rater cases. Mean ± sample std over seeds.", "",
             f"| comparison | {m} | baseline | {m} − baseline | seeds {m} wins |", "|---|---|---|---|---|"]
    for metric, base, label in (("probe_test_auc", "random_init", "linear-probe test AUC vs random-init encoder"),
                                ("zeroshot_dsc", "random_attention", "zero-shot DSC vs random attention")):
        s = summary[metric]
        lines.append(f"| {label} | {fmt(s['smart'])} | {fmt(s[base])} | {fmt(s['difference'])} | "
                     f"{s['seeds_where_smart_wins']}/{n} |")
    lines += ["", f"| seed | probe AUC {m} | probe AUC random init | DSC {m} | DSC random attention | "
              "final AMPD | final AITD | final GITD | final AMIP |", "|---|---|---|---|---|---|---|---|---|"]
    for r in per_seed:
        last = r["pretrain_last"]
        losses = " | ".join(f"{last.get(f'loss/{k}', float('nan')):.3f}" for k in ("ampd", "aitd", "gitd", "amip"))
        lines.append(f"| {r['seed']} | {r['probe_test_auc']['smart']:.3f} | {r['probe_test_auc']['random_init']:.3f} | "
                     f"{r['zeroshot_dsc']['smart']:.3f} | {r['zeroshot_dsc']['random_attention']:.3f} | {losses} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run = Runner(args.out / "commands.log", args.threads)
    start = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(run, args, seed))
        print(f"seed {seed}: {json.dumps({k: per_seed[-1][k] for k in ('probe_test_auc', 'zeroshot_dsc')})}",
              flush=True)
    summary = summarise(per_seed)
    result = {"argv": sys.argv, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "wall_seconds_this_invocation": time.perf_counter() - start, "step_timings": run.timings,
              "summary": summary, "per_seed": per_seed}
    stem = "study" if args.method == "smart" else f"study_{args.method}"
    write_text(args.out / f"{stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    write_text(args.out / f"{stem}.md", markdown(summary, per_seed, args))
    print(markdown(summary, per_seed, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
