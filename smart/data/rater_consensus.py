"""Consensus of several raters' binary masks (5-rater tumour set, paper Sec. IV-A "zero-shot").

Two methods:

* ``"staple"`` (default) — SimpleITK's ``STAPLEImageFilter`` (Warfield et al., 2004): an EM estimate of each rater's
  sensitivity/specificity and of the per-voxel probability of the true segmentation; the consensus is that
  probability > 0.5. Default because it is the standard reference for multi-rater radiotherapy contours (a
  systematically over-contouring rater is down-weighted instead of counted like everyone else).

  Two known weaknesses are fixed here (docs/data_preparation.md "Consensus"):

  - STAPLE's specificity estimates, and so its result, depend on how much background the volume holds (Warfield
    et al. discuss it; padding a volume with air changes the consensus). STAPLE therefore runs on the **bounding box
    of the raters' union plus** ``margin`` **voxels** on every side — filled with background where the box leaves
    the volume — so the consensus is the same however much background surrounds the lesion.
  - An exact tie (e.g. two raters, one empty) gives the probability 0.5 plus rounding noise (0.5 + 6.7e-16
    measured with SimpleITK 2.5.7), so the consensus would follow the noise. Probabilities within
    :data:`TIE_TOLERANCE` of 0.5 are ties and count as background, as in majority voting. With only two raters
    every disagreement is a tie that STAPLE cannot resolve (two partly overlapping masks gave 0.503 on one rater's
    private voxels, 0.003 on the other's and 0.18 on their overlap): the consensus of two raters is their majority
    (the intersection) whatever the method.
* ``"majority"`` — a voxel is foreground when strictly more than half of the raters mark it (ties -> background).
  Parameter-free and exact; used as the fallback when STAPLE is degenerate (e.g. all masks empty).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

METHODS = ("staple", "majority")
DEFAULT_METHOD = "staple"
# Background voxels kept around the raters' union for STAPLE (each side, in voxels): a thin shell, so every rater's
# specificity is estimated from background next to the lesion. The shell's size still matters (that is STAPLE's
# nature): with 5 raters where 2 add a slab, margins 1-3 leave the slab out (3 of 5 said no), margins >= 5 put it in,
# because plenty of background makes every specificity ~1 and a positive vote nearly decisive
# (tests/data/test_rater_consensus.py). 2 keeps STAPLE close to the raters' majority on the lesion's border.
DEFAULT_MARGIN = 2
# A STAPLE probability this close to 0.5 is an exact tie seen through float64 rounding (observed: 6.7e-16).
TIE_TOLERANCE = 1e-9


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


def staple_probability(masks: Sequence[np.ndarray], margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """STAPLE's per-voxel probability of foreground (float64, same shape as a mask).

    Computed on the bounding box of the raters' union grown by ``margin`` voxels per side (zero-filled where it
    leaves the volume); voxels outside the box get probability 0 (no rater marked them, and they are far from every
    mark). ``margin`` must be >= 1 so that every rater's specificity sees some background.
    """
    import SimpleITK as sitk

    if not isinstance(margin, (int, np.integer)) or margin < 1:
        raise ValueError(f"margin must be an integer >= 1 (voxels), got {margin!r}")
    stack = _stack(masks)
    prob = np.zeros(stack.shape[1:], dtype=np.float64)
    union = stack.any(axis=0)
    if not union.any():
        return prob
    idx = np.argwhere(union)
    lo, hi = idx.min(axis=0) - margin, idx.max(axis=0) + 1 + margin  # the box, may reach outside the volume
    region = np.zeros((stack.shape[0], *(hi - lo)), dtype=np.uint8)
    src = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, union.shape))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo))
    region[(slice(None), *dst)] = stack[(slice(None), *src)]
    staple = sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1.0)
    p = sitk.GetArrayFromImage(staple.Execute([sitk.GetImageFromArray(m) for m in region]))
    prob[src] = p[dst]
    return prob


def consensus_mask(masks: Sequence[np.ndarray], method: str = DEFAULT_METHOD,
                   margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """Boolean consensus of binary ``masks`` (all the same shape, at least 2) by ``method`` ("staple" | "majority").

    STAPLE: probability > 0.5 + :data:`TIE_TOLERANCE` on the union's box + ``margin`` (module notes). Raises
    ValueError for fewer than 2 masks, differing shapes, non-binary values or an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    stack = _stack(masks)
    if method == "majority" or not stack.any() or len(stack) == 2:
        return majority_vote(stack)
    if stack.all():
        return np.ones(stack.shape[1:], dtype=bool)
    return staple_probability(stack, margin) > 0.5 + TIE_TOLERANCE


RATER_COLUMN_PREFIX = "rater"


def consensus_for_table(raters_csv, out_dir, method: str = DEFAULT_METHOD, margin: int = DEFAULT_MARGIN):
    """The consensus of every case of a raters table, written as ``out_dir/{case_id}.nii.gz`` on the CT's grid.

    ``raters_csv`` has ``case_id, image`` (CT file or DICOM folder), optionally ``series_uid``, and one column per
    rater whose name starts with ``rater`` (mask paths, relative to the CSV's folder; an empty cell = that rater did
    not draw the case). Every rater mask is resampled onto the CT grid in physical space first
    (:func:`smart.data.masks.mask_on_grid`), so raters may store their masks on any grid. Returns
    ``(table, rejected)``: the input rows with absolute paths plus a ``consensus`` column (relative to ``out_dir``),
    and ``case_id, file, reason`` rows for cases that gave no consensus (fewer than 2 raters, unreadable or
    non-overlapping masks). Raises :class:`smart.inputs.InputFileError` for an unreadable table.
    """
    import os
    from pathlib import Path

    import pandas as pd
    import SimpleITK as sitk

    from smart.atomic import atomic_path
    from smart.data.io import read_image
    from smart.data.masks import mask_on_grid, read_mask
    from smart.inputs import InputFileError, read_csv

    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    raters_csv, out_dir = Path(raters_csv), Path(out_dir)
    frame = read_csv(raters_csv, "raters CSV", dtype=str, keep_default_na=False)
    columns = [c for c in frame.columns if c.startswith(RATER_COLUMN_PREFIX)]
    missing = {"case_id", "image"} - set(frame.columns)
    if missing or len(columns) < 2:
        raise InputFileError(raters_csv, f"needs case_id, image and at least 2 rater* columns (found "
                                         f"{list(frame.columns)})")

    def absolute(value: str) -> str:
        p = Path(value.strip())
        return os.fspath(p if p.is_absolute() else (raters_csv.parent / p).resolve())

    kept, rejected = [], []
    for _, row in frame.iterrows():
        case = str(row["case_id"]).strip()
        paths = [absolute(row[c]) for c in columns if str(row[c]).strip()]
        try:
            if len(paths) < 2:
                raise InputFileError(raters_csv, f"case {case!r} has {len(paths)} rater mask(s); need at least 2")
            ct = read_image(absolute(row["image"]), series_uid=str(row.get("series_uid", "")).strip() or None)
            masks = [mask_on_grid(read_mask(p), ct, mask_name=p, reference_name=f"CT {row['image']}") for p in paths]
        except InputFileError as err:
            rejected.append({"case_id": case, "file": err.path, "reason": err.reason})
            continue
        image = sitk.GetImageFromArray(consensus_mask(masks, method, margin).astype(np.uint8))
        image.CopyInformation(ct)
        dest = out_dir / f"{case}.nii.gz"
        with atomic_path(dest) as tmp:
            sitk.WriteImage(image, os.fspath(tmp), useCompression=True)
        out = {c: row[c] for c in frame.columns if c not in ("consensus",)}
        out.update({"image": absolute(row["image"]), **{c: absolute(row[c]) if str(row[c]).strip() else ""
                                                        for c in columns}})
        kept.append({**out, "consensus": os.path.relpath(dest, out_dir)})
    table = pd.DataFrame(kept, columns=[c for c in frame.columns if c != "consensus"] + ["consensus"])
    return table, pd.DataFrame(rejected, columns=["case_id", "file", "reason"])
