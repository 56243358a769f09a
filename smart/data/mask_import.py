"""``smart import-masks``: RTSTRUCT ROIs and SEG segments of a DICOM tree -> NIfTI masks on their CT grids + tables.

The 5-rater lung-tumour set of the paper's zero-shot evaluation (Sec. V-E) is published as DICOM CT series with one
RTSTRUCT or SEG per rater. This module walks such a tree, pairs every RTSTRUCT/SEG with the CT series it references
(by SeriesInstanceUID, wherever the series lies in the tree), converts the one ROI/segment that matches the requested
name (exact) or pattern (regular expression, full match, case-insensitive) to a binary mask on that CT's grid, and
writes:

* ``masks/{case_id}/{rater}.nii.gz`` — uint8 0/1, same size/origin/spacing/direction as the CT as
  :func:`smart.data.io.read_image` reads it;
* ``masks.csv`` — one row per (case, rater): ``case_id, rater, rater_column, mask, image, series_uid, source, kind,
  roi, n_voxels, volume_ml``;
* ``raters.csv`` — one row per case: ``case_id, image, series_uid, rater1..raterN`` (raters in sorted name order; the
  mapping is ``masks.csv``'s ``rater_column``), the input of ``smart consensus`` and ``smart zeroshot``;
* ``rejected.csv`` — ``file, reason`` for every RTSTRUCT/SEG that gave no mask (ROI missing or ambiguous, CT series
  not in the tree, contours off the slices, duplicate (case, rater), damaged file).

``case_id`` is the PatientID (characters outside ``[A-Za-z0-9._-]`` become ``_``), suffixed with the end of the CT's
SeriesInstanceUID when one patient has masks on several CT series. The rater is the mask file's DICOM attribute
``rater_tag`` (default SeriesDescription), or the file name when that is empty.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from smart.inputs import InputFileError

__all__ = ["MaskSource", "scan_dicom_tree", "import_masks"]

MASK_COLUMNS = ["case_id", "rater", "rater_column", "mask", "image", "series_uid", "source", "kind", "roi",
                "n_voxels", "volume_ml"]
REJECTED_COLUMNS = ["file", "reason"]


@dataclass(frozen=True)
class MaskSource:
    """One RTSTRUCT or SEG file found in the tree (header fields only)."""

    path: Path
    kind: str  # "RTSTRUCT" | "SEG"
    patient_id: str
    rater: str


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text.strip()) or "unnamed"


def scan_dicom_tree(root: str | os.PathLike, rater_tag: str = "SeriesDescription"
                    ) -> tuple[dict[str, set[Path]], list[MaskSource]]:
    """Headers of every file under ``root`` (hidden entries skipped): ``(CT series UID -> folders, mask sources)``.
    Files that are not DICOM, and other modalities, are ignored."""
    import pydicom

    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "DICOM root folder not found")
    series: dict[str, set[Path]] = defaultdict(set)
    sources = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # not DICOM (notes, NIfTI, ...) or a damaged file of no interest here
                continue
            modality = str(ds.get("Modality", "")).upper()
            if modality == "CT" and "SeriesInstanceUID" in ds:
                series[str(ds.SeriesInstanceUID)].add(path.parent)
            elif modality in ("RTSTRUCT", "SEG"):
                rater = str(ds.get(rater_tag, "") or "").strip() or path.stem
                sources.append(MaskSource(path=path, kind=modality, patient_id=str(ds.get("PatientID", "")).strip(),
                                          rater=_safe(rater)))
    return dict(series), sources


def _mask_for(source: MaskSource, ct_for, *, roi: str | None, roi_pattern: str | None
              ) -> tuple[np.ndarray, sitk.Image, str, str, Path]:
    """``(mask zyx, CT image, series UID, ROI/segment label, CT folder)`` of one RTSTRUCT/SEG file."""
    from smart.data.masks import mask_on_grid

    if source.kind == "RTSTRUCT":
        from smart.data.rtstruct import rasterise_contours, read_rtstruct, referenced_series_uid, select_rois

        ds = read_rtstruct(source.path)
        uid = referenced_series_uid(ds, source.path)
        chosen = select_rois(ds, source.path, name=roi, pattern=roi_pattern)
        ct, folder = ct_for(uid, source.path)
        # ROIs sharing the name are pieces of one structure: each rasterised on its own, then united
        mask = np.logical_or.reduce([rasterise_contours(piece.contours, ct, source.path) for piece in chosen])
        label = chosen[0].name
        if not mask.any():
            raise InputFileError(source.path, f"ROI {label!r}: the contours enclose no voxel centre of the CT")
    else:
        from smart.data.dicom_seg import read_seg, seg_referenced_series_uid, segment_image, select_segments

        seg = read_seg(source.path)
        uid = seg_referenced_series_uid(seg, source.path)
        numbers, label = select_segments(seg, source.path, name=roi, pattern=roi_pattern)
        ct, folder = ct_for(uid, source.path)
        mask = mask_on_grid(segment_image(seg, numbers, source.path), ct, mask_name=source.path,
                            reference_name=f"CT series {uid}")
        if not mask.any():
            raise InputFileError(source.path, f"segment {label!r} is empty")
    return mask, ct, uid, label, folder


def import_masks(root: str | os.PathLike, out_dir: str | os.PathLike, *, roi: str | None = None,
                 roi_pattern: str | None = None, rater_tag: str = "SeriesDescription"
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Convert the tree under ``root`` (module notes); returns ``(masks, raters, rejected)`` frames and writes the
    mask files (atomically). The tables are written by the caller. Raises ValueError unless exactly one of ``roi``
    and ``roi_pattern`` is given (or when ``roi_pattern`` is not a valid regular expression)."""
    from smart.atomic import atomic_path
    from smart.data.io import read_image

    if (roi is None) == (roi_pattern is None):
        raise ValueError("give exactly one of --roi NAME and --roi-pattern REGEX")
    if roi_pattern is not None:
        try:
            re.compile(roi_pattern)
        except re.error as err:
            raise ValueError(f"--roi-pattern {roi_pattern!r} is not a regular expression ({err})") from None
    out_dir = Path(out_dir)
    series, sources = scan_dicom_tree(root, rater_tag)
    rejected: list[dict] = []
    cts: dict[str, tuple[sitk.Image, Path] | InputFileError] = {}

    def ct_for(uid: str, path: Path) -> tuple[sitk.Image, Path]:
        if uid not in cts:
            folders = sorted(series.get(uid, ()))
            if not folders:
                cts[uid] = InputFileError(path, f"the referenced CT series {uid} is not under {root}")
            elif len(folders) > 1:
                cts[uid] = InputFileError(path, f"the referenced CT series {uid} is split over "
                                                f"{len(folders)} folders ({', '.join(map(str, folders))})")
            else:
                try:
                    cts[uid] = (read_image(folders[0], series_uid=uid), folders[0])
                except InputFileError as err:
                    cts[uid] = InputFileError(err.path, f"referenced CT series {uid}: {err.reason}")
        found = cts[uid]
        if isinstance(found, InputFileError):
            raise found
        return found

    converted = []
    for source in sorted(sources, key=lambda s: os.fspath(s.path)):
        try:
            mask, ct, uid, label, folder = _mask_for(source, ct_for, roi=roi, roi_pattern=roi_pattern)
        except InputFileError as err:
            rejected.append({"file": err.path, "reason": err.reason})
            continue
        converted.append((source, mask, ct, uid, label, folder))

    # case ids: the patient, made unique per CT series when one patient has masks on several
    series_of_patient = defaultdict(set)
    for source, _, _, uid, _, _ in converted:
        series_of_patient[source.patient_id].add(uid)
    rows, taken = [], {}
    for source, mask, ct, uid, label, folder in converted:
        case = _safe(source.patient_id or source.path.parent.name)
        if len(series_of_patient[source.patient_id]) > 1:
            case = f"{case}_{_safe(uid.split('.')[-1])}"
        key = (case, source.rater)
        if key in taken:
            rejected.append({"file": os.fspath(source.path),
                             "reason": f"duplicate rater {source.rater!r} for case {case!r} (already taken by "
                                       f"{taken[key]}); set --rater-tag to an attribute that tells them apart"})
            continue
        taken[key] = os.fspath(source.path)
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.CopyInformation(ct)
        dest = out_dir / "masks" / case / f"{source.rater}.nii.gz"
        with atomic_path(dest) as tmp:
            sitk.WriteImage(image, os.fspath(tmp), useCompression=True)
        voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
        rows.append({"case_id": case, "rater": source.rater, "mask": os.path.relpath(dest, out_dir),
                     "image": os.fspath(folder.resolve()), "series_uid": uid, "source": os.fspath(source.path),
                     "kind": source.kind, "roi": label, "n_voxels": int(mask.sum()),
                     "volume_ml": round(int(mask.sum()) * voxel_ml, 6)})
    masks = pd.DataFrame(rows, columns=[c for c in MASK_COLUMNS if c != "rater_column"])
    names = sorted(masks["rater"].unique())
    masks.insert(2, "rater_column", masks["rater"].map({n: f"rater{i + 1}" for i, n in enumerate(names)}))
    wide = []
    for case, group in masks.groupby("case_id", sort=True):
        row = {"case_id": case, "image": group["image"].iloc[0], "series_uid": group["series_uid"].iloc[0]}
        row.update(dict(zip(group["rater_column"], group["mask"])))
        wide.append(row)
    rater_columns = [f"rater{i + 1}" for i in range(len(names))]
    raters = pd.DataFrame(wide, columns=["case_id", "image", "series_uid"] + rater_columns)
    return masks, raters, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
