"""smart.data.slice_regrid: irregular DICOM slices re-gridded by physical position, against the formula."""

from __future__ import annotations

import locale

import numpy as np
import pytest
import SimpleITK as sitk

from smart.data.io import read_image
from smart.data.slice_regrid import read_series_on_regular_grid, regular_positions
from smart.data.validation import ImageReadError, IrregularSliceSpacing

UID = "1.2.826.0.1.3680043.8.498.1"


def _write(folder, depths, value_of_depth, shuffle=True):
    """8x6 slices, tilted 30 degrees about x, each filled with value_of_depth(depth); files in shuffled order."""
    folder.mkdir()
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, c, s])
    normal = np.cross(row, col)
    origin = np.array([-10.0, 20.0, 5.0])
    order = np.random.default_rng(0).permutation(len(depths)) if shuffle else np.arange(len(depths))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    saved = locale.setlocale(locale.LC_ALL)
    try:
        for n, i in enumerate(order):
            img = sitk.GetImageFromArray(np.full((1, 6, 8), value_of_depth(depths[i]), np.int16))
            img.SetSpacing((0.7, 0.8, 1.0))
            pos = origin + depths[i] * normal
            for key, value in {"0008|0060": "CT", "0020|000e": UID, "0020|000d": UID + ".0",
                               "0008|0018": f"{UID}.{n + 1}", "0020|0013": str(n + 1),
                               "0020|0032": "\\".join(f"{v:.6f}" for v in pos),
                               "0020|0037": "\\".join(f"{v:.6f}" for v in (*row, *col)),
                               "0028|0030": "0.8\\0.7"}.items():
                img.SetMetaData(key, value)
            writer.SetFileName(str(folder / f"{n:03d}.dcm"))
            writer.Execute(img)
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    return origin, normal


def test_values_follow_the_physical_depths(tmp_path):
    # slices at irregular depths (a 0.5 mm extra slice, one missing slice) holding 10 * depth - 900 HU: a linear
    # function of depth is reproduced exactly by linear interpolation at the regular depths (rounded by int16 input)
    depths = np.array([0.0, 1.25, 2.5, 3.0, 3.75, 5.0, 7.5, 8.75, 10.0])
    folder = tmp_path / "series"
    origin, normal = _write(folder, depths, lambda d: round(10 * d - 900))
    with pytest.raises(IrregularSliceSpacing, match="non-uniform slice spacing"):
        read_image(folder)
    img = read_series_on_regular_grid(folder, UID)
    targets = np.arange(0, 10.0 + 1e-9, 1.25)  # median gap 1.25 mm
    assert img.GetSize() == (8, 6, len(targets)) and img.GetSpacing() == pytest.approx((0.7, 0.8, 1.25))
    np.testing.assert_allclose(img.GetOrigin(), origin, atol=1e-5)
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3)[:, 2], normal, atol=1e-5)
    stored = np.array([round(10 * d - 900) for d in depths], float)
    expected = np.interp(targets, depths, stored)
    got = sitk.GetArrayFromImage(img)
    np.testing.assert_allclose(got[:, 0, 0], expected, atol=1e-4)
    assert np.all(got == got[:, :1, :1])
    np.testing.assert_array_equal(regular_positions(depths, 1.25), targets)


def test_a_gap_wider_than_twice_the_median_is_refused(tmp_path):
    depths = np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    folder = tmp_path / "gap"
    _write(folder, depths, lambda d: -1000 + int(d), shuffle=False)
    with pytest.raises(ImageReadError, match=r"slice gap of 3 mm between depths .* exceeds 2x the median gap 1 mm"):
        read_series_on_regular_grid(folder, UID)
    img = read_series_on_regular_grid(folder, UID, max_gap_factor=3.0)
    assert img.GetSize()[2] == 7


def test_missing_series_is_named(tmp_path):
    _write(tmp_path / "s", np.array([0.0, 1.0]), lambda d: 0)
    with pytest.raises(ImageReadError, match="series '9.9' has 0 file"):
        read_series_on_regular_grid(tmp_path / "s", "9.9")
