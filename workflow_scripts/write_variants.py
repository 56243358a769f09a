"""Write the config's `variants:` mapping as results/tables/variants.json (ARCHITECTURE "Result paths").

Called by the `variants_json` rule. Each entry is normalised to method, set, label, tables, sa and heads (the
fine-tuning heads actually run), so `smart tables` can find the `{variant}__{head}` folders.
"""

from __future__ import annotations

import sys
from typing import Any

from workflow_scripts.json_record import write_record


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
    return write_record(argv, __doc__.splitlines()[0], "variants", variants_record)


if __name__ == "__main__":
    sys.exit(main())
