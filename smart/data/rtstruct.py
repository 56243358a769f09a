"""DICOM RT Structure Set (RTSTRUCT) ROIs -> binary masks on the referenced CT's grid (docs/data_preparation.md).

Read with pydicom 3 (already a dependency); rasterised here rather than with a converter library because the ones on
PyPI do not fit (checked 2026-11): platipy 0.7.2 pins ``pydicom<3`` and ``pandas<3``; rt-utils 1.2.7 rounds every
contour vertex to an integer pixel before filling (a systematic area bias of about half the perimeter), finds a
contour's slice only through the optional ContourImageSequence, and needs the GUI build of OpenCV; dcmrtstruct2nii
breaks on pydicom >= 3.

Rasterisation, in the CT's physical space: every ``CLOSED_PLANAR`` contour's points (LPS mm) are mapped through the
CT's inverse index-to-physical transform to continuous indices; the contour must lie in one slice plane of the CT
(its slice index is the nearest integer; a contour tilted against the slices or lying between two slices by more
than a quarter of the slice gap is rejected). Pixels whose centre lies inside the polygon are set
(``skimage.draw.polygon``, vertices kept continuous). Several contours in one slice combine by exclusive-or, so a
contour drawn inside another is a hole — the DICOM convention for holes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from smart.inputs import InputFileError

__all__ = ["RoiContours", "read_rtstruct", "select_roi", "rasterise_contours", "referenced_series_uid"]

# A contour may sit this far (in slices) from the nearest CT slice centre: converters round positions to 0.01 mm,
# while a contour from another reconstruction lies a whole fraction of a slice off.
SLICE_TOLERANCE = 0.25


@dataclass(frozen=True)
class RoiContours:
    """One ROI of a structure set: its number, name and closed planar contours (each (N, 3) LPS mm)."""

    number: int
    name: str
    contours: tuple[np.ndarray, ...]


def read_rtstruct(path: str | os.PathLike):
    """The RTSTRUCT dataset; :class:`InputFileError` naming the file when it is unreadable or not an RTSTRUCT."""
    import pydicom

    try:
        ds = pydicom.dcmread(os.fspath(path))
    except Exception as err:  # pydicom raises InvalidDicomError, EOFError, struct errors, ... for damaged files
        raise InputFileError(path, f"unreadable DICOM file ({type(err).__name__}: {err})") from None
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise InputFileError(path, f"modality {ds.get('Modality', '')!r} is not RTSTRUCT")
    return ds


def referenced_series_uid(ds, path: str | os.PathLike = "RTSTRUCT") -> str:
    """SeriesInstanceUID of the image series the structure set was drawn on (Referenced Frame of Reference ->
    RT Referenced Study -> RT Referenced Series); exactly one series must be referenced."""
    uids = sorted({str(series.SeriesInstanceUID)
                   for frame in ds.get("ReferencedFrameOfReferenceSequence", [])
                   for study in frame.get("RTReferencedStudySequence", [])
                   for series in study.get("RTReferencedSeriesSequence", [])})
    if len(uids) != 1:
        raise InputFileError(path, f"references {len(uids)} image series ({', '.join(uids) or 'none'}); "
                                   f"exactly one is needed to place the contours")
    return uids[0]


def select_roi(ds, path: str | os.PathLike, *, name: str | None = None, pattern: str | None = None) -> RoiContours:
    """The one ROI named exactly ``name`` or fully matching the regular expression ``pattern`` (case-insensitive).

    Raises :class:`InputFileError` naming the file and the ROIs it holds when none or several match (no silent
    choice), or when the ROI has no closed planar contour.
    """
    if (name is None) == (pattern is None):
        raise ValueError("give exactly one of name and pattern")
    names = {int(roi.ROINumber): str(roi.ROIName) for roi in ds.get("StructureSetROISequence", [])}
    if name is not None:
        matches = [n for n, roi in names.items() if roi == name]
        wanted = f"named {name!r}"
    else:
        regex = re.compile(pattern, re.IGNORECASE)
        matches = [n for n, roi in names.items() if regex.fullmatch(roi)]
        wanted = f"matching /{pattern}/"
    if len(matches) != 1:
        listed = ", ".join(repr(v) for v in names.values()) or "none"
        what = "no ROI" if not matches else f"{len(matches)} ROIs ({', '.join(repr(names[m]) for m in matches)})"
        raise InputFileError(path, f"{what} {wanted}; ROIs in the file: {listed}")
    number = matches[0]
    contours = []
    for roi in ds.get("ROIContourSequence", []):
        if int(roi.ReferencedROINumber) != number:
            continue
        for contour in roi.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            if kind != "CLOSED_PLANAR":
                raise InputFileError(path, f"ROI {names[number]!r} holds a {kind} contour; only CLOSED_PLANAR "
                                           f"contours enclose a volume")
            points = np.asarray([float(v) for v in contour.ContourData], dtype=float)
            if points.size < 9 or points.size % 3:
                raise InputFileError(path, f"ROI {names[number]!r}: a contour has {points.size} coordinates "
                                           f"(need 3 per point, at least 3 points)")
            contours.append(points.reshape(-1, 3))
    if not contours:
        raise InputFileError(path, f"ROI {names[number]!r} has no contours")
    return RoiContours(number=number, name=names[number], contours=tuple(contours))


def rasterise_contours(contours: Sequence[np.ndarray], reference: sitk.Image,
                       path: str | os.PathLike = "RTSTRUCT") -> np.ndarray:
    """Binary mask ``(z, y, x)`` on ``reference``'s grid from closed planar contours in LPS mm (module notes).

    Raises :class:`InputFileError` on ``path`` when a contour is not in a slice plane of the reference or lies
    entirely outside it.
    """
    from skimage.draw import polygon

    size = reference.GetSize()
    spacing = np.asarray(reference.GetSpacing())
    matrix = np.asarray(reference.GetDirection()).reshape(3, 3) * spacing  # index -> physical offset
    inverse = np.linalg.inv(matrix)
    origin = np.asarray(reference.GetOrigin())
    mask = np.zeros(size[::-1], dtype=bool)
    for points in contours:
        index = (np.asarray(points, dtype=float) - origin) @ inverse.T  # (N, 3) continuous (i, j, k)
        k = float(np.round(np.median(index[:, 2])))
        if float(np.max(np.abs(index[:, 2] - k))) > SLICE_TOLERANCE:
            raise InputFileError(path, f"a contour is not in a slice plane of the CT (slice index spans "
                                       f"{index[:, 2].min():.2f}-{index[:, 2].max():.2f}): tilted or drawn on "
                                       f"another reconstruction")
        if not 0 <= k < size[2]:
            raise InputFileError(path, f"a contour lies outside the CT (slice index {k:.0f}, the CT has {size[2]})")
        rows, cols = polygon(index[:, 1], index[:, 0], shape=(size[1], size[0]))
        layer = np.zeros((size[1], size[0]), dtype=bool)
        layer[rows, cols] = True
        mask[int(k)] ^= layer  # exclusive-or: an inner contour is a hole
    return mask
