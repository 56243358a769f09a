"""Classification cohorts (LIDC nodules, treatment response, synthetic): the CSV contract and crop loading
(the torch ``Dataset`` is :mod:`smart.data.cohort_dataset`).

CSV contract (docs/ARCHITECTURE.md "Data contracts"): ``sample_id, patient_id, image, label`` plus free extra columns;
``label`` is 0/1; ``image`` is a NIfTI (or anything SimpleITK reads) crop in HU, absolute or relative to the CSV's
folder. Network input follows the shared intensity convention (``smart.data.intensity.hu_to_unit``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smart.data.intensity import hu_to_unit
from smart.data.io import table_path

REQUIRED_COLUMNS = ("sample_id", "patient_id", "image", "label")


def read_cohort(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a cohort CSV; ``image`` becomes an absolute path, ``label`` an int column.

    Errors name the file and the CSV line (header = line 1) of the offending row.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"cohort file not found: {path}")
    from smart.inputs import read_csv

    frame = read_csv(path, "cohort CSV", dtype={"sample_id": str, "patient_id": str, "image": str},
                     keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; required {list(REQUIRED_COLUMNS)}, found {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{path}: cohort has no rows")
    frame = _drop_unlabelled(frame, path)
    _require_images(frame, path)
    for column in ("sample_id", "patient_id"):
        empty = frame.index[frame[column].astype(str).str.strip() == ""]
        if len(empty):
            raise ValueError(f"{path}: line {empty[0] + 2}: empty {column}")
    duplicated = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate sample_id {duplicated.iloc[0]!r} (line {duplicated.index[0] + 2})")

    labels = pd.to_numeric(frame["label"].astype(str).str.strip(), errors="coerce")
    bad = frame.index[~labels.isin([0, 1])]
    if len(bad):
        raise ValueError(f"{path}: line {bad[0] + 2}: label {frame['label'].loc[bad[0]]!r} is not 0 or 1")
    frame["label"] = labels.astype(int)

    images = []
    for row, value in zip(frame.index, frame["image"]):
        image = table_path(value, path.parent)
        if not image.exists():
            raise FileNotFoundError(f"{path}: line {row + 2} (sample_id {frame['sample_id'].loc[row]!r}): image not found: {image}")
        images.append(str(image.resolve()))
    frame["image"] = images
    return frame.reset_index(drop=True)


def _drop_unlabelled(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Rows with an empty ``label`` are excluded nodules (``smart lidc-nodules --ambiguous exclude``, or no
    malignancy rating): they are dropped with a note on stderr rather than failing the whole cohort."""
    empty = frame["label"].astype(str).str.strip() == ""
    if not empty.any():
        return frame
    if empty.all():
        raise ValueError(f"{path}: all {len(frame)} rows have an empty label; nothing to train or evaluate on")
    print(f"note: {path}: dropped {int(empty.sum())} of {len(frame)} row(s) with an empty label "
          f"(excluded samples, e.g. `smart lidc-nodules --ambiguous exclude`)", file=sys.stderr)
    return frame[~empty]  # original index kept: error messages report CSV line = index + 2


def _require_images(frame: pd.DataFrame, path: Path) -> None:
    """An empty ``image`` means the crop was never cut (LIDC nodule table without DICOM): fail with the remedy."""
    empty = frame.index[frame["image"].astype(str).str.strip() == ""]
    if len(empty) == 0:
        return
    first = frame["sample_id"].loc[empty[0]]
    raise ValueError(
        f"{path}: {len(empty)} of {len(frame)} row(s) have no image (first: sample_id {first!r}). Crops are cut "
        f"from the CT images: for LIDC the DICOM must be present — rerun `smart lidc-nodules` with --dicom-root "
        f"PATH (or set [dicom] path in ~/.pylidcrc) and --crops-dir; for other cohorts fill the image column "
        f"(e.g. `smart cohort-crops`)."
    )


def center_pad_crop(volume: np.ndarray, size: Sequence[int], fill: float = 0.0) -> np.ndarray:
    """Centre-crop axes longer than ``size`` and pad shorter ones symmetrically with ``fill`` (extra voxel after)."""
    if len(size) != volume.ndim:
        raise ValueError(f"size {tuple(size)} does not match a {volume.ndim}-D volume of shape {volume.shape}")
    crop, pad = [], []
    for n, s in zip(volume.shape, size):
        start = max(n - s, 0) // 2
        crop.append(slice(start, start + min(n, s)))
        before = max(s - n, 0) // 2
        pad.append((before, max(s - n, 0) - before))
    return np.pad(volume[tuple(crop)], pad, mode="constant", constant_values=fill)


def load_crop(image_path: str | os.PathLike, crop_size: Sequence[int]) -> np.ndarray:
    """HU crop -> float32 (D, H, W) = (z, y, x) in [0, 1], centre padded (with air) / cropped to ``crop_size``."""
    return load_crop_checked(image_path, crop_size)[0]


def load_crop_checked(image_path: str | os.PathLike, crop_size: Sequence[int]) -> tuple[np.ndarray, bool]:
    """:func:`load_crop` and whether the stored crop is blank (one value in every voxel, judged before padding,
    :mod:`smart.data.blank`)."""
    from smart.data.blank import is_blank
    from smart.data.io import ImageReadError, read_array_zyx

    try:
        array = read_array_zyx(image_path)
    except ImageReadError as exc:
        raise ValueError(str(exc)) from exc
    return center_pad_crop(hu_to_unit(array), crop_size, fill=0.0), is_blank(array)  # 0 = -1000 HU = air
