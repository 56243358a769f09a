"""Image/label NIfTI pairs listed in a CSV: the input of the segmentation fine-tune (docs/evaluation.md
"Segmentation fine-tune").

CSV columns: ``case_id``, ``image``, ``label``, ``split`` (``train`` | ``val`` | ``test``); paths relative to the CSV's
folder (absolute paths work too). Any format SimpleITK reads (NIfTI, NRRD, MHA, a DICOM series folder for the image).
Each pair must share its grid (size, spacing, origin, direction within 1e-3); both are resampled to ``spacing`` mm
(image linear in HU, label nearest) unless ``spacing`` is None. Label values must lie in ``0..n_structures``.
Volumes are returned as network input: ``(z, y, x)`` float32 in ``[0, 1]`` (``hu_to_unit``) and int64 labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from smart.data.intensity import hu_to_unit
from smart.data.io import read_image
from smart.data.resample import resample_image
from smart.data.validation import ImageReadError

COLUMNS = ("case_id", "image", "label", "split")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelledVolume:
    """One case: ``image`` float32 ``(D, H, W)`` in [0, 1]; ``label`` int64 ``(D, H, W)``."""

    case_id: str
    image: np.ndarray
    label: np.ndarray


def read_labelled_csv(csv: str | os.PathLike) -> pd.DataFrame:
    """The CSV with ``image``/``label`` resolved to absolute paths; ``ValueError`` naming the file on a missing
    column, a bad split name, a duplicate case, an empty split or a missing file."""
    csv = Path(csv)
    if not csv.is_file():
        raise ValueError(f"segmentation CSV {csv} does not exist")
    frame = pd.read_csv(csv, dtype=str)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {missing}; expected {list(COLUMNS)}")
    bad = sorted(set(frame["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"{csv}: unknown split value(s) {bad}; use {list(SPLITS)}")
    dup = sorted(frame["case_id"][frame["case_id"].duplicated()])
    if dup:
        raise ValueError(f"{csv}: duplicate case_id(s) {dup[:5]}")
    empty = [s for s in SPLITS if not (frame["split"] == s).any()]
    if empty:
        raise ValueError(f"{csv}: no case in split(s) {empty} (train, val and test each need >= 1)")
    for column in ("image", "label"):
        frame[column] = [str(p if Path(p).is_absolute() else csv.parent / p) for p in frame[column]]
        absent = [p for p in frame[column] if not Path(p).exists()]
        if absent:
            raise ValueError(f"{csv}: {len(absent)} {column} path(s) do not exist, e.g. {absent[0]}")
    return frame


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-3)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-3))


def load_pair(case_id: str, image_path: str, label_path: str, n_structures: int,
              spacing: float | None = 2.0) -> LabelledVolume:
    """Read, check and resample one image/label pair (see module docstring)."""
    try:
        image = read_image(image_path)
        label = read_image(label_path, require_ct=False)
    except ImageReadError as err:
        raise ValueError(str(err)) from None
    if not _same_grid(image, label):
        raise ValueError(f"{label_path}: label grid (size {label.GetSize()}, spacing {label.GetSpacing()}) differs "
                         f"from its image {image_path} (size {image.GetSize()}, spacing {image.GetSpacing()})")
    if spacing is not None:
        image = resample_image(image, spacing, "linear", pixel_type=sitk.sitkFloat32)
        label = resample_image(label, spacing, "nearest")
    values = sitk.GetArrayFromImage(label)
    if values.min() < 0 or values.max() > n_structures or not np.array_equal(values, np.round(values)):
        raise ValueError(f"{label_path}: label values must be integers 0..{n_structures} (one per structure), found "
                         f"{sorted(np.unique(values).tolist())[:12]}")
    return LabelledVolume(case_id, hu_to_unit(sitk.GetArrayFromImage(image)), values.astype(np.int64))


def load_split(frame: pd.DataFrame, split: str, n_structures: int, spacing: float | None = 2.0) -> list[LabelledVolume]:
    """Every case of ``split`` in CSV order."""
    rows = frame[frame["split"] == split]
    return [load_pair(str(r.case_id), r.image, r.label, n_structures, spacing) for r in rows.itertuples()]
