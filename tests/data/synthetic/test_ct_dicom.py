"""smart.data.synthetic.ct_dicom: real DICOM CT series (int16 + RescaleIntercept) read back by SimpleITK and pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from smart.data.io import is_dicom_file, read_image
from smart.data.synthetic.ct_dicom import RESCALE_INTERCEPT, derived_uid, write_ct_series


def test_series_round_trips_hu_and_geometry(tmp_path):
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 3000, size=(5, 12, 10)).astype(np.int16)
    folder = tmp_path / "site/patient/series"
    paths = write_ct_series(folder, hu, (0.7, 0.65, 1.25), (-10.0, -20.0, 30.0), "P1", "chest")
    assert [p.name for p in paths] == [f"{k:04d}.dcm" for k in range(5)]
    ds = pydicom.dcmread(paths[2])
    assert ds.Modality == "CT" and ds.PixelRepresentation == 1 and float(ds.RescaleIntercept) == RESCALE_INTERCEPT
    # stored = HU - intercept: a reader that ignored the rescale would be 1024 off
    assert np.array_equal(ds.pixel_array.astype(np.int32), hu[2].astype(np.int32) + 1024)
    assert [float(v) for v in ds.ImagePositionPatient] == [-10.0, -20.0, 30.0 + 2 * 1.25]
    assert [float(v) for v in ds.PixelSpacing] == [0.65, 0.7]  # (row, column)
    image = read_image(folder)
    assert np.array_equal(sitk.GetArrayFromImage(image), hu.astype(np.float32))
    assert image.GetSpacing() == pytest.approx((0.7, 0.65, 1.25))
    assert image.GetOrigin() == pytest.approx((-10.0, -20.0, 30.0))
    assert is_dicom_file(paths[0]) and not is_dicom_file(tmp_path / "missing.dcm")


def test_uids_are_deterministic_valid_and_distinct(tmp_path):
    a, b = derived_uid("series", "P1", "x"), derived_uid("series", "P1", "y")
    assert a == derived_uid("series", "P1", "x") and a != b
    for uid in (a, b):
        assert len(uid) <= 64 and set(uid) <= set("0123456789.")
    write_ct_series(tmp_path / "a", np.zeros((2, 4, 4), np.int16), (1, 1, 1), (0, 0, 0), "P1", "x")
    write_ct_series(tmp_path / "b", np.zeros((2, 4, 4), np.int16), (1, 1, 1), (0, 0, 0), "P1", "x")
    assert (tmp_path / "a/0001.dcm").read_bytes() == (tmp_path / "b/0001.dcm").read_bytes()


def test_bad_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a 3-D"):
        write_ct_series(tmp_path, np.zeros((4, 4), np.int16), (1, 1, 1), (0, 0, 0), "P", "s")
    with pytest.raises(ValueError, match="does not fit int16"):
        write_ct_series(tmp_path, np.full((1, 2, 2), 40000, np.int32), (1, 1, 1), (0, 0, 0), "P", "s")
