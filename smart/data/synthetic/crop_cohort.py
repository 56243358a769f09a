"""The one writer of synthetic classification cohorts (nodules, treatment response): centred crops as NIfTI with JSON
sidecars under ``crops/`` and ``cohort.csv`` in the classification-cohort contract (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from smart import atomic
from smart.data.synthetic.nifti import write_volume


def write_crop_cohort(out_dir: str | os.PathLike, items: Iterable[tuple[Any, np.ndarray, dict]], *, generator: str,
                      seed: int, crop_size: int, spacing_mm: float) -> pd.DataFrame:
    """Write each ``(record, volume, extra_columns)`` of ``items`` and return the cohort frame.

    ``record`` is a dataclass with ``sample_id, patient_id, label`` (all its fields go into the sidecar);
    ``volume`` a ``crop_size``³ (D, H, W) HU array centred on the lesion, written with isotropic ``spacing_mm`` and
    its centre voxel at the origin; ``extra_columns`` are appended to the row after the contract columns.
    ``items`` may be a generator, so volumes are rendered one at a time.
    """
    out_dir = Path(out_dir)
    origin = (-(crop_size - 1) * spacing_mm / 2,) * 3
    rows = []
    for record, volume, extra in items:
        image = Path("crops") / f"{record.sample_id}.nii.gz"
        meta = {**asdict(record), "generator": generator, "seed": seed, "spacing_mm": spacing_mm}
        write_volume(out_dir / image, volume, (spacing_mm,) * 3, origin, metadata=meta)
        rows.append({"sample_id": record.sample_id, "patient_id": record.patient_id, "image": image.as_posix(),
                     "label": record.label, **extra})
    frame = pd.DataFrame(rows)
    atomic.write_csv(out_dir / "cohort.csv", frame)
    return frame
