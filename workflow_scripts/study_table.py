"""Aggregate the `study` target (rules/study.smk) into results/study/study.{json,md}.

Per arm: linear-probe test AUC (mean ± sample std over seeds, and each seed's DeLong 95 % CI), Table-I intra/inter
cluster distances, zero-shot DSC (the `scratch` arm reports the random-attention baseline), and the training-health
figures of the last logged pretraining step (docs/ARCHITECTURE.md "Training health"): the teacher entropy / ln K of
each distillation loss on the rows it uses (1.00 = uniform collapse; AMPD's masked tokens the noisy teacher dropped
as `ampd_dropped`) and the effective rank (RankMe) of the student's [CLS] / pooled embeddings. The JSON also keeps
every monitor figure of that step per seed (`health`).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from smart.atomic import write_json, write_text

DISTILL = ("ampd", "ampd_dropped", "aitd", "gitd")
RANKS = ("cls", "pooled")
HEALTH_PREFIXES = ("teacher_entropy/", "teacher_spread/", "agreement/", "effective_rank/", "mask_body_share")


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _last_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def mean_std(values: list[float]) -> dict[str, float] | None:
    """Mean and sample std (ddof 1; 0 for one value) of the non-missing values; None when there are none."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def collect(root: Path, arms: dict[str, str], seeds: list[int]) -> dict[str, Any]:
    """Per arm and seed, the numbers the table shows (missing files give None, never a made-up value)."""
    out: dict[str, Any] = {}
    for arm, method in arms.items():
        rows = []
        for seed in seeds:
            base = root / arm / f"seed_{seed}"
            probe = _read(base / "probe" / "metrics.json")
            test = (probe or {}).get("test") or {}
            clusters = _read(base / "cluster" / "clusters.json") or {}
            zs_dir = root / ("random" if method == "scratch" else arm) / f"seed_{seed}" / "zeroshot"
            zeroshot = _read(zs_dir / "summary.json") or {}
            last = _last_record(base / "pretrain" / "metrics.jsonl") or {}
            k = None
            cfg = _read(base / "pretrain" / "config.json")
            if cfg:
                k = int(cfg["loss"]["out_dim"])
            entropy = {n: (last.get(f"teacher_entropy/{n}") / math.log(k) if k and f"teacher_entropy/{n}" in last
                           else None) for n in DISTILL}
            rows.append({"seed": seed, "auc": test.get("auc"), "auc_ci": test.get("auc_ci"), "n_test": test.get("n"),
                         "intra": clusters.get("intra_mean"), "inter": clusters.get("inter_mean"),
                         "dsc": zeroshot.get("dsc_mean"), "entropy_over_lnK": entropy, "step": last.get("step"),
                         "effective_rank": {n: last.get(f"effective_rank/{n}") for n in RANKS},
                         "health": {key: value for key, value in last.items() if key.startswith(HEALTH_PREFIXES)}})
        out[arm] = {"method": method, "seeds": rows,
                    "auc": mean_std([r["auc"] for r in rows]), "intra": mean_std([r["intra"] for r in rows]),
                    "inter": mean_std([r["inter"] for r in rows]), "dsc": mean_std([r["dsc"] for r in rows]),
                    "entropy_over_lnK": {n: mean_std([r["entropy_over_lnK"][n] for r in rows]) for n in DISTILL},
                    "effective_rank": {n: mean_std([r["effective_rank"][n] for r in rows]) for n in RANKS}}
    return out


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    return "—" if stat is None else f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f} (n={stat['n']})"


def markdown(table: dict[str, Any]) -> str:
    lines = ["| arm | method | probe test AUC | per-seed DeLong 95 % CI | intra ↓ | inter ↑ | zero-shot DSC | "
             "H/ln K AMPD | AMPD dropped | AITD | GITD | rank [CLS] | rank pooled |", "|" + "---|" * 13]
    for arm, rec in table.items():
        cis = "; ".join("—" if r["auc_ci"] is None else f"[{r['auc_ci'][0]:.2f}, {r['auc_ci'][1]:.2f}]"
                        for r in rec["seeds"])
        ent = [_fmt(rec["entropy_over_lnK"][n], 2) for n in DISTILL] + [_fmt(rec["effective_rank"][n], 1)
                                                                          for n in RANKS]
        lines.append(f"| {arm} | {rec['method']} | {_fmt(rec['auc'])} | {cis} | {_fmt(rec['intra'], 2)} | "
                     f"{_fmt(rec['inter'], 2)} | {_fmt(rec['dsc'])} | {' | '.join(ent)} |")
    lines.append("")
    lines.append("Mean ± sample std over seeds. `scratch` = random init (probe) and random attention (zero-shot). "
                 "H/ln K: teacher entropy over ln K at the last logged pretraining step (1.00 = uniform collapse), on "
                 "the rows each loss uses (AMPD: masked tokens the noisy teacher saw; AMPD dropped: those it dropped). "
                 "rank: RankMe of the student's [CLS] / pooled embeddings over the last logging window.")
    return "\n".join(lines) + "\n"


def plot_ampd_with_without_nt(root: Path, seeds: list[int], out: Path, with_nt: str = "smart",
                              without_nt: str = "smart_no_nt") -> Path | None:
    """Fig. 11: the AMPD loss per logged step of SMART with (solid) and without (dotted) the noisy teacher, one line
    per seed. Returns None when either arm has no metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for arm in (with_nt, without_nt):
        for seed in seeds:
            path = root / arm / f"seed_{seed}" / "pretrain" / "metrics.jsonl"
            if not path.is_file():
                return None
            recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            curves[(arm, seed)] = ([r["step"] for r in recs if "loss/ampd" in r],
                                   [r["loss/ampd"] for r in recs if "loss/ampd" in r])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (arm, seed), (steps, loss) in curves.items():
        ax.plot(steps, loss, "-" if arm == with_nt else ":", color=f"C{seeds.index(seed)}",
                label=f"{'with' if arm == with_nt else 'without'} NT, seed {seed}")
    ax.set_xlabel("step")
    ax.set_ylabel("AMPD loss")
    ax.set_title("AMPD with / without noisy teacher (Fig. 11)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--arms", required=True, help="JSON mapping arm -> method")
    p.add_argument("--seeds", required=True, type=int, nargs="+")
    p.add_argument("--out-md", required=True, type=Path)
    p.add_argument("--out-json", required=True, type=Path)
    p.add_argument("--out-fig11", required=True, type=Path, help="Fig. 11 PNG (AMPD loss with/without NT)")
    args = p.parse_args(argv)
    table = collect(args.root, json.loads(args.arms), args.seeds)
    write_json(args.out_json, table)
    write_text(args.out_md, markdown(table))
    if plot_ampd_with_without_nt(args.root, args.seeds, args.out_fig11) is None:
        raise SystemExit(f"{args.root}: Fig. 11 needs pretraining metrics of the smart and smart_no_nt arms")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
