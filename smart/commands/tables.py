"""``smart tables``: the paper's Tables I-VI (+ the limited-data and PDR-sweep figures, Figs. 6 and 10) from the
workflow's metrics files, each cell beside the paper's value; ``--readme`` / ``--check-readme`` render the README's
demo block from them."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("--results", required=True, help="results root (holds pretrain/, finetune/, probe/, cluster/)")
    parser.add_argument("--plan", required=True,
                        help="the workflow's plan.json (its plan_json rule writes it): the variants {name: {method, "
                             "set, label, tables, sa, heads}}, tasks {name: {label, title}} and table_tasks {numeral: "
                             "task} the tables read")
    parser.add_argument("--out", required=True, help="output folder: table{1..6}.{csv,md}, sources.json")
    parser.add_argument("--pdr-sweep", nargs="+", default=None, metavar="VARIANT",
                        help="also draw Fig. 10 (pdr_umaps.{csv,png}): the UMAPs of these variants, one panel each, "
                             "ordered and titled by the drop ratio of their resolved pretraining config")
    parser.add_argument("--readme", default=None, metavar="README.md",
                        help="also rewrite the README's demo-results block (between its markers) from these tables")
    parser.add_argument("--check-readme", default=None, metavar="README.md",
                        help="only compare the README's demo-results block with these tables (exit 1 if it differs)")


def main(args) -> int:
    from smart.eval.readme_tables import readme_block, render_block, update_readme
    from smart.eval.tables import write_tables

    try:
        sources = write_tables(args.results, args.plan, args.out, args.pdr_sweep)
        print(f"{len(sources)} tables -> {args.out}")
        block = render_block(args.results, args.out, args.plan) if args.readme or args.check_readme else ""
        current = {path: readme_block(path) for path in (args.readme, args.check_readme) if path}  # markers first
    except ValueError as err:
        print(f"smart tables: error: {err}", file=sys.stderr)
        return 2
    if block:
        if args.check_readme:
            if current[args.check_readme] != block:
                print(f"smart tables: {args.check_readme}: the demo-results block differs from what {args.results} "
                      f"renders; rerun with --readme {args.check_readme}", file=sys.stderr)
                return 1
            print(f"{args.check_readme}: demo-results block matches {args.results}")
        if args.readme:
            changed = update_readme(args.readme, block)
            print(f"{args.readme}: demo-results block {'rewritten' if changed else 'already up to date'}")
    return 0
