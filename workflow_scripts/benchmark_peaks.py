"""Per-rule peaks of a finished run's Snakemake benchmark files (`results/benchmarks/**.tsv`), as a Markdown table.

The rule is the first path component under the benchmarks folder (`benchmarks/finetune/lidc/…/fold_0.tsv` ->
finetune, `benchmarks/resample.tsv` -> resample; the synth_* rules share `synth/`). Columns: jobs, the largest
`max_rss` (MB), the longest wall time `s` and the largest `cpu_time` (s) over the rule's jobs. Used for BENCHMARKS.md
"Workflow: measured peaks per rule", from which config/schema.yaml and config/paper.yaml take their resources.

    python -m workflow_scripts.benchmark_peaks results/benchmarks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def rule_peaks(bench_dir: str | Path) -> pd.DataFrame:
    """One row per rule: ``jobs, max_rss_mb, wall_s, cpu_s``; ``ValueError`` if the folder holds no .tsv."""
    root = Path(bench_dir)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": rel.parts[0] if len(rel.parts) > 1 else rel.stem, "max_rss_mb": frame["max_rss"].max(),
                     "wall_s": frame["s"].max(), "cpu_s": frame["cpu_time"].max()})
    if not rows:
        raise ValueError(f"{root}: no Snakemake benchmark (.tsv) files")
    table = pd.DataFrame(rows).groupby("rule").agg(jobs=("wall_s", "size"), max_rss_mb=("max_rss_mb", "max"),
                                                   wall_s=("wall_s", "max"), cpu_s=("cpu_s", "max"))
    return table.reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_dir", help="the run's results/benchmarks folder")
    args = parser.parse_args(argv)
    try:
        table = rule_peaks(args.bench_dir)
    except ValueError as err:
        print(f"benchmark_peaks: {err}", file=sys.stderr)
        return 2
    print("| rule | jobs | peak RSS (MB) | longest wall (s) | largest CPU time (s) |")
    print("|---|---:|---:|---:|---:|")
    for row in table.itertuples():
        print(f"| {row.rule} | {row.jobs} | {row.max_rss_mb:.0f} | {row.wall_s:.1f} | {row.cpu_s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
