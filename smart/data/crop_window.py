"""A crop window on a voxel grid and the one rule every crop producer applies: the crop must hold image.

Crops are cut by LIDC nodules (:func:`smart.data.lidc.write_crops`), lesion / response cohorts
(:func:`smart.data.lesion_crops.cut_lesion_crops`) and zero-shot evaluation (:func:`smart.eval.zeroshot.evaluate_case`);
where the window leaves the volume it is padded. A crop that is (mostly) padding is not a sample of the image: an LIDC
scan downloaded without the slices that hold a nodule gives a crop of -1024 HU everywhere, which a label would turn
into a training sample. The rule (docs/data_preparation.md "Every crop must hold image"):

* the crop centre must lie inside the image (continuous voxel index within ``[-0.5, n - 0.5]`` on every axis);
* at least :data:`MIN_IN_IMAGE_FRACTION` of the crop's voxels must lie inside the image.

Otherwise :class:`CropHoldsNoImage` says why; the caller excludes the crop with that reason and counts it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["MIN_IN_IMAGE_FRACTION", "CropHoldsNoImage", "check_crop_holds_image", "extract", "in_image_fraction"]

# A centre inside an image at least as large as the crop keeps >= 1/8 of it (the centre on a corner); the paper's
# 128^3 crops at 2 mm of all 2,651 LIDC nodules keep >= 0.31 (computed from the annotation DB's scan geometry:
# 512 x 512 pixels, the slices' z positions, the nodule centroids), so 0.25 keeps every real nodule while a crop
# that is three quarters padding is refused.
MIN_IN_IMAGE_FRACTION = 0.25


class CropHoldsNoImage(ValueError):
    """A crop excluded by the rule; ``reason`` is the one line that goes into the exclusion table."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def in_image_fraction(shape: Sequence[int], start: Sequence[int], size: Sequence[int]) -> float:
    """Fraction of the voxels of the box ``start .. start + size`` (per axis, any order of axes) inside
    ``0 .. shape``: the product over axes of the overlap length over the crop length."""
    fraction = 1.0
    for n, s, k in zip(shape, start, size):
        fraction *= max(0, min(int(s) + int(k), int(n)) - max(int(s), 0)) / int(k)
    return float(fraction)


def check_crop_holds_image(shape: Sequence[int], start: Sequence[int], size: Sequence[int],
                           centre_index: Sequence[float] | None = None,
                           min_fraction: float = MIN_IN_IMAGE_FRACTION) -> float:
    """Apply the rule (module notes) to a crop of ``size`` voxels at ``start`` in an image of ``shape`` (same axis
    order for all, e.g. (z, y, x)); ``centre_index`` is the crop centre as a continuous voxel index (None: the
    centre is placed by the caller inside the image). Returns the in-image fraction; raises
    :class:`CropHoldsNoImage` naming the centre or the fraction. ``ValueError`` for a ``min_fraction`` outside [0, 1].
    """
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction!r}")
    if centre_index is not None:
        centre = np.asarray(centre_index, dtype=float)
        outside = ~np.isfinite(centre) | (centre < -0.5) | (centre > np.asarray(shape, dtype=float) - 0.5)
        if outside.any():
            shown = ", ".join(f"{c:.1f}" for c in centre)
            raise CropHoldsNoImage(f"crop centre lies outside the image (voxel index ({shown}), image shape "
                                   f"{tuple(int(n) for n in shape)}): the scan does not hold the slices or pixels "
                                   f"around it")
    fraction = in_image_fraction(shape, start, size)
    if fraction < min_fraction:
        raise CropHoldsNoImage(f"only {fraction:.1%} of the crop {tuple(int(k) for k in size)} lies inside the image "
                               f"{tuple(int(n) for n in shape)} (minimum {min_fraction:.0%}): the rest would be "
                               f"padding")
    return fraction


def extract(volume: np.ndarray, start: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """``volume[start : start + size]`` per axis, with the voxels outside the volume set to ``fill``."""
    out = np.full(tuple(int(k) for k in size), fill, dtype=volume.dtype)
    src, dst = [], []
    for st, k, n in zip(start, size, volume.shape):
        lo, hi = max(int(st), 0), min(int(st) + int(k), int(n))
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - int(st), hi - int(st)))
    out[tuple(dst)] = volume[tuple(src)]
    return out
