"""``smart plan --configfile X [TARGET ...] [--json OUT]``: per GPU rule of the planned DAG, jobs, GPUs, card and its
memory, predicted peak GPU memory, fits, GPU-hours and runtime lengths, and the disk the run needs
(:mod:`smart.resources.plan`). Runs ``snakemake -n`` in ``--directory`` (default: here, the repository root).
Exit status 1 when a rule does not fit its card (the workflow itself refuses such a config before any job)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", help="workflow targets (default: the workflow's `all`)")
    parser.add_argument("--configfile", nargs="+", required=True, help="workflow config file(s), as for snakemake")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the plan as JSON here (atomically)")
    parser.add_argument("--directory", default=".", help="the workflow folder (holding the Snakefile)")
    parser.add_argument("--samples", nargs="+", default=[], metavar="KEY=N",
                        help="data sizes for the GPU-hour projection (cts, lidc, response, organmnist, raters); "
                             "default: the paper's")


def _samples(items: list[str]) -> dict[str, int]:
    from smart.resources.plan import PAPER_SAMPLES

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in PAPER_SAMPLES or not value.isdigit() or int(value) < 1:
            raise ValueError(f"--samples {item!r}: expected KEY=N with KEY one of {sorted(PAPER_SAMPLES)} and N >= 1")
        out[key] = int(value)
    return out


def main(args: argparse.Namespace) -> int:
    from smart.resources.plan import dry_run, make_plan, profile_retries, render

    samples = _samples(args.samples)
    counts, config = dry_run(args.configfile, args.targets, args.directory)
    plan = make_plan(config, counts, samples, profile_retries(args.directory))
    print(render(plan))
    if args.json:
        from smart.atomic import write_json

        write_json(args.json, plan)
    return 0 if all(r["fits"] for r in plan["rules"].values()) else 1
