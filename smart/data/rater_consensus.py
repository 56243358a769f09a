"""Consensus of several raters' binary masks (5-rater tumour set, paper Sec. IV-A "zero-shot").

Two methods:

* ``"staple"`` (default) — SimpleITK's ``STAPLEImageFilter`` (Warfield et al., 2004): an EM estimate of each rater's
  sensitivity/specificity and of the per-voxel probability of the true segmentation; the consensus is that
  probability > 0.5. Default because it is the standard reference for multi-rater radiotherapy contours (a
  systematically over-contouring rater is down-weighted instead of counted like everyone else).
* ``"majority"`` — a voxel is foreground when strictly more than half of the raters mark it (ties -> background).
  Parameter-free and exact; used as the fallback when STAPLE is degenerate (e.g. all masks empty).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

METHODS = ("staple", "majority")
DEFAULT_METHOD = "staple"


def _stack(masks: Sequence[np.ndarray]) -> np.ndarray:
    if len(masks) < 2:
        raise ValueError(f"need at least 2 rater masks, got {len(masks)}")
    shapes = {np.shape(m) for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"rater masks differ in shape: {sorted(shapes)}")
    stack = np.stack([np.asarray(m) for m in masks])
    if stack.dtype != bool and not ((stack == 0) | (stack == 1)).all():
        raise ValueError("rater masks must be binary (0/1 or bool)")
    return stack.astype(bool)


def majority_vote(masks: Sequence[np.ndarray]) -> np.ndarray:
    stack = _stack(masks)
    return stack.sum(0) * 2 > stack.shape[0]


def staple_probability(masks: Sequence[np.ndarray]) -> np.ndarray:
    """STAPLE's per-voxel probability of foreground (float64, same shape as a mask)."""
    import SimpleITK as sitk

    stack = _stack(masks)
    images = [sitk.GetImageFromArray(m.astype(np.uint8)) for m in stack]
    staple = sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1.0)
    return sitk.GetArrayFromImage(staple.Execute(images)).astype(np.float64)


def consensus_mask(masks: Sequence[np.ndarray], method: str = DEFAULT_METHOD) -> np.ndarray:
    """Boolean consensus of binary ``masks`` (all the same shape) by ``method`` ("staple" | "majority")."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    stack = _stack(masks)
    if method == "majority" or not stack.any():
        return majority_vote(stack)
    if stack.all():
        return np.ones(stack.shape[1:], dtype=bool)
    return staple_probability(stack) > 0.5
