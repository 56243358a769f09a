"""Resampling CT to isotropic voxels (paper Sec. IV-C: scans re-sampled at 2 mm x 2 mm x 2 mm before cropping 128^3).

SimpleITK's ``ResampleImageFilter`` is used rather than MONAI ``Spacingd``: on a 512x512x300 int16 CT it is an order
of magnitude faster and needs a fraction of the memory (docs/data_resample.md; ``smart.bench.resample`` re-measures it).
The resampled grid keeps the source origin (the centre of the first voxel) and direction; only the voxel size and
the number of voxels change, so the physical extent is preserved to within one output voxel.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from smart.atomic import atomic_path
from smart.data.intensity import HU_MAX, HU_MIN, hu_to_unit
from smart.data.io import image_provenance, read_image
from smart.data.validation import ValidationRules, check_intensities

__all__ = ["AIR_HU", "target_size", "resample_image", "hu_window", "ResampleRecord", "resample_file"]

AIR_HU = -1024  # fill value outside the source field of view: air, and the usual DICOM padding intercept

_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}
_INTEGER_TYPES = {sitk.sitkInt8: np.int8, sitk.sitkUInt8: np.uint8, sitk.sitkInt16: np.int16,
                  sitk.sitkUInt16: np.uint16, sitk.sitkInt32: np.int32, sitk.sitkUInt32: np.uint32}


def _spacing3(spacing: float | Sequence[float]) -> tuple[float, float, float]:
    values = (float(spacing),) * 3 if isinstance(spacing, (int, float, np.floating, np.integer)) else \
        tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be a positive finite number or three of them (mm), got {spacing!r}")
    return values


def target_size(size: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    """Voxels per axis after resampling: ``floor(size * spacing / new_spacing + 0.5)``, at least 1.

    Half rounds up (not to even as Python's ``round``) so the count is a plain function of the physical extent.
    """
    return tuple(max(1, int(math.floor(n * s / t + 0.5))) for n, s, t in zip(size, spacing, new_spacing))


def resample_image(img: sitk.Image, spacing: float | Sequence[float] = 2.0, interpolator: str = "linear",
                   default_value: float | None = None, pixel_type: int | None = None) -> sitk.Image:
    """Resample ``img`` onto a grid of ``spacing`` mm with the same origin and direction.

    Args:
        img: a 3-D scalar SimpleITK image.
        spacing: target voxel size in mm, one number (isotropic) or three in ITK order (x, y, z).
        interpolator: ``"linear"`` for intensity images (CT), ``"nearest"`` for label maps (keeps label values).
        default_value: value outside the source field of view; default :data:`AIR_HU` for linear, 0 for nearest.
        pixel_type: SimpleITK pixel type of the result; default ``sitkInt16`` for linear, the input's type for
            nearest. When a linear result is integer and the input has the same type (the usual int16 CT), ITK
            interpolates natively in that type: values are truncated toward zero (|error| < 1 HU, below the
            quantisation of CT noise) — this is raw SimpleITK ``Resample``, with no extra pass over the input.
            From any other input type (float, int32) values are rounded to the nearest integer, ties to even, and
            clipped to the output type's range instead of wrapping.
    """
    if not isinstance(img, sitk.Image):
        raise TypeError(f"img must be a SimpleITK.Image, got {type(img).__name__}")
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"resample_image needs a 3-D scalar image, got dimension {img.GetDimension()} with "
                         f"{img.GetNumberOfComponentsPerPixel()} components")
    if interpolator not in _INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(_INTERPOLATORS)}, got {interpolator!r}")
    new_spacing = _spacing3(spacing)
    linear = interpolator == "linear"
    if default_value is None:
        default_value = AIR_HU if linear else 0
    if pixel_type is None:
        pixel_type = sitk.sitkInt16 if linear else img.GetPixelID()

    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in target_size(img.GetSize(), img.GetSpacing(), new_spacing)])
    resampler.SetOutputSpacing(new_spacing)
    resampler.SetOutputOrigin(img.GetOrigin())
    resampler.SetOutputDirection(img.GetDirection())
    resampler.SetInterpolator(_INTERPOLATORS[interpolator])
    resampler.SetDefaultPixelValue(float(default_value))
    if linear and pixel_type in _INTEGER_TYPES and pixel_type != img.GetPixelID():
        # Another input type (float NIfTI, int32 DICOM): interpolate in float and round to the nearest integer, since
        # ITK's integer output truncates toward zero. numpy's rint + cast on the small output grid is ~3x cheaper than
        # sitk Round + Cast. (For input already of the output type this path is avoided: SimpleITK casts the whole
        # *input* to the output pixel type before resampling, 0.29 s and 2x the input's memory on 512x512x300.)
        resampler.SetOutputPixelType(sitk.sitkFloat32)
        interpolated = resampler.Execute(img)
        dtype = _INTEGER_TYPES[pixel_type]
        values = np.rint(sitk.GetArrayViewFromImage(interpolated))
        np.clip(values, np.iinfo(dtype).min, np.iinfo(dtype).max, out=values)  # no wrap-around on the cast
        out = sitk.GetImageFromArray(values.astype(dtype))
        out.CopyInformation(interpolated)
        return out
    resampler.SetOutputPixelType(pixel_type)
    return resampler.Execute(img)


def hu_window(img: sitk.Image, hu_min: float = HU_MIN, hu_max: float = HU_MAX) -> sitk.Image:
    """Clip HU to ``[hu_min, hu_max]`` and scale to ``[0, 1]`` (float32), keeping the geometry.

    The network-input convention (docs/ARCHITECTURE.md "Intensities", :func:`smart.data.intensity.hu_to_unit`).
    Not applied by ``smart resample``: files on disk stay in HU so a different window needs no re-run.
    """
    out = sitk.GetImageFromArray(hu_to_unit(sitk.GetArrayViewFromImage(img), hu_min, hu_max))
    out.CopyInformation(img)
    return out


def _triplet(values: Sequence[float]) -> str:
    # "x"-joined in ITK order (x, y, z), 6 significant digits: NIfTI stores float32, so 0.7 reads back as
    # 0.699999988 and more digits would only show that noise
    return "x".join(f"{float(v):.6g}" for v in values)


@dataclass(frozen=True)
class ResampleRecord:
    """One manifest row's measured fields (docs/ARCHITECTURE.md "CT manifest"); triplets are ``"x"``-joined.

    ``series_uid`` (DICOM; "" otherwise), ``geometry`` (the rule that placed the voxels: ``dicom``,
    ``nifti sform``, ``nifti qform``, ``nifti sform; qform differs``, ``header``) and ``orientation`` (the source's
    axis letters, ``oblique ...`` when tilted), ``series_choice`` (DICOM folders: how the series was chosen and what
    was set aside) record what :func:`smart.data.io.read_image` chose
    (docs/data_preparation.md).
    """

    source: str
    path: str
    orig_spacing: str
    orig_size: str
    new_spacing: str
    new_size: str
    hu_min: float
    hu_max: float
    series_uid: str = ""
    geometry: str = ""
    orientation: str = ""
    series_choice: str = ""


def resample_file(source: str | os.PathLike, destination: str | os.PathLike, *, spacing: float | Sequence[float] = 2.0,
                  series_uid: str | None = None, rules: ValidationRules | None = None) -> ResampleRecord:
    """Read -> validate -> resample -> write one CT; the destination appears complete or not at all.

    Raises :class:`smart.data.validation.ImageReadError` (nothing written) when the source is rejected.
    ``hu_min``/``hu_max`` describe the written (resampled, int16) volume.
    """
    rules = rules or ValidationRules()
    new_spacing = _spacing3(spacing)
    img = read_image(source, series_uid=series_uid, rules=rules)
    check_intensities(source, sitk.GetArrayViewFromImage(img), rules)
    out = resample_image(img, new_spacing)
    view = sitk.GetArrayViewFromImage(out)
    lo, hi = float(view.min()), float(view.max())
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        sitk.WriteImage(out, os.fspath(tmp), useCompression=True)
    return ResampleRecord(source=os.fspath(Path(source).resolve()), path=os.fspath(destination.resolve()),
                          orig_spacing=_triplet(img.GetSpacing()), orig_size=_triplet(img.GetSize()),
                          new_spacing=_triplet(out.GetSpacing()), new_size=_triplet(out.GetSize()),
                          hu_min=lo, hu_max=hi, **image_provenance(img))
