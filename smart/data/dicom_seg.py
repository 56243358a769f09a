"""DICOM Segmentation (SEG) segments -> binary masks on the referenced CT's grid (docs/data_preparation.md).

Read with highdicom (maintained; pydicom-seg pins jsonschema 3). A segment is selected by its SegmentLabel (exact or
a pattern), turned into a ``highdicom.Volume`` (frames placed by their own position/orientation, so the SEG may
cover only some slices or use another in-plane grid), converted to a SimpleITK image and resampled onto the CT grid
in physical space (:func:`smart.data.masks.mask_on_grid`, nearest neighbour). Fractional segments count as
foreground above one half.
"""

from __future__ import annotations

import os
import re

import numpy as np
import SimpleITK as sitk

from smart.inputs import InputFileError

__all__ = ["read_seg", "select_segment", "segment_image", "seg_referenced_series_uid"]


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


def select_segment(seg, path: str | os.PathLike, *, name: str | None = None,
                   pattern: str | None = None) -> tuple[int, str]:
    """``(segment number, label)`` of the one segment labelled exactly ``name`` or fully matching ``pattern``
    (case-insensitive); :class:`InputFileError` listing the labels when none or several match."""
    if (name is None) == (pattern is None):
        raise ValueError("give exactly one of name and pattern")
    labels = {int(item.SegmentNumber): str(item.SegmentLabel) for item in seg.SegmentSequence}
    if name is not None:
        matches, wanted = [n for n, label in labels.items() if label == name], f"labelled {name!r}"
    else:
        regex = re.compile(pattern, re.IGNORECASE)
        matches, wanted = [n for n, label in labels.items() if regex.fullmatch(label)], f"matching /{pattern}/"
    if len(matches) != 1:
        listed = ", ".join(repr(v) for v in labels.values()) or "none"
        found = ", ".join(repr(labels[m]) for m in matches)
        what = f"{len(matches)} segments ({found})" if matches else "no segment"
        raise InputFileError(path, f"{what} {wanted}; segments in the file: {listed}")
    return matches[0], labels[matches[0]]


def segment_image(seg, number: int, path: str | os.PathLike = "SEG") -> sitk.Image:
    """Segment ``number`` as a uint8 0/1 SimpleITK image with the SEG frames' own geometry (LPS)."""
    try:
        volume = seg.get_volume(segment_numbers=[number], combine_segments=True, relabel=True)
    except Exception as err:  # irregular frame positions, missing geometry, ...
        raise InputFileError(path, f"segment {number}: frames do not form a regular volume ({err})") from None
    image = volume.to_simpleitk()
    binary = sitk.Cast(sitk.Greater(image, 0.5), sitk.sitkUInt8)
    binary.CopyInformation(image)
    if binary.GetDimension() != 3 or not np.isfinite(binary.GetSpacing()).all():
        raise InputFileError(path, f"segment {number}: not a 3-D volume")
    return binary
