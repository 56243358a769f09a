"""Lesion-centred crops from full CTs (treatment-response cohort, paper Sec. IV-A Task 3; any lesion cohort).

Input table (CSV): ``sample_id, patient_id, image, label`` and either ``mask`` (a tumour mask; the crop centre is the
mask's centroid in world mm) or ``center_x, center_y, center_z`` (world mm in SimpleITK's LPS patient frame).
``image`` is a full CT (NIfTI/NRRD/MHA or a DICOM series folder, read by :func:`smart.data.io.read_image`); relative
paths are resolved against the CSV's folder. ``label`` is 0/1 or ``DCB``/``NDB`` (durable clinical benefit = 1).

Each CT is read and resampled once (:func:`smart.data.resample.resample_image`), however many lesions it has; the
crop around the world point is :func:`smart.data.lidc.crop_nodule` — the same code and the same crop rule as the
LIDC crops (:mod:`smart.data.crop_window`). A bad row (unreadable CT, empty mask, bad label, missing centre, a crop
that holds no image) goes to the rejected list with its reason; the others are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from smart.data.blank import is_blank
from smart.data.cohort import REQUIRED_COLUMNS
from smart.data.crop_window import MIN_IN_IMAGE_FRACTION, CropHoldsNoImage
from smart.data.io import table_path
from smart.data.lidc import DEFAULT_CROP_SIZE, DEFAULT_CROP_SPACING, crop_nodule

CENTER_COLUMNS = ("center_x", "center_y", "center_z")
LABEL_NAMES = {"DCB": 1, "NDB": 0}  # durable clinical benefit / no durable benefit
REJECTED_COLUMNS = ("sample_id", "file", "reason")


class LesionRowError(ValueError):
    """One input row that cannot give a crop; ``reason`` goes into ``rejected.csv``."""

    def __init__(self, file: str, reason: str) -> None:
        self.file, self.reason = file, reason
        super().__init__(f"{file}: {reason}")


def parse_label(value: object) -> int:
    """0/1 (also "0.0"/"1.0") or DCB/NDB (case-insensitive) -> int; anything else raises ValueError naming it."""
    text = str(value).strip()
    if text.upper() in LABEL_NAMES:
        return LABEL_NAMES[text.upper()]
    try:
        number = float(text)
    except ValueError:
        number = None
    if number in (0.0, 1.0):
        return int(number)
    raise ValueError(f"label {value!r} is not 0/1 or one of {sorted(LABEL_NAMES)}")


def read_lesion_table(csv_path: str | os.PathLike) -> pd.DataFrame:
    """The input CSV with its columns checked (not its rows: bad rows are rejected one by one later)."""
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"lesion table not found: {path}")
    from smart.inputs import read_csv

    frame = read_csv(path, "lesion table", dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; required {list(REQUIRED_COLUMNS)}, "
                         f"found {list(frame.columns)}")
    has_mask = "mask" in frame.columns
    has_center = all(c in frame.columns for c in CENTER_COLUMNS)
    if not (has_mask or has_center):
        raise ValueError(f"{path}: needs a 'mask' column or all of {list(CENTER_COLUMNS)} to place the crops; "
                         f"found {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    duplicated = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate sample_id {duplicated.iloc[0]!r} (line {duplicated.index[0] + 2})")
    return frame


def mask_centroid_mm(mask: sitk.Image) -> tuple[float, float, float]:
    """World (x, y, z) mm of the mean position of the mask's non-zero voxels (continuous-index mean, mapped through
    the mask's own origin/spacing/direction, so the mask need not share the CT's grid)."""
    zyx = np.argwhere(sitk.GetArrayViewFromImage(mask) != 0)
    if len(zyx) == 0:
        raise ValueError("mask is empty (no non-zero voxel)")
    index_xyz = zyx.mean(axis=0)[::-1]
    return tuple(float(v) for v in mask.TransformContinuousIndexToPhysicalPoint(tuple(float(i) for i in index_xyz)))


def _row_center(row: pd.Series, base: Path, image: sitk.Image, image_path: Path) -> tuple[float, float, float]:
    """The crop centre: the mask's centroid (world mm, from the mask's own geometry) after checking that the mask
    overlaps its CT in physical space, or the row's centre columns."""
    from smart.data.io import ImageReadError
    from smart.data.masks import mask_on_grid, read_mask

    mask_value = str(row.get("mask", "")).strip()
    if mask_value:
        mask_path = table_path(mask_value, base)
        if not mask_path.is_file():
            raise LesionRowError(str(mask_path), "mask file not found")
        try:
            mask = read_mask(mask_path)
            mask_on_grid(mask, image, mask_name=mask_path, reference_name=f"CT {image_path}")
        except ImageReadError as err:
            raise LesionRowError(err.path, err.reason) from None
        try:
            return mask_centroid_mm(mask)
        except ValueError as err:
            raise LesionRowError(str(mask_path), str(err)) from None
    values = [str(row.get(c, "")).strip() for c in CENTER_COLUMNS]
    try:
        center = tuple(float(v) for v in values)
    except ValueError:
        center = None
    if center is None or not np.all(np.isfinite(center)):
        raise LesionRowError(str(row["image"]), f"no mask and no finite centre ({dict(zip(CENTER_COLUMNS, values))})")
    return center


def cut_lesion_crops(frame: pd.DataFrame, csv_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     crop_size: int = DEFAULT_CROP_SIZE,
                     spacing: float = DEFAULT_CROP_SPACING,
                     min_in_image: float = MIN_IN_IMAGE_FRACTION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``out_dir/crops/{sample_id}.nii.gz`` per good row; return ``(cohort, rejected)`` frames.

    ``cohort`` follows the classification-cohort contract (``image`` relative to ``out_dir``, ``label`` int) plus
    ``crop_center_{x,y,z}_mm``, ``source_image`` and ``blank`` (one value in every voxel: kept, counted,
    :mod:`smart.data.blank`); ``rejected`` has ``sample_id, file, reason``.
    """
    from smart.atomic import atomic_path
    from smart.data.io import ImageReadError, read_image
    from smart.data.resample import resample_image

    if not isinstance(crop_size, (int, np.integer)) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer (voxels), got {crop_size!r}")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0 mm, got {spacing!r}")
    base, out_dir = Path(csv_dir), Path(out_dir)
    kept, rejected = [], []
    resampled: dict[Path, sitk.Image | LesionRowError] = {}  # one read + resample per CT, errors remembered too
    for _, row in frame.iterrows():
        sample = str(row["sample_id"]).strip()
        try:
            if not sample:
                raise LesionRowError(str(row["image"]), "empty sample_id")
            try:
                label = parse_label(row["label"])
            except ValueError as err:
                raise LesionRowError(str(row["image"]), str(err)) from None
            image_path = table_path(row["image"], base)
            if image_path not in resampled:
                try:
                    resampled[image_path] = resample_image(read_image(image_path), spacing)
                except ImageReadError as err:
                    resampled[image_path] = LesionRowError(str(image_path), err.reason)
            image = resampled[image_path]
            if isinstance(image, LesionRowError):
                raise image
            center = _row_center(row, base, image, image_path)
            try:
                crop = crop_nodule(image, center, int(crop_size), min_in_image)
            except CropHoldsNoImage as err:
                raise LesionRowError(str(image_path), f"no image: {err.reason}") from None
        except LesionRowError as err:
            rejected.append({"sample_id": sample, "file": err.file, "reason": err.reason})
            continue
        crop_path = out_dir / "crops" / f"{sample}.nii.gz"
        with atomic_path(crop_path) as tmp:
            sitk.WriteImage(crop, str(tmp), True)
        blank = is_blank(sitk.GetArrayViewFromImage(crop))
        extra = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS}
        kept.append({"sample_id": sample, "patient_id": str(row["patient_id"]).strip(),
                     "image": os.path.relpath(crop_path, out_dir), "label": label, **extra,
                     "source_image": str(image_path), "blank": blank,
                     "crop_center_x_mm": center[0], "crop_center_y_mm": center[1], "crop_center_z_mm": center[2]})
    cohort = pd.DataFrame(kept, columns=None if kept else list(REQUIRED_COLUMNS))
    return cohort, pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))

