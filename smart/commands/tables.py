"""``smart tables``: the paper's Tables I-VI (+ limited-data figure) from the workflow's metrics files."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--results", required=True, help="results root (holds pretrain/, finetune/, probe/, cluster/)")
    parser.add_argument("--variants", required=True, help="variants.json: {name: {method, set, label, tables}}")
    parser.add_argument("--out", required=True, help="output folder: table{1..6}.{csv,md}, sources.json")


def main(args) -> int:
    from smart.eval.tables import write_tables

    sources = write_tables(args.results, args.variants, args.out)
    print(f"{len(sources)} tables -> {args.out}")
    return 0
