"""Masks (rater, consensus, lesion) onto their CT's grid in physical space (docs/data_preparation.md "Masks").

A mask arrives with its own geometry: NRRD from 3D Slicer with an identity direction next to a CT stored with
diag(-1, -1, 1), NIfTI from a converter with another origin, a finer or coarser grid. Comparing arrays index by index
then mirrors or shifts the lesion while every shape check passes. Every image/mask pair in the package is therefore
compared only after :func:`mask_on_grid` has resampled the mask onto the CT grid (nearest neighbour, through
physical coordinates); a mask whose foreground does not overlap the CT is rejected with the reason.
"""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from smart.data.validation import ImageReadError

__all__ = ["read_mask", "mask_on_grid", "physical_bounds"]


def read_mask(path: str | os.PathLike) -> sitk.Image:
    """A binary mask file (any format :func:`smart.data.io.read_image` reads; the NIfTI geometry rule applies) as
    uint8 0/1 with its own geometry. Raises :class:`ImageReadError` naming the file."""
    from smart.data.io import read_image

    image = read_image(path, require_ct=False)
    binary = sitk.Cast(sitk.NotEqual(image, 0), sitk.sitkUInt8)
    binary.CopyInformation(image)
    for key in image.GetMetaDataKeys():  # keep read_image's provenance (series UID, geometry rule)
        if key.startswith("smart_"):
            binary.SetMetaData(key, image.GetMetaData(key))
    return binary


def physical_bounds(image: sitk.Image, index_zyx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """LPS (x, y, z) mm box of the voxel centres ``index_zyx`` (N, 3) — all voxels when None."""
    if index_zyx is None:
        size = image.GetSize()
        corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    else:
        index_zyx = np.asarray(index_zyx)
        lo, hi = index_zyx.min(axis=0)[::-1], index_zyx.max(axis=0)[::-1]
        corners = np.array([[i, j, k] for i in (lo[0], hi[0]) for j in (lo[1], hi[1]) for k in (lo[2], hi[2])])
    points = np.array([image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
                       for corner in corners])
    return points.min(axis=0), points.max(axis=0)


def mask_on_grid(mask: sitk.Image, reference: sitk.Image, *, mask_name: str | os.PathLike = "mask",
                 reference_name: str | os.PathLike = "CT") -> np.ndarray:
    """``mask`` resampled onto ``reference``'s grid in physical space: bool array ``(z, y, x)`` of the reference.

    Nearest neighbour (labels stay labels); reference voxels outside the mask's field of view are background. An empty
    mask stays empty (a rater may draw nothing). Raises :class:`ImageReadError` on ``mask_name`` when the mask is not
    3-D or its foreground lies entirely outside the reference grid (no overlap: the wrong CT, or a frame mix-up).
    """
    if mask.GetDimension() != 3 or reference.GetDimension() != 3:
        raise ImageReadError(mask_name, f"mask is {mask.GetDimension()}-D and {reference_name} is "
                                        f"{reference.GetDimension()}-D; both must be 3-D")
    binary = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    source = sitk.GetArrayViewFromImage(binary)
    n_source = int(np.count_nonzero(source))
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(0)
    resampler.SetOutputPixelType(sitk.sitkUInt8)
    out = sitk.GetArrayFromImage(resampler.Execute(binary)) != 0
    if n_source and not out.any():
        m_lo, m_hi = physical_bounds(binary, np.argwhere(source))
        c_lo, c_hi = physical_bounds(reference)
        raise ImageReadError(mask_name, f"mask does not overlap {reference_name}: its foreground spans "
                                        f"{_box(m_lo, m_hi)} mm, the CT spans {_box(c_lo, c_hi)} mm (LPS)")
    return out


def _box(lo: np.ndarray, hi: np.ndarray) -> str:
    return "x".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(lo, hi))
