"""Dice per structure per variant from segmentation ``metrics.json`` files (``smart segmentation-table``).

One row per run, in the order given: the variant (the run folder's name), its label, the initialisation (encoder
weights file or scratch), test Dice per structure (mean over the test cases that contain the structure; ``n/a`` when
none does), their mean, and the validation-selected step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def dice_table(metrics_files: Sequence[str | os.PathLike], labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The table (strings, 3 decimals). Raises ``ValueError`` naming a file that is missing, not a segmentation
    record, or whose structures differ from the first file's."""
    rows, structures = [], None
    for path in map(Path, metrics_files):
        if not path.is_file():
            raise ValueError(f"segmentation metrics file {path} does not exist")
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("kind") != "segmentation":
            raise ValueError(f"{path}: not a segmentation metrics file (kind {record.get('kind')!r})")
        if structures is None:
            structures = list(record["structures"])
        elif list(record["structures"]) != structures:
            raise ValueError(f"{path}: structures {record['structures']} differ from {structures} of the first file")
        variant = path.parent.name
        dice = record["test"]["dice"]
        rows.append({"variant": variant, "Variant": (labels or {}).get(variant, variant),
                     "Init": "scratch" if record["weights"] == "none" else "pretrained (load_from)",
                     **{name: _cell(dice[name]) for name in structures},
                     "Mean": _cell(record["test"]["dice_mean"]), "Test cases": record["test"]["n"],
                     "Selected step": record["val"]["selected_step"]})
    return pd.DataFrame(rows)
