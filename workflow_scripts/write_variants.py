"""Write the config's `variants:` mapping as results/tables/variants.json (ARCHITECTURE "Result paths").

Called by the `variants_json` rule. Each entry is normalised to method, set, label, tables, sa and heads (the
fine-tuning heads actually run), so `smart tables` can find the `{variant}__{head}` folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from smart.atomic import write_json


def variants_record(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Normalise every variant to the full key set, with defaults made explicit."""
    out = {}
    for name, spec in variants.items():
        if not isinstance(spec, dict) or "method" not in spec:
            raise ValueError(f"variant {name!r}: expected a mapping with a 'method', got {spec!r}")
        sa = bool(spec.get("sa", True))
        out[name] = {
            "method": spec["method"],
            "set": dict(spec.get("set") or {}),
            "label": spec.get("label", name),
            "tables": list(spec.get("tables") or []),
            "sa": sa,
            "heads": list(spec.get("heads") or (["cls"] if sa else ["pooled"])),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="variants.json to write")
    parser.add_argument("--variants", required=True, help="the variants mapping as a JSON string")
    args = parser.parse_args(argv)
    try:
        variants = json.loads(args.variants)
    except json.JSONDecodeError as err:
        parser.error(f"--variants is not valid JSON: {err}")
    record = variants_record(variants)
    write_json(args.out, record)
    print(f"wrote {len(record)} variants to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
