"""The one `main` of the glue scripts that turn a config mapping (passed by a rule as a JSON string) into a checked
JSON record under results/ (write_variants: variants.json, write_tasks: tasks.json)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from smart.atomic import write_json


def write_record(argv: list[str] | None, description: str, name: str,
                 record: Callable[[Any], dict[str, Any]]) -> int:
    """Parse ``--out FILE --<name> JSON``, build ``record(parsed JSON)`` (which raises ``ValueError`` on bad input),
    write it atomically and print one line; a bad mapping prints one ``error:`` line and returns 1. A JSON syntax error
    exits with argparse's usage error."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help=f"{name}.json to write")
    parser.add_argument(f"--{name}", required=True, help=f"the config's {name} mapping as a JSON string")
    args = parser.parse_args(argv)
    try:
        data = json.loads(getattr(args, name))
    except json.JSONDecodeError as err:
        parser.error(f"--{name} is not valid JSON: {err}")
    try:
        out = record(data)
    except ValueError as err:  # one line naming the problem, as every smart step reports bad input
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_json(args.out, out)
    print(f"wrote {name} ({len(out)} entries) to {args.out}")
    return 0
