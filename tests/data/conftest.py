"""Fixtures shared by the tests of smart.data.cohort and smart.data.cohort_dataset."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk


def write_nifti(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.int16)), str(path))


@pytest.fixture()
def cohort_dir(tmp_path):
    (tmp_path / "crops").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, shape in enumerate([(6, 6, 6), (10, 10, 10), (8, 12, 4)]):
        write_nifti(tmp_path / "crops" / f"s{i}.nii.gz", rng.integers(-1200, 1200, shape))
        rows.append({"sample_id": f"s{i}", "patient_id": f"p{i // 2}", "image": f"crops/s{i}.nii.gz", "label": i % 2,
                     "extra": i * 10})
    pd.DataFrame(rows).to_csv(tmp_path / "cohort.csv", index=False)
    return tmp_path
