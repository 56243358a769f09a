"""Checks that decide whether a file is a CT volume the pipeline may resample (docs/data_resample.md "Rejection rules").

Every check raises :class:`ImageReadError` with the offending file and a reason a person can act on; nothing here
reads or writes files, so the rules are testable on plain values and shared by :mod:`smart.data.io` (checks that
must run before the pixel data is loaded: geometry, memory guard, modality) and :mod:`smart.data.resample`
(intensity checks on the loaded voxels).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from smart.inputs import InputFileError

# 512 x 512 x 2048 voxels: a whole-body scan at sub-millimetre slices still fits, a corrupt header claiming
# terabytes does not. As float32 (how DICOM series are read, smart.data.io) this is 2 GiB of RAM before resampling.
DEFAULT_MAX_VOXELS = 512 * 512 * 2048

# Any CT that contains the patient also contains air (outside the body, lungs, airways, bowel gas), which is
# -1000 HU. A volume whose minimum lies above this threshold is not in Hounsfield units (raw stored values with the
# rescale intercept not applied, or intensities already normalised to [0, 1] / [-1, 1]).
DEFAULT_AIR_THRESHOLD_HU = -500.0

# Resampled CTs are stored as int16; values outside its range could not be written without clipping and do not
# occur in HU data (the extended CT scale ends at 30 710 HU, scanner padding values are -2048 / -3024).
INT16_MIN, INT16_MAX = -32768, 32767

# Plausible CT geometry: in-plane pixels of clinical CT are 0.2-1.5 mm and slices 0.5-10 mm; micro-CT and
# resampled volumes stay above 0.05 mm, and nothing useful as a CT is coarser than 20 mm. A header outside these
# bounds is a unit error (metres or micrometres written as mm) or a corrupt field, not a scan.
DEFAULT_MIN_SPACING_MM = 0.05
DEFAULT_MAX_SPACING_MM = 20.0
# The longest body (2 m) plus table: a physical extent above 2.5 m along any axis is a corrupt size or spacing.
DEFAULT_MAX_EXTENT_MM = 2500.0
# Lowest plausible stored HU: air is -1000 and scanners pad outside the reconstruction circle with -1024, -2048 or
# -3024; anything below -4096 is not a Hounsfield value (a wrapped or mis-rescaled pixel type).
DEFAULT_HU_MIN = -4096.0

_UNDETECTED_MODALITIES = frozenset({"", "UNKNOWN", "OT"})


class ImageReadError(InputFileError):
    """A file that cannot be used as a CT volume (or mask); ``reason`` says why in words (it goes into
    ``rejected.csv``)."""


class IrregularSliceSpacing(ImageReadError):
    """A DICOM series whose slice gaps are not uniform: rejected for pretraining, but a caller that must keep the
    series (an annotated LIDC scan) can re-grid it by physical position (:mod:`smart.data.slice_regrid`)."""


@dataclass(frozen=True)
class ValidationRules:
    """Thresholds of the rejection rules; the defaults are the documented pipeline rules.

    Args:
        max_voxels: memory guard, checked on the header before any pixel data is read.
        min_axis_size: a volume needs at least this many voxels along every axis (2 rejects single slices,
            which cannot be interpolated along the slice axis).
        air_threshold_hu: the volume minimum must be at or below this value (it must contain air), see module notes.
        hu_min, hu_max: the plausible stored range; HU values outside it are rejected rather than clipped
            (default [-4096, 32767]: below the scanners' padding values, up to int16, the on-disk type).
        min_spacing_mm, max_spacing_mm: plausible voxel size (mm) along every axis.
        max_extent_mm: plausible physical extent (size x spacing, mm) along every axis.
        slice_gap_tolerance: relative deviation of one DICOM slice gap from the median gap that still counts as
            uniform (0.05 = 5 %; real series jitter by far less than that, one missing slice is +100 %).
        verify_gzip: decompress every ``.gz`` once more to check its CRC-32 and length. ITK returns truncated or
            corrupted ``.nii.gz`` data without an error, so this is the only guard against silently damaged
            volumes; it runs in a parallel thread (free when a core is idle, one extra decompression of CPU time).
    """

    max_voxels: int = DEFAULT_MAX_VOXELS
    min_axis_size: int = 2
    air_threshold_hu: float = DEFAULT_AIR_THRESHOLD_HU
    hu_min: float = DEFAULT_HU_MIN
    hu_max: float = INT16_MAX
    min_spacing_mm: float = DEFAULT_MIN_SPACING_MM
    max_spacing_mm: float = DEFAULT_MAX_SPACING_MM
    max_extent_mm: float = DEFAULT_MAX_EXTENT_MM
    slice_gap_tolerance: float = 0.05
    verify_gzip: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_voxels, (int, np.integer)) or self.max_voxels < 1:
            raise ValueError(f"max_voxels must be a positive integer, got {self.max_voxels!r}")
        if not isinstance(self.min_axis_size, (int, np.integer)) or self.min_axis_size < 1:
            raise ValueError(f"min_axis_size must be a positive integer, got {self.min_axis_size!r}")
        if not (math.isfinite(self.hu_min) and math.isfinite(self.hu_max) and self.hu_min < self.hu_max):
            raise ValueError(f"need finite hu_min < hu_max, got hu_min={self.hu_min!r}, hu_max={self.hu_max!r}")
        if not math.isfinite(self.air_threshold_hu):
            raise ValueError(f"air_threshold_hu must be finite, got {self.air_threshold_hu!r}")
        if not (0.0 < self.min_spacing_mm < self.max_spacing_mm < math.inf):
            raise ValueError(f"need 0 < min_spacing_mm < max_spacing_mm < inf, got min_spacing_mm="
                             f"{self.min_spacing_mm!r}, max_spacing_mm={self.max_spacing_mm!r}")
        if not (0.0 < self.max_extent_mm < math.inf):
            raise ValueError(f"max_extent_mm must be finite and > 0, got {self.max_extent_mm!r}")
        if not (0.0 < self.slice_gap_tolerance < 1.0):
            raise ValueError(f"slice_gap_tolerance must be in (0, 1), got {self.slice_gap_tolerance!r}")


def check_geometry(path: str | os.PathLike, size: Sequence[int], spacing: Sequence[float],
                   rules: ValidationRules) -> None:
    """Reject anything but a 3-D grid with positive finite spacing, enough slices and a plausible voxel count.

    ``size``/``spacing`` are in ITK order (x, y, z) as read from the header, before pixel data is loaded.
    """
    if len(size) != 3:
        kind = {2: "a 2-D image", 4: "a 4-D image (time series or multi-channel)"}.get(len(size), f"{len(size)}-D")
        raise ImageReadError(path, f"{kind} of size {tuple(size)}; a 3-D CT volume is required")
    bad = [float(s) for s in spacing if not (math.isfinite(float(s)) and float(s) > 0.0)]
    if bad:
        raise ImageReadError(path, f"invalid voxel spacing {tuple(float(s) for s in spacing)} mm "
                                   f"(zero, negative or NaN); every spacing must be finite and > 0")
    odd = [float(s) for s in spacing if not rules.min_spacing_mm <= float(s) <= rules.max_spacing_mm]
    if odd:
        raise ImageReadError(path, f"implausible voxel spacing {tuple(round(float(s), 6) for s in spacing)} mm: every "
                                   f"spacing must lie in [{rules.min_spacing_mm:g}, {rules.max_spacing_mm:g}] mm "
                                   f"(a unit error such as metres or micrometres, or a corrupt header)")
    if min(size) < rules.min_axis_size:
        what = "a single slice" if sorted(size)[0] == 1 else "too few voxels"
        raise ImageReadError(path, f"{what}: size {tuple(int(s) for s in size)}, need at least "
                                   f"{rules.min_axis_size} voxels along every axis")
    extent = [int(n) * float(s) for n, s in zip(size, spacing)]
    if max(extent) > rules.max_extent_mm:
        raise ImageReadError(path, f"implausible physical extent {tuple(round(e, 1) for e in extent)} mm (size "
                                   f"{tuple(int(s) for s in size)} x spacing): more than {rules.max_extent_mm:g} mm "
                                   f"along an axis")
    n = math.prod(int(s) for s in size)
    if n > rules.max_voxels:
        raise ImageReadError(path, f"{n} voxels (size {tuple(int(s) for s in size)}) exceeds the memory guard "
                                   f"max_voxels={rules.max_voxels}")


def check_modality(path: str | os.PathLike, modality: str | None) -> None:
    """Reject a file whose header names a modality other than CT.

    Undetectable passes: ``None`` (NIfTI/NRRD do not record one), empty, ``UNKNOWN`` (what SimpleITK writes into
    every MetaImage) and DICOM ``OT`` ("other", used by converters that lost the original modality).
    """
    if modality is None:
        return
    # MetaImage spells modalities MET_MOD_CT, MET_MOD_MR, ...; DICOM (0008,0060) uses CT, MR, PT, ...
    norm = modality.strip().upper().removeprefix("MET_MOD_")
    if norm not in _UNDETECTED_MODALITIES and norm != "CT":
        raise ImageReadError(path, f"modality {modality.strip()!r} is not CT")


def check_slice_positions(path: str | os.PathLike, positions: Sequence[Sequence[float]],
                          normal: Sequence[float], rules: ValidationRules) -> float:
    """Check that DICOM slices are equally spaced along ``normal`` and stacked straight; return the slice gap (mm).

    Non-uniform spacing (a missing slice, mixed thicknesses) is rejected rather than resampled by physical position:
    interpolating across a gap invents anatomy, and such series are rare enough in research cohorts that a person
    should look at them. A displacement with a component across the slice plane is a tilted-gantry or sheared stack,
    which ITK's regular grid cannot represent.
    """
    pos = np.asarray(positions, dtype=float)
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    depth = pos @ n
    order = np.argsort(depth)
    gaps = np.diff(depth[order])
    if gaps.size == 0:
        return float("nan")
    if np.any(gaps <= 1e-6):
        raise ImageReadError(path, "duplicate slice positions in the DICOM series (two files at the same depth)")
    median = float(np.median(gaps))
    worst = float(np.max(np.abs(gaps - median)))
    if worst > rules.slice_gap_tolerance * median:
        shown = ", ".join(f"{g:.4g}" for g in gaps[:12]) + (", ..." if gaps.size > 12 else "")
        raise IrregularSliceSpacing(path, f"non-uniform slice spacing in the DICOM series (gaps {shown} mm, median "
                                          f"{median:.4g} mm): missing or irregular slices")
    steps = np.diff(pos[order], axis=0)
    lateral = np.linalg.norm(steps - np.outer(steps @ n, n), axis=1)
    if float(np.max(lateral)) > rules.slice_gap_tolerance * median:
        raise ImageReadError(path, f"slices are not stacked along the slice normal (lateral shift up to "
                                   f"{float(np.max(lateral)):.4g} mm per slice: gantry tilt or sheared series)")
    return median


def check_finite_voxels(path: str | os.PathLike, voxels: np.ndarray) -> None:
    """THE non-finite rule (docs/data_preparation.md "Non-finite voxels"): reject ``voxels`` holding any NaN or
    ±Inf, naming ``path`` and the count. NaN has no HU meaning, and every later step would spread it (interpolation,
    normalisation, a loss that turns NaN). Called by every reader of voxels — :func:`smart.data.io.read_image` for
    each format, :func:`check_intensities`, the readers of stored crops — so no format or command keeps its own
    copy. Integer arrays pass without a scan."""
    arr = np.asanyarray(voxels)
    if arr.dtype.kind not in "fc":
        return
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        raise ImageReadError(path, f"{bad} non-finite voxel value(s) ({n_nan} NaN, {bad - n_nan} Inf) of {arr.size}")


def check_slice_geometry(path: str | os.PathLike, names: Sequence[str], values: dict[str, Sequence]) -> None:
    """Per-slice geometry of one DICOM series: every tag of ``values`` (``{"PixelSpacing (0028,0030)": [value of
    each slice or None]}``, slices in the order of ``names``) must be present on every slice, and — except
    ImagePositionPatient, which must hold three numbers — equal on all of them (numbers within 1e-4). A reader
    would otherwise fill a gap with its default (ITK: 1 mm) or take slice 0's value for the whole series.
    """
    for tag, per_slice in values.items():
        missing = [n for n, v in zip(names, per_slice) if v is None or str(v).strip() == ""]
        if missing:
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            raise ImageReadError(path, f"{tag} missing on {len(missing)} of {len(names)} slice file(s) ({shown}): "
                                       f"the series geometry is unknown (a reader would put its default in place)")
        numbers = []
        for n, v in zip(names, per_slice):
            try:
                numbers.append(np.atleast_1d(np.asarray([float(x) for x in np.atleast_1d(v)], dtype=float)))
            except (TypeError, ValueError):
                raise ImageReadError(path, f"{tag} of {n} is not numeric: {v!r}") from None
        if tag.startswith("ImagePositionPatient"):
            odd = [n for n, a in zip(names, numbers) if a.size != 3 or not np.all(np.isfinite(a))]
            if odd:
                raise ImageReadError(path, f"{tag} of {odd[0]} is not three finite numbers")
            continue
        first = numbers[0]
        differ = [n for n, a in zip(names, numbers) if a.shape != first.shape or not np.allclose(a, first, rtol=0,
                                                                                              atol=1e-4)]
        if differ:
            shown = ", ".join(differ[:6]) + (", ..." if len(differ) > 6 else "")
            other = numbers[names.index(differ[0])]
            raise ImageReadError(path, f"{tag} differs between slices: {_values(first)} in {names[0]}, "
                                       f"{_values(other)} in {len(differ)} file(s) ({shown})")


def _values(a: np.ndarray) -> str:
    return "\\".join(f"{v:g}" for v in a)


def check_intensities(path: str | os.PathLike, voxels: np.ndarray, rules: ValidationRules) -> tuple[float, float]:
    """Reject non-finite, constant or non-HU voxel data; return ``(min, max)`` of the volume.

    The HU rule: the minimum must be at or below ``air_threshold_hu`` (the scan contains air) and both ends must
    lie in ``[hu_min, hu_max]`` (int16 by default, the on-disk type). Non-integer values are allowed — they are
    rounded when written — because an earlier interpolation legitimately produces them.
    """
    if voxels.dtype.kind == "f":
        check_finite_voxels(path, voxels)
    if voxels.dtype.kind not in "biuf":
        raise ImageReadError(path, f"voxel type {voxels.dtype} is not a scalar intensity")
    lo, hi = float(voxels.min()), float(voxels.max())
    if lo == hi:
        raise ImageReadError(path, f"constant image (every voxel is {lo:g})")
    if lo < rules.hu_min or hi > rules.hu_max:
        raise ImageReadError(path, f"intensity range [{lo:g}, {hi:g}] lies outside the plausible CT range "
                                   f"[{rules.hu_min:g}, {rules.hu_max:g}] HU")
    if lo > rules.air_threshold_hu:
        raise ImageReadError(path, f"minimum intensity {lo:g} is above {rules.air_threshold_hu:g} HU: no air in "
                                   f"the volume, so the values are not Hounsfield units (raw stored values "
                                   f"without rescale, or already normalised)")
    return lo, hi
