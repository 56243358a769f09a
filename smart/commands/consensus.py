"""``smart consensus``: one consensus mask per case (STAPLE or majority) from a raters table, on the CT's grid
(:func:`smart.data.rater_consensus.consensus_for_table`); writes ``{case_id}.nii.gz``, ``raters.csv`` (the input with
a ``consensus`` column, the input of ``smart zeroshot``), ``rejected.csv`` and ``consensus.summary.json``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smart.data.rater_consensus import DEFAULT_MARGIN, DEFAULT_METHOD, METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raters", required=True, type=Path,
                        help="CSV: case_id, image (CT), optional series_uid, rater1..N (mask files; from "
                             "`smart import-masks` or by hand)")
    parser.add_argument("--out-dir", required=True, type=Path, help="consensus masks + raters.csv")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"default {DEFAULT_METHOD}")
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN,
                        help=f"STAPLE: background voxels kept around the raters' union (default {DEFAULT_MARGIN})")


def main(args: argparse.Namespace) -> int:
    from smart.atomic import write_csv, write_json
    from smart.data.rater_consensus import consensus_for_table
    from smart.provenance import provenance

    if args.margin < 1:
        print(f"smart consensus: --margin must be >= 1, got {args.margin}", file=sys.stderr)
        return 2
    table, rejected = consensus_for_table(args.raters, args.out_dir, args.method, args.margin)
    write_csv(args.out_dir / "rejected.csv", rejected)
    write_csv(args.out_dir / "raters.csv", table)
    write_json(args.out_dir / "consensus.summary.json",
               {"input": str(args.raters), "method": args.method, "margin": args.margin, "cases": len(table),
                "rejected": len(rejected), "provenance": provenance()})
    for _, row in rejected.iterrows():
        print(f"smart consensus: rejected case {row['case_id']}: {row['file']}: {row['reason']}", file=sys.stderr)
    print(f"smart consensus: {len(table)} cases ({args.method}), {len(rejected)} rejected -> "
          f"{args.out_dir / 'raters.csv'}", file=sys.stderr)
    return 0 if len(table) else 1
