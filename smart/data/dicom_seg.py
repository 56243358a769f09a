"""DICOM Segmentation (SEG) segments -> binary masks on the referenced CT's grid (docs/data_preparation.md).

Read with highdicom (maintained; pydicom-seg pins jsonschema 3). A segment is selected by its SegmentLabel (exact or
a pattern), turned into a ``highdicom.Volume`` (frames placed by their own position/orientation, so the SEG may
cover only some slices or use another in-plane grid), converted to a SimpleITK image and resampled onto the CT grid
in physical space (:func:`smart.data.masks.mask_on_grid`, nearest neighbour).

Rules (docs/data_preparation.md "Masks from DICOM, completed"):

* **FRACTIONAL** SEG (PROBABILITY or OCCUPANCY): a voxel is foreground where its stored value is at least
  :data:`FRACTIONAL_THRESHOLD` (50 %) of the SEG's MaximumFractionalValue — for OCCUPANCY the voxel is at least half
  inside the structure, for PROBABILITY the structure is at least as likely there as not. A FRACTIONAL SEG without
  a positive MaximumFractionalValue is refused with that reason.
* **Several segments**: the segments selected by name or pattern must share one label; segments repeating that
  label are pieces of one structure (tools write one segment per connected piece or per lesion) and are united, so
  overlapping pieces are foreground wherever any piece is. Segments with different labels matching the pattern are
  different structures: refused, naming them (no silent choice).
"""

from __future__ import annotations

import os
import re

import numpy as np
import SimpleITK as sitk

from smart.inputs import InputFileError

__all__ = ["FRACTIONAL_THRESHOLD", "read_seg", "select_segments", "segment_image", "seg_referenced_series_uid"]

FRACTIONAL_THRESHOLD = 0.5  # of MaximumFractionalValue; inclusive (module notes)


def read_seg(path: str | os.PathLike):
    """The SEG as a ``highdicom.seg.Segmentation``; :class:`InputFileError` naming the file when it is unreadable
    or not a SEG."""
    import highdicom as hd
    import pydicom

    try:
        ds = pydicom.dcmread(os.fspath(path))
    except Exception as err:  # InvalidDicomError, EOFError, ... for damaged files
        raise InputFileError(path, f"unreadable DICOM file ({type(err).__name__}: {err})") from None
    if str(ds.get("Modality", "")).upper() != "SEG":
        raise InputFileError(path, f"modality {ds.get('Modality', '')!r} is not SEG")
    try:
        return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as err:  # highdicom validates the SEG structure and raises several types
        raise InputFileError(path, f"not a valid DICOM SEG ({type(err).__name__}: {err})") from None


def seg_referenced_series_uid(seg, path: str | os.PathLike = "SEG") -> str:
    """The one image series the SEG was derived from (ReferencedSeriesSequence)."""
    uids = sorted({str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])})
    if len(uids) != 1:
        raise InputFileError(path, f"references {len(uids)} image series ({', '.join(uids) or 'none'}); "
                                   f"exactly one is needed to place the segment")
    return uids[0]


def select_segments(seg, path: str | os.PathLike, *, name: str | None = None,
                    pattern: str | None = None) -> tuple[list[int], str]:
    """``(segment numbers, label)`` of the segments labelled exactly ``name`` or fully matching ``pattern``
    (case-insensitive); several segments are returned only when they repeat one label (module notes).
    :class:`InputFileError` listing the labels when none match, or when segments of different labels match."""
    if (name is None) == (pattern is None):
        raise ValueError("give exactly one of name and pattern")
    labels = {int(item.SegmentNumber): str(item.SegmentLabel) for item in seg.SegmentSequence}
    if name is not None:
        matches, wanted = [n for n, label in labels.items() if label == name], f"labelled {name!r}"
    else:
        regex = re.compile(pattern, re.IGNORECASE)
        matches, wanted = [n for n, label in labels.items() if regex.fullmatch(label)], f"matching /{pattern}/"
    distinct = sorted({labels[m] for m in matches})
    if len(distinct) != 1:
        listed = ", ".join(repr(v) for v in labels.values()) or "none"
        found = ", ".join(repr(v) for v in distinct)
        what = f"{len(matches)} segments with {len(distinct)} different labels ({found})" if matches else "no segment"
        raise InputFileError(path, f"{what} {wanted}; segments in the file: {listed}")
    return sorted(matches), distinct[0]


def segment_image(seg, numbers: int | list[int], path: str | os.PathLike = "SEG") -> sitk.Image:
    """The union of segments ``numbers`` as a uint8 0/1 SimpleITK image with the SEG frames' own geometry (LPS);
    FRACTIONAL segments thresholded at :data:`FRACTIONAL_THRESHOLD` of MaximumFractionalValue."""
    numbers = [int(numbers)] if isinstance(numbers, (int, np.integer)) else [int(n) for n in numbers]
    kind = str(seg.get("SegmentationType", "")).upper()
    if kind == "FRACTIONAL":
        maximum = seg.get("MaximumFractionalValue")
        if maximum is None or not int(maximum) > 0:
            raise InputFileError(path, f"FRACTIONAL SEG with MaximumFractionalValue {maximum!r}: the fraction a "
                                       f"stored value stands for is undefined")
    try:
        # one channel per segment: overlapping pieces stay separate until the union below
        volume = seg.get_volume(segment_numbers=numbers, rescale_fractional=True)
    except Exception as err:  # irregular frame positions, missing geometry, ...
        raise InputFileError(path, f"segments {numbers}: frames do not form a regular volume ({err})") from None
    array = np.asarray(volume.array)
    # rescale_fractional maps stored values to value / MaximumFractionalValue; a small tolerance keeps a stored value
    # of exactly half the maximum (e.g. 100 of 200) in after the float division
    foreground = array >= FRACTIONAL_THRESHOLD - 1e-6 if kind == "FRACTIONAL" else array > 0
    if foreground.ndim == 4:  # (slices, rows, columns, segments): the union of the pieces
        foreground = foreground.any(axis=3)
    binary = sitk.Cast(volume.with_array(foreground.astype(np.uint8), channels={}).to_simpleitk(), sitk.sitkUInt8)
    if binary.GetDimension() != 3 or not np.isfinite(binary.GetSpacing()).all():
        raise InputFileError(path, f"segments {numbers}: not a 3-D volume")
    return binary
