"""The resolved pretraining config of every method/ablation x preset, as a committed snapshot
(tests/config/resolved_main.json): the overlay refactor of issue 21 must leave every one of them identical.

Regenerate (only when a default is changed on purpose, and say so in the commit):
``python tests/resolved_configs.py > tests/config/resolved_main.json``.
The file holds the flat config of ``smart`` without a preset and, per ``method|preset``, only the keys that differ
from it, so a reader sees what each method and preset changes.
"""

from __future__ import annotations

import json
import sys

PRESETS_TRIED = (None, "tiny", "small", "paper")


def resolved_flat() -> dict[str, dict]:
    """``{"method|preset": flat resolved config}`` for every registered method and preset (None -> "defaults")."""
    from smart.config import flatten, load_config
    from smart.ssl.methods import method_names

    return {f"{m}|{p or 'defaults'}": flatten(load_config(m, p)) for m in method_names() for p in PRESETS_TRIED}


def snapshot() -> dict:
    flat = resolved_flat()
    base = flat["smart|defaults"]
    return {"base": base, "diffs": {name: {k: v for k, v in cfg.items() if base.get(k, object()) != v}
                                    for name, cfg in flat.items()}}


if __name__ == "__main__":
    json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
