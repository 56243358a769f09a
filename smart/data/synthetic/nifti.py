"""Writing generated volumes as real NIfTI files (SimpleITK), atomically, with a JSON sidecar for metadata.

SimpleITK's NIfTI writer drops free-text header fields, so per-file metadata (nodule size, malignancy, generator
version, seed) goes into ``<name>.json`` beside the image, BIDS style.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from smart import atomic


def write_volume(
    path: str | os.PathLike,
    array_zyx: np.ndarray,
    spacing_xyz: tuple[float, float, float],
    origin_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0),
    metadata: dict | None = None,
) -> Path:
    """Write a (D, H, W) array as NIfTI with SimpleITK's (x, y, z) spacing; optional ``metadata`` -> sidecar JSON."""
    if array_zyx.ndim != 3:
        raise ValueError(f"{path}: expected a 3D (D, H, W) array, got shape {array_zyx.shape}")
    if len(spacing_xyz) != 3 or min(spacing_xyz) <= 0:
        raise ValueError(f"{path}: spacing must be three positive numbers, got {spacing_xyz}")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx))
    image.SetSpacing(tuple(float(s) for s in spacing_xyz))
    image.SetOrigin(tuple(float(o) for o in origin_xyz))
    with atomic.atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    if metadata is not None:
        atomic.write_json(sidecar_path(path), metadata)
    return Path(path)


def sidecar_path(image_path: str | os.PathLike) -> Path:
    """``crops/x.nii.gz`` -> ``crops/x.json``."""
    p = Path(image_path)
    name = p.name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".json")
