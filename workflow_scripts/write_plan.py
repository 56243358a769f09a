"""Write the workflow's resolved plan (``smart.workflow.plan.Plan``) as results/plan.json (ARCHITECTURE "Result
paths"), the one file `smart tables` reads for the variants, tasks and the task of each paper table.

Called by the `plan_json` rule with the plan the Snakemake process resolved before any job (rules/common.smk
`plan_json_arg`), so nothing is resolved twice. Imports no torch: the plan is checked field by field by
``Plan.from_dict`` and written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys

from smart.atomic import write_json
from smart.workflow.plan import Plan


def main(argv: list[str] | None = None) -> int:
    """``--out FILE --plan JSON``: one line on success; a malformed plan prints one ``error:`` line and returns 1, a
    JSON syntax error exits with argparse's usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="plan.json to write")
    parser.add_argument("--plan", required=True, help="the resolved plan as a JSON string (Plan.to_dict)")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.plan)
    except json.JSONDecodeError as err:
        parser.error(f"--plan is not valid JSON: {err}")
    try:
        plan = Plan.from_dict(data, "--plan")
    except ValueError as err:  # one line naming the problem, as every smart step reports bad input
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_json(args.out, plan.to_dict())
    print(f"wrote the plan ({len(plan.variants)} variants, {len(plan.tasks)} tasks) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
