"""Resampled CTs as uncompressed, memory-mapped arrays: pretraining memory that does not grow with the number of CTs.

Keeping every decoded CT in RAM (MONAI ``CacheDataset``) costs 24 MB per 2 mm CT as float32, i.e. ~251 GB per rank
for the paper's 10,412 CTs. Instead each NIfTI is decoded once into an uncompressed ``.npy`` beside it (int16 HU
when the voxels are integers that fit, float32 otherwise, so NaN still surfaces), axes ``(z, y, x)``
(docs/ARCHITECTURE.md "Axes"). A reader maps the file, copies the voxels of the crops it needs and unmaps it, so a
process's resident memory is bounded by a few crops whatever the number of CTs; the page cache, shared by every
rank and worker of a node and reclaimable, does the caching.

Store files live in ``<CT folder>/.int16/`` and are named by a hash of the NIfTI's absolute path, size and
modification time: an updated CT gets a new store file, and any process may create a missing one (atomic
rename; concurrent writers produce identical bytes), so no coordination between ranks or DataLoader workers is
needed. Cost: one uncompressed copy on disk (12 MB per 179x179x188 CT; ~125 GB for 10,412 CTs).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from smart.atomic import atomic_path

__all__ = ["STORE_FOLDER", "store_path", "ensure_stored", "load_zyx", "open_stored", "save_once"]

STORE_FOLDER = ".int16"


def store_path(nifti: str | os.PathLike) -> Path:
    """Where the memory-mappable copy of ``nifti`` lives (depends on its path, size and mtime)."""
    src = Path(nifti).resolve()
    st = src.stat()
    key = hashlib.sha1(f"{src}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    stem = src.name[: -len(".nii.gz")] if src.name.endswith(".nii.gz") else src.stem
    return src.parent / STORE_FOLDER / f"{stem}.{key}.npy"


def load_zyx(nifti: str | os.PathLike) -> np.ndarray:
    """Decode a NIfTI to its stored dtype: ``(z, y, x)``, int16 when every voxel is an integer in int16's range.

    nibabel (like MONAI's ``NibabelReader``, which this replaces) applies ``scl_slope/scl_inter`` and keeps NaN.
    Raises ``ValueError`` naming the file for anything but a 3-D volume (a 4-D file with one frame is squeezed).
    """
    import nibabel as nib

    try:
        data = np.asanyarray(nib.load(os.fspath(nifti)).dataobj)
    except Exception as err:  # nibabel raises several types for unreadable files
        raise ValueError(f"{nifti}: unreadable NIfTI ({err})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{nifti}: expected a 3-D volume, got shape {data.shape}")
    zyx = data.transpose(2, 1, 0)
    if zyx.dtype.kind in "iu" and zyx.size and zyx.min() >= np.iinfo(np.int16).min \
            and zyx.max() <= np.iinfo(np.int16).max:
        return np.ascontiguousarray(zyx, dtype=np.int16)
    if zyx.dtype.kind == "f" and np.all(np.isfinite(zyx)) and np.array_equal(zyx, np.rint(zyx)) \
            and zyx.min() >= np.iinfo(np.int16).min and zyx.max() <= np.iinfo(np.int16).max:
        return np.ascontiguousarray(zyx, dtype=np.int16)  # scaled integers (slope/intercept) stay exact
    return np.ascontiguousarray(zyx, dtype=np.float32)


def save_once(dest: Path, make: Callable[[], np.ndarray], nifti: str | os.PathLike, what: str) -> Path:
    """``dest``, written from ``make()`` as ``.npy`` (atomically: concurrent writers of identical bytes are safe) if
    it is missing. Raises ``ValueError`` naming ``nifti`` and ``what`` the file is for when it cannot be written."""
    if not dest.is_file():
        array = make()
        try:
            with atomic_path(dest, suffix=".npy") as tmp:
                np.save(tmp, array, allow_pickle=False)
        except OSError as err:
            raise ValueError(f"{nifti}: cannot write its {what} {dest} ({err.strerror or err}); the CT folder must be "
                             f"writable") from None
    return dest


def ensure_stored(nifti: str | os.PathLike) -> Path:
    """The store file of ``nifti``, written (atomically) if missing. Raises ``ValueError`` naming the file."""
    return save_once(store_path(nifti), lambda: load_zyx(nifti), nifti, "memory-mapped copy")


def open_stored(nifti: str | os.PathLike) -> np.ndarray:
    """A read-only memory map ``(z, y, x)`` of ``nifti``'s store file (created on first use).

    Slice what you need and copy it (``np.array(view[...])``), then drop the map: its pages then leave this
    process's resident set.
    """
    return np.load(ensure_stored(nifti), mmap_mode="r", allow_pickle=False)
