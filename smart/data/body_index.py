"""Where overlapping pretraining views may centre: a run-length index of a CT's body voxels, built once per CT and
crop size and stored beside its memory-mapped copy (:mod:`smart.data.volume_store`), so drawing a pair of views
(:func:`smart.data.views.near_views`, config ``data.view_offset``) reads a few index entries and the two crops instead
of converting the whole CT for every sample.

For a crop size ``c`` the candidate crop corners of a ``(D, H, W)`` CT live on the *padded* volume (an axis shorter
than the crop is air-padded to it, MONAI ``SpatialPad``'s split: ``before = (c - s) // 2``). The corner grid has
``max(s, c) - c + 1`` points per axis, and a corner is a candidate when the crop's centre voxel (corner + ``c // 2``)
is body: above :data:`BODY_HU`, compared in :func:`smart.data.intensity.hu_to_unit`'s float32 units exactly as the
views are converted, so the candidates are the same voxels, in the same (C, ``np.argwhere``) order, as a search of
the whole converted volume finds.

Index (:func:`body_runs`): int64 ``(2, R + 1)``; row 0 = the flat corner-grid index where each of the R runs of
consecutive candidates starts, row 1 = how many candidates precede it; the last column is ``(grid size, total)``.
The k-th candidate is one binary search of row 1 (:func:`corner_at`), which on a memory map reads O(log R) pages.
Files: ``<CT folder>/.int16/<store file stem>.body<BODY_HU>.<c0>x<c1>x<c2>.npy``; written atomically by whichever
process needs one first (concurrent writers write identical bytes); a changed CT gets a new store key and so a new
index.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from smart.data.intensity import hu_to_unit
from smart.data.volume_store import open_stored, save_once, store_path

__all__ = ["BODY_HU", "body_runs", "candidate_count", "corner_at", "corner_grid", "ensure_body_index",
           "index_path", "open_body_index", "padding"]

BODY_HU = -500.0  # above lung parenchyma (~ -850 HU) and air: soft tissue, bone, vessels


def padding(shape: Sequence[int], crop_size: Sequence[int]) -> list[tuple[int, int]]:
    """Per axis the ``(before, after)`` air padding that makes an axis of length ``s`` at least the crop ``c``."""
    return [((c - s) // 2, c - s - (c - s) // 2) if s < c else (0, 0) for s, c in zip(shape, crop_size)]


def corner_grid(shape: Sequence[int], crop_size: Sequence[int]) -> tuple[int, int, int]:
    """Number of crop corners per axis on the padded volume: ``max(s, c) - c + 1``."""
    return tuple(max(s, c) - c + 1 for s, c in zip(shape, crop_size))


def body_runs(volume: np.ndarray, crop_size: Sequence[int]) -> np.ndarray:
    """The run-length index (module docstring) of the HU ``volume`` ``(D, H, W)`` for ``crop_size``: int64
    ``(2, R + 1)``. Reads and converts every voxel of the centre window once (a transient float32 copy of one CT)."""
    shape, crop = tuple(volume.shape), [int(c) for c in crop_size]
    grid = corner_grid(shape, crop)
    pads = padding(shape, crop)
    # centre of corner q (padded coords) = q + c // 2; its voxel in the CT = that - before; outside = air padding
    lo = [c // 2 - before for c, (before, _) in zip(crop, pads)]
    src = [slice(max(low, 0), min(low + g, s)) for low, g, s in zip(lo, grid, shape)]
    dst = tuple(slice(sl.start - low, sl.stop - low) for sl, low in zip(src, lo))
    body = np.zeros(grid, dtype=bool)
    if all(sl.stop > sl.start for sl in src):
        threshold = float(hu_to_unit(np.array([BODY_HU]))[0])  # compared in the views' float32 units, as they are
        body[dst] = hu_to_unit(np.asarray(volume[tuple(src)], dtype=np.float32)) > threshold
    edges = np.flatnonzero(np.diff(np.concatenate(([0], body.ravel().view(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    runs = np.empty((2, starts.size + 1), dtype=np.int64)
    runs[0, :-1], runs[0, -1] = starts, body.size
    runs[1, 0] = 0
    np.cumsum(ends - starts, out=runs[1, 1:])
    return runs


def candidate_count(runs: np.ndarray) -> int:
    """How many body corners the index ``runs`` holds."""
    return int(runs[1, -1])


def corner_at(runs: np.ndarray, k: int, grid: Sequence[int]) -> list[int]:
    """The ``k``-th body corner (C order, ``0 <= k <`` :func:`candidate_count`) of the index ``runs`` on the corner
    ``grid``, as ``[d, h, w]``."""
    r = int(np.searchsorted(runs[1], np.int64(k), side="right")) - 1
    flat = int(runs[0, r]) + int(k) - int(runs[1, r])
    return [int(i) for i in np.unravel_index(flat, tuple(grid))]


def index_path(nifti: str | os.PathLike, crop_size: Sequence[int]) -> Path:
    """Where the body index of ``nifti`` for ``crop_size`` lives (beside its store file, keyed like it)."""
    store = store_path(nifti)
    dims = "x".join(str(int(c)) for c in crop_size)
    return store.with_name(f"{store.stem}.body{int(BODY_HU)}.{dims}.npy")


def ensure_body_index(nifti: str | os.PathLike, crop_size: Sequence[int]) -> Path:
    """The body index file of ``nifti`` for ``crop_size``, built from its store file (atomically) if missing.
    Raises ``ValueError`` naming the file when it cannot be written."""
    return save_once(index_path(nifti, crop_size), lambda: body_runs(open_stored(nifti), crop_size), nifti,
                     "body index")


def open_body_index(nifti: str | os.PathLike, crop_size: Sequence[int]) -> np.ndarray:
    """A read-only memory map of ``nifti``'s body index for ``crop_size`` (built on first use)."""
    return np.load(ensure_body_index(nifti, crop_size), mmap_mode="r", allow_pickle=False)
