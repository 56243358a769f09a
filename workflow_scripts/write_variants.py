"""Write the config's `variants:` mapping as results/tables/variants.json (ARCHITECTURE "Result paths").

Called by the `variants_json` rule. Each entry is normalised to method, set, label, tables, sa and heads (the
fine-tuning heads actually run, `smart.workflow.variants.variants_record`), so `smart tables` can find the
`{variant}__{head}` folders.
"""

from __future__ import annotations

import sys

from smart.workflow.variants import variants_record
from workflow_scripts.json_record import write_record


def main(argv: list[str] | None = None) -> int:
    return write_record(argv, __doc__.splitlines()[0], "variants", variants_record)


if __name__ == "__main__":
    sys.exit(main())
