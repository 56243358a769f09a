"""Helpers for the segmentation tests: small labelled CT NIfTI pairs (SimpleITK) and their CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk


def write_nifti(array, path, spacing=(2.0, 2.0, 2.0)):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


def synthetic_case(rng, shape=(64, 64, 64)):
    """A soft-tissue body with a 'lung' (1) box of air and a 'tumour' (2) sphere: learnable in a few steps."""
    hu = np.full(shape, -1000.0, np.float32)
    hu[8:56, 8:56, 8:56] = 40.0
    label = np.zeros(shape, np.uint8)
    z0 = int(rng.integers(12, 20))
    label[z0:z0 + 24, 14:40, 14:40] = 1
    hu[label == 1] = -850.0
    zz, yy, xx = np.ogrid[:64, :64, :64]
    label[(zz - 40) ** 2 + (yy - 44) ** 2 + (xx - 30) ** 2 <= int(rng.integers(25, 50))] = 2
    hu[label == 2] = 60.0
    return hu + rng.normal(0, 10, shape).astype(np.float32), label


def write_labelled_csv(root: Path) -> Path:
    """Four 64^3 cases (train, train, val, test) as NIfTI pairs and ``root/seg.csv``."""
    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        hu, label = synthetic_case(rng)
        write_nifti(hu, root / f"ct{i}.nii.gz")
        write_nifti(label, root / f"lab{i}.nii.gz")
        rows.append({"case_id": f"c{i}", "image": f"ct{i}.nii.gz", "label": f"lab{i}.nii.gz", "split": split})
    pd.DataFrame(rows).to_csv(root / "seg.csv", index=False)
    return root / "seg.csv"
