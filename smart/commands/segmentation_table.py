"""``smart segmentation-table``: Dice per structure per variant (CSV + Markdown) from segmentation metrics files."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", help="results/segmentation/<variant>/metrics.json files (row order)")
    parser.add_argument("--labels", default="{}", help="JSON {variant: label} for the Variant column")
    parser.add_argument("--out-csv", required=True, help="table CSV to write")
    parser.add_argument("--out-md", required=True, help="table Markdown to write")


def main(args: argparse.Namespace) -> int:
    from smart import atomic
    from smart.eval.segmentation_table import dice_table
    from smart.eval.tables import to_markdown

    try:
        table = dice_table(args.metrics, json.loads(args.labels))
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"smart segmentation-table: error: {exc}", file=sys.stderr)
        return 2
    atomic.write_csv(args.out_csv, table.drop(columns=["variant"]))
    atomic.write_text(args.out_md, to_markdown(table, "Segmentation fine-tune: test Dice per structure (SwinUNETR)"))
    print(f"smart segmentation-table: {len(table)} rows -> {args.out_csv}, {args.out_md}")
    return 0
