"""``smart segmentation-table``: Dice per structure per variant (CSV + Markdown) from segmentation metrics files."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", help="results/segmentation/<variant>/metrics.json files (row order)")
    parser.add_argument("--plan", default=None,
                        help="the workflow's plan.json: its variants' labels fill the Variant column (default: the "
                             "variant names)")
    parser.add_argument("--out-csv", required=True, help="table CSV to write")
    parser.add_argument("--out-md", required=True, help="table Markdown to write")


def main(args: argparse.Namespace) -> int:
    from smart import atomic
    from smart.eval.segmentation_table import dice_table
    from smart.eval.tables import load_plan, to_markdown

    try:
        labels = {v: spec.get("label", v) for v, spec in load_plan(args.plan)[0].items()} if args.plan else {}
        table = dice_table(args.metrics, labels)
    except ValueError as exc:
        print(f"smart segmentation-table: error: {exc}", file=sys.stderr)
        return 2
    atomic.write_csv(args.out_csv, table.drop(columns=["variant"]))
    atomic.write_text(args.out_md, to_markdown(table, "Segmentation fine-tune: test Dice per structure (SwinUNETR)"))
    print(f"smart segmentation-table: {len(table)} rows -> {args.out_csv}, {args.out_md}")
    return 0
