"""smart.data.resample: one image or file resampled to isotropic spacing.

Expected values are computed here independently of ITK: the resampled grid keeps origin and direction, so output
voxel ``i`` sits at continuous source index ``i * new_spacing / old_spacing`` per axis; linear interpolation is then
``scipy.ndimage.map_coordinates(order=1)`` with edge replication (ITK clamps to the border within half a voxel of
the buffer) and anything further out is air.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import map_coordinates

from data_fixtures import write_bad_inputs
from smart.data.io import read_image
from smart.data.resample import AIR_HU, hu_window, resample_file, resample_image, target_size
from smart.data.validation import ImageReadError, ValidationRules

ROT30 = (math.cos(math.pi / 6), -math.sin(math.pi / 6), 0.0, math.sin(math.pi / 6), math.cos(math.pi / 6), 0.0,
         0.0, 0.0, 1.0)


def _round_nearest(v):
    """Nearest integer, ties to even (the documented rounding)."""
    return np.rint(v)


def _source_index(out_img, src_img):
    """Continuous source index (z, y, x arrays) of every output voxel, plus the inside-buffer mask."""
    ratio = np.array(out_img.GetSpacing()) / np.array(src_img.GetSpacing())
    nx, ny, nz = out_img.GetSize()
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cx, cy, cz = i * ratio[0], j * ratio[1], k * ratio[2]
    sx, sy, sz = src_img.GetSize()
    inside = (cx <= sx - 0.5) & (cy <= sy - 0.5) & (cz <= sz - 0.5)
    return (cz, cy, cx), inside


def _expected_linear(src_img, out_img):
    coords, inside = _source_index(out_img, src_img)
    src = sitk.GetArrayFromImage(src_img).astype(np.float64)
    values = map_coordinates(src, np.stack(coords), order=1, mode="nearest")
    return np.where(inside, _round_nearest(values), AIR_HU), values


def _assert_matches(out_img, expected, exact_values):
    """Equal, except within 0.01 of a rounding tie where float32 interpolation may land either side."""
    got = sitk.GetArrayFromImage(out_img).astype(np.float64)
    near_tie = np.abs(np.abs(exact_values - np.trunc(exact_values)) - 0.5) < 0.01
    assert np.all(np.abs(got - expected) <= 1)
    np.testing.assert_array_equal(got[~near_tie], expected[~near_tie])


# ---------------------------------------------------------------- grid and values

def test_target_size_formula():
    # 512*0.7/2 = 179.2 -> 179 ; 300*1.25/2 = 187.5 -> 188 (half up, not to even)
    assert target_size((512, 512, 300), (0.7, 0.7, 1.25), (2, 2, 2)) == (179, 179, 188)
    assert target_size((10, 9, 7), (0.7, 0.9, 3.0), (2, 2, 2)) == (4, 4, 11)
    assert target_size((1, 1, 1), (0.1, 0.1, 0.1), (2, 2, 2)) == (1, 1, 1)


def test_linear_ramp_exact_geometry_kept():
    # a linear function is reproduced exactly by trilinear interpolation: the expected values are the formula
    nx, ny, nz = 10, 9, 7
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    ramp = (13.37 * i - 7.11 * j + 29.3 * k - 500.25).astype(np.float32)
    src = sitk.GetImageFromArray(ramp)
    src.SetSpacing((0.7, 0.9, 3.0))  # z is upsampled, so the last z voxels fall outside the buffer
    src.SetOrigin((-12.5, 40.0, 3.25))
    src.SetDirection(ROT30)
    out = resample_image(src)
    assert out.GetSize() == (4, 4, 11)
    assert out.GetSpacing() == (2.0, 2.0, 2.0)
    assert out.GetOrigin() == src.GetOrigin() and out.GetDirection() == pytest.approx(ROT30)
    assert out.GetPixelID() == sitk.sitkInt16
    (cz, cy, cx), inside = _source_index(out, src)
    formula = 13.37 * np.clip(cx, 0, nx - 1) - 7.11 * np.clip(cy, 0, ny - 1) + 29.3 * np.clip(cz, 0, nz - 1) - 500.25
    assert not inside.all() and inside.any()
    expected = np.where(inside, _round_nearest(formula), AIR_HU)
    _assert_matches(out, expected, formula)
    # a plain integer cast would truncate toward zero; the ramp's negative values show that we round instead
    truncated = np.where(inside, np.trunc(formula), AIR_HU)
    assert np.any(sitk.GetArrayFromImage(out) != truncated)


def test_int16_input_interpolates_natively_truncating_toward_zero():
    # int16 in, int16 out: ITK interpolates in the input type (no cast of the whole input, the raw-SimpleITK cost);
    # values are the exact linear interpolation truncated toward zero, never more than 1 HU from rounding
    nx, ny, nz = 12, 10, 8
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    vol = (37 * i - 23 * j + 51 * k - 400).astype(np.int16)
    src = sitk.GetImageFromArray(vol)
    src.SetSpacing((0.7, 0.9, 1.3))
    out = resample_image(src, spacing=1.1)
    assert out.GetPixelID() == sitk.sitkInt16
    (cz, cy, cx), inside = _source_index(out, src)
    exact = 37.0 * np.clip(cx, 0, nx - 1) - 23.0 * np.clip(cy, 0, ny - 1) + 51.0 * np.clip(cz, 0, nz - 1) - 400.0
    got = sitk.GetArrayFromImage(out).astype(np.float64)
    near_integer = np.abs(exact - np.round(exact)) < 1e-6  # where float noise could land either side of an integer
    expected = np.where(inside, np.trunc(exact), AIR_HU)
    np.testing.assert_array_equal(got[~near_integer], expected[~near_integer])
    assert np.any(np.trunc(exact[inside]) != np.rint(exact[inside]))  # the case differs from rounding somewhere
    raw = sitk.Resample(src, out.GetSize(), sitk.Transform(), sitk.sitkLinear, src.GetOrigin(), out.GetSpacing(),
                        src.GetDirection(), float(AIR_HU), sitk.sitkInt16)
    np.testing.assert_array_equal(got, sitk.GetArrayFromImage(raw))


def test_linear_clips_to_int16_instead_of_wrapping():
    vol = np.full((4, 4, 4), 40000, np.int32)
    vol[0] = -40000
    out = sitk.GetArrayFromImage(resample_image(sitk.GetImageFromArray(vol), spacing=1.0))
    assert out.dtype == np.int16 and out.max() == 32767 and out.min() == -32768


def test_nearest_keeps_labels_and_type():
    labels = np.zeros((6, 8, 10), np.uint8)
    labels[2:5, 2:6, 3:8] = 1
    labels[3, 4, 5] = 7
    src = sitk.GetImageFromArray(labels)
    src.SetSpacing((0.9, 1.1, 1.7))
    out = resample_image(src, spacing=(0.5, 0.5, 0.5), interpolator="nearest")
    assert out.GetPixelID() == sitk.sitkUInt8
    (cz, cy, cx), inside = _source_index(out, src)
    # nearest = the voxel whose centre is closest (ties up), clamped to the buffer
    idx = [np.clip(np.floor(c + 0.5).astype(int), 0, n - 1) for c, n in zip((cz, cy, cx), labels.shape)]
    expected = np.where(inside, labels[tuple(idx)], 0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), expected)
    assert set(np.unique(sitk.GetArrayFromImage(out))) == {0, 1, 7}


@pytest.mark.parametrize("kwargs, match", [({"spacing": 0}, "spacing"), ({"spacing": (2, 2)}, "spacing"),
                                           ({"spacing": float("nan")}, "spacing"),
                                           ({"interpolator": "cubic"}, "interpolator")])
def test_bad_arguments(kwargs, match, phantom):
    with pytest.raises(ValueError, match=match):
        resample_image(sitk.GetImageFromArray(phantom()), **kwargs)


def test_rejects_2d_image():
    with pytest.raises(ValueError, match="3-D scalar image"):
        resample_image(sitk.GetImageFromArray(np.zeros((4, 4), np.int16)))


def test_hu_window(phantom):
    img = sitk.GetImageFromArray(phantom())
    img.SetSpacing((0.5, 0.6, 0.7))
    out = hu_window(img)
    hu = phantom().astype(np.float64)
    np.testing.assert_allclose(sitk.GetArrayFromImage(out), (np.clip(hu, -1000, 1000) + 1000) / 2000, atol=1e-6)
    assert out.GetSpacing() == img.GetSpacing() and out.GetPixelID() == sitk.sitkFloat32


# ---------------------------------------------------------------- real CT (pydicom test data)

def test_ct5n_to_2mm(ct5n_dir):
    src = read_image(ct5n_dir)
    out = resample_image(src)
    # 16*0.488281/2 = 3.91 -> 4 ; 5*2.5/2 = 6.25 -> 6
    assert out.GetSize() == (4, 4, 6) and out.GetSpacing() == (2.0, 2.0, 2.0)
    assert out.GetOrigin() == src.GetOrigin() and out.GetDirection() == src.GetDirection()
    expected, exact = _expected_linear(src, out)
    _assert_matches(out, expected, exact)


def test_ct_small_in_plane_hu_preserved(ct_small_path):
    src = read_image(ct_small_path, rules=ValidationRules(min_axis_size=1))
    out = resample_image(src, spacing=(2.0, 2.0, 5.0))
    assert out.GetSize() == (42, 42, 1)  # 128 * 0.661468 / 2 = 42.3
    assert out.GetOrigin() == src.GetOrigin()
    expected, exact = _expected_linear(src, out)
    _assert_matches(out, expected, exact)
    # mean HU over the central half of the field of view: 4096 source vs 441 output voxels; sampling at 2 mm
    # moves it by about 2 HU here (source std 251 HU), so 5 HU bounds a correct resampler with margin
    s = sitk.GetArrayFromImage(src)[0].astype(float)
    o = sitk.GetArrayFromImage(out)[0].astype(float)
    pos_s = np.arange(128) * src.GetSpacing()[0]
    pos_o = np.arange(42) * 2.0
    extent = 127 * src.GetSpacing()[0]
    cs = (pos_s >= extent / 4) & (pos_s <= 3 * extent / 4)
    co = (pos_o >= extent / 4) & (pos_o <= 3 * extent / 4)
    assert abs(o[np.ix_(co, co)].mean() - s[np.ix_(cs, cs)].mean()) < 5.0


# ---------------------------------------------------------------- one file: read -> validate -> resample -> write

def test_resample_file_writes_record(write_ct, tmp_path, phantom):
    src = write_ct("in/case7.nii.gz", spacing=(0.7, 0.8, 1.5))
    dest = tmp_path / "out" / "case7.nii.gz"
    rec = resample_file(src, dest)
    out = sitk.ReadImage(os.fspath(dest))
    assert out.GetPixelID() == sitk.sitkInt16 and out.GetSpacing() == (2.0, 2.0, 2.0)
    # 16*0.7/2 = 5.6 -> 6 ; 14*0.8/2 = 5.6 -> 6 ; 12*1.5/2 = 9
    assert rec.new_size == "6x6x9" and rec.orig_size == "16x14x12"
    assert rec.orig_spacing == "0.7x0.8x1.5" and rec.new_spacing == "2x2x2"
    arr = sitk.GetArrayFromImage(out)
    assert (rec.hu_min, rec.hu_max) == (float(arr.min()), float(arr.max()))
    assert rec.source == os.fspath(src.resolve()) and rec.path == os.fspath(dest.resolve())
    assert sorted(p.name for p in dest.parent.iterdir()) == ["case7.nii.gz"]


def test_every_rejection_writes_nothing(tmp_path, ct5n_dir, phantom):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = write_bad_inputs(inputs, ct5n_dir, phantom)
    out_dir = tmp_path / "out"
    for name, phrase in cases.items():
        with pytest.raises(ImageReadError) as info:
            resample_file(inputs / name, out_dir / f"{name}.nii.gz")
        assert phrase in info.value.reason, (name, info.value.reason)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
