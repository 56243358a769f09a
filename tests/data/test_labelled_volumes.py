"""smart.data.labelled_volumes: the segmentation CSV and image/label pairs — checks that name the file, resampling to
2 mm with labels kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelled_helpers import write_labelled_csv, write_nifti
from smart.data.labelled_volumes import load_pair, read_labelled_csv


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    return write_labelled_csv(tmp_path_factory.mktemp("seg"))


def test_csv_errors_name_the_file(tmp_path, labelled_csv):
    frame = pd.read_csv(labelled_csv)
    bad = tmp_path / "bad.csv"
    frame.drop(columns=["split"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['split'\]"):
        read_labelled_csv(bad)
    frame.assign(split=["train", "train", "train", "test"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: no case in split\(s\) \['val'\]"):
        read_labelled_csv(bad)
    frame.assign(split=["train", "training", "val", "test"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="unknown split value"):
        read_labelled_csv(bad)
    frame.assign(label=["nope.nii.gz"] * 4, image=[str(labelled_csv.parent / p) for p in frame.image]).to_csv(
        bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: 4 label path\(s\) do not exist, e.g. .*nope.nii.gz"):
        read_labelled_csv(bad)


def test_pair_checks_and_resampling(tmp_path):
    hu = np.zeros((20, 24, 28), np.float32)
    label = np.zeros_like(hu, dtype=np.uint8)
    label[5:15, 6:18, 8:20] = 2
    image = write_nifti(hu, tmp_path / "ct.nii.gz", (1.0, 1.0, 1.0))
    lab = write_nifti(label, tmp_path / "lab.nii.gz", (1.0, 1.0, 1.0))
    vol = load_pair("c", str(image), str(lab), n_structures=2, spacing=2.0)
    assert vol.image.shape == vol.label.shape == (10, 12, 14)          # 1 mm -> 2 mm, (z, y, x)
    assert set(np.unique(vol.label)) == {0, 2} and vol.label.dtype == np.int64
    assert np.allclose(vol.image, 0.5)                                   # 0 HU -> (0 + 1000) / 2000
    with pytest.raises(ValueError, match=r"lab.nii.gz: label values must be integers 0..1"):
        load_pair("c", str(image), str(lab), n_structures=1, spacing=None)
    other = write_nifti(label, tmp_path / "shifted.nii.gz", (1.0, 1.0, 1.5))
    with pytest.raises(ValueError, match="shifted.nii.gz: label grid .* differs from its image"):
        load_pair("c", str(image), str(other), n_structures=2)
