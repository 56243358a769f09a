"""One axis convention for every network input: (B, C, D, H, W) with D = z, the SimpleITK/NumPy array order."""

import itertools

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from smart.data.cohort import CohortDataset, read_cohort
from smart.data.intensity import hu_to_unit
from smart.data.views import TwoViewDataset

SHAPE_ZYX = (6, 10, 14)  # every axis a different length, so a transposition cannot go unnoticed


def _asymmetric_hu() -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) for n in SHAPE_ZYX], indexing="ij")
    return (-900 + 150 * z + 20 * y + 3 * x).astype(np.int16)  # distinct slopes: each axis identifiable by its values


def test_pretraining_view_and_cohort_crop_share_the_axis_order(tmp_path):
    hu = _asymmetric_hu()
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((0.7, 1.3, 2.5))  # anisotropic (x, y, z): spacing must not influence the array order
    sitk.WriteImage(image, str(tmp_path / "vol.nii.gz"))
    pd.DataFrame([{"sample_id": "a", "patient_id": "p", "image": "vol.nii.gz", "label": 1}]).to_csv(
        tmp_path / "cohort.csv", index=False)

    crop, _ = CohortDataset(read_cohort(tmp_path / "cohort.csv"), crop_size=SHAPE_ZYX)[0]
    expected = hu_to_unit(torch.from_numpy(hu.astype(np.float32)))[None]
    assert crop.shape == (1, *SHAPE_ZYX)
    torch.testing.assert_close(crop, expected)

    views = TwoViewDataset([str(tmp_path / "vol.nii.gz")], crop_size=SHAPE_ZYX, seed=3, cache=False)
    for position in range(4):
        item = views[position]
        for key in ("u", "v"):
            view = item[key]
            assert view.shape == (1, *SHAPE_ZYX), f"view {key} has axes {tuple(view.shape)}, cohort crop {SHAPE_ZYX}"
            # a same-size random crop is the whole volume; only the random flips may differ from the cohort crop
            flips = [dims for r in range(4) for dims in itertools.combinations((1, 2, 3), r)]
            assert any(torch.allclose(view, torch.flip(crop, dims) if dims else crop) for dims in flips)
