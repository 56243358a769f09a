"""Blank volumes: every voxel holds one value (all zero, all air, all padding). One rule for every reader of stacked
volumes (OrganMNIST3D npz, classification cohorts): a blank volume is a valid array but carries no image, so it is
counted and reported with its indices — never silently trained or clustered on (docs/data_preparation.md "Blank
inputs are counted"). A NaN anywhere makes a volume not blank (the non-finite rule rejects it elsewhere).
"""

from __future__ import annotations

import numpy as np

__all__ = ["blank_indices", "blank_note", "blank_summary", "is_blank"]

_SHOWN = 20  # indices listed in a note; the count is always complete


def is_blank(volume: np.ndarray) -> bool:
    """True when every voxel of ``volume`` equals the first (an empty array is blank)."""
    flat = np.asarray(volume).ravel()
    return bool(flat.size == 0 or np.all(flat == flat[0]))


def blank_indices(volumes: np.ndarray) -> np.ndarray:
    """Indices (int64, ascending) along axis 0 of the volumes in which every voxel holds the same value."""
    stacked = np.asarray(volumes)
    if stacked.ndim == 0 or len(stacked) == 0:
        return np.zeros(0, np.int64)
    flat = stacked.reshape(len(stacked), -1)
    if flat.shape[1] == 0:
        return np.arange(len(stacked), dtype=np.int64)
    return np.flatnonzero(np.all(flat == flat[:, :1], axis=1)).astype(np.int64)


def blank_note(where: str, indices, total: int, what: str = "volumes") -> str:
    """One line: ``where: K of N volumes are blank (one value in every voxel): indices [i, j, ...]`` (the first 20
    listed, then how many more)."""
    indices = [int(i) for i in indices]
    shown = ", ".join(map(str, indices[:_SHOWN])) + (f", ... ({len(indices) - _SHOWN} more)"
                                                      if len(indices) > _SHOWN else "")
    return f"{where}: {len(indices)} of {total} {what} are blank (one value in every voxel): indices [{shown}]"


def blank_summary(cohort) -> dict:
    """``{"count", "indices" (row positions), "sample_ids"}`` of the rows of a cohort frame whose ``blank`` column is
    true (the crop producers set it); all empty without the column."""
    if "blank" not in getattr(cohort, "columns", ()) or not len(cohort):
        return {"count": 0, "indices": [], "sample_ids": []}
    rows = np.flatnonzero(cohort["blank"].astype(bool).to_numpy())
    return {"count": int(len(rows)), "indices": rows.tolist(), "sample_ids": cohort["sample_id"].iloc[rows].tolist()}
