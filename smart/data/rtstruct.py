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
(``skimage.draw.polygon``, vertices kept continuous).

Several contours of one ROI in one slice (docs/data_preparation.md "Masks from DICOM, completed") follow one rule,
by **nesting depth**: a contour whose every vertex lies inside another contour of the slice is nested in it; a
contour nested in an even number of others (0, 2, ...) adds its pixels, one nested in an odd number removes them
(a hole; an island in a hole adds again), applied in order of depth. Contours that overlap without one holding the
other are separate pieces of the structure: their union. A contour repeated in the file (the same points, in any
order or direction) counts once. Exclusive-or, the classic rule, erases a slice whose contour is written twice and
cuts the overlap out of two overlapping pieces; both are structure, not holes.

Several ROIs carrying the requested name are pieces of one structure (exporters split a structure per lesion or per
session): each is rasterised on its own and the masks are united. ROIs of different names matching a pattern are
different structures and are refused, naming them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from smart.inputs import InputFileError

__all__ = ["RoiContours", "read_rtstruct", "select_rois", "rasterise_contours", "referenced_series_uid"]

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


def select_rois(ds, path: str | os.PathLike, *, name: str | None = None,
                pattern: str | None = None) -> list[RoiContours]:
    """The ROIs named exactly ``name`` or fully matching the regular expression ``pattern`` (case-insensitive); several
    only when they share one name (pieces of one structure, module notes).

    Raises :class:`InputFileError` naming the file and the ROIs it holds when none match or ROIs of different names
    match (no silent choice), or when a matching ROI has no closed planar contour.
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
    distinct = sorted({names[m] for m in matches})
    if len(distinct) != 1:
        listed = ", ".join(repr(v) for v in names.values()) or "none"
        what = "no ROI" if not matches else (f"{len(matches)} ROIs with {len(distinct)} different names "
                                             f"({', '.join(repr(d) for d in distinct)})")
        raise InputFileError(path, f"{what} {wanted}; ROIs in the file: {listed}")
    return [_roi_contours(ds, path, number, names[number]) for number in sorted(matches)]


def _roi_contours(ds, path: str | os.PathLike, number: int, name: str) -> RoiContours:
    contours = []
    for roi in ds.get("ROIContourSequence", []):
        if int(roi.ReferencedROINumber) != number:
            continue
        for contour in roi.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            if kind != "CLOSED_PLANAR":
                raise InputFileError(path, f"ROI {name!r} holds a {kind} contour; only CLOSED_PLANAR "
                                           f"contours enclose a volume")
            points = np.asarray([float(v) for v in contour.ContourData], dtype=float)
            if points.size < 9 or points.size % 3:
                raise InputFileError(path, f"ROI {name!r}: a contour has {points.size} coordinates "
                                           f"(need 3 per point, at least 3 points)")
            contours.append(points.reshape(-1, 3))
    if not contours:
        raise InputFileError(path, f"ROI {name!r} has no contours")
    return RoiContours(number=number, name=name, contours=tuple(contours))


def rasterise_contours(contours: Sequence[np.ndarray], reference: sitk.Image,
                       path: str | os.PathLike = "RTSTRUCT") -> np.ndarray:
    """Binary mask ``(z, y, x)`` on ``reference``'s grid from closed planar contours in LPS mm of one ROI; contours
    sharing a slice combine by nesting depth, a repeated contour counts once (module notes).

    Raises :class:`InputFileError` on ``path`` when a contour is not in a slice plane of the reference or lies
    entirely outside it.
    """
    size = reference.GetSize()
    spacing = np.asarray(reference.GetSpacing())
    matrix = np.asarray(reference.GetDirection()).reshape(3, 3) * spacing  # index -> physical offset
    inverse = np.linalg.inv(matrix)
    origin = np.asarray(reference.GetOrigin())
    mask = np.zeros(size[::-1], dtype=bool)
    by_slice: dict[int, list[np.ndarray]] = {}
    seen: set[tuple] = set()
    for points in contours:
        index = (np.asarray(points, dtype=float) - origin) @ inverse.T  # (N, 3) continuous (i, j, k)
        k = float(np.round(np.median(index[:, 2])))
        if float(np.max(np.abs(index[:, 2] - k))) > SLICE_TOLERANCE:
            raise InputFileError(path, f"a contour is not in a slice plane of the CT (slice index spans "
                                       f"{index[:, 2].min():.2f}-{index[:, 2].max():.2f}): tilted or drawn on "
                                       f"another reconstruction")
        if not 0 <= k < size[2]:
            raise InputFileError(path, f"a contour lies outside the CT (slice index {k:.0f}, the CT has {size[2]})")
        key = (int(k), tuple(sorted(map(tuple, np.round(np.asarray(points, dtype=float), 3).tolist()))))
        if key in seen:  # the same contour again: one piece, not a piece and its hole
            continue
        seen.add(key)
        by_slice.setdefault(int(k), []).append(index[:, :2])
    for k, polygons in by_slice.items():
        mask[k] = _fill_by_depth(polygons, (size[1], size[0]))
    return mask


def _fill_by_depth(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """One slice from its contours ((N, 2) continuous (column, row) indices) by nesting depth (module notes)."""
    from skimage.draw import polygon
    from skimage.measure import points_in_poly

    depth = [sum(1 for j, outer in enumerate(polygons) if j != i and points_in_poly(inner, outer).all())
             for i, inner in enumerate(polygons)]
    layer = np.zeros(shape, dtype=bool)
    for i in np.argsort(depth, kind="stable"):
        rows, cols = polygon(polygons[i][:, 1], polygons[i][:, 0], shape=shape)
        layer[rows, cols] = depth[i] % 2 == 0  # even depth: structure; odd: a hole in the one around it
    return layer
