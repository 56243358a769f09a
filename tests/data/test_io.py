"""smart.data.io / smart.data.validation: real DICOM from pydicom's test data, generated bad inputs of every kind."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from clinical_generators import ct_hu_volume, write_ct_series

from smart.cli import main as smart_main
from smart.data.io import case_id_from_path, image_provenance, is_image_file, read_image
from smart.data.resample import resample_file
from smart.data.validation import (ImageReadError, ValidationRules, check_intensities, check_modality,
                                   check_slice_positions)


def phantom_hu(shape_zyx=(12, 14, 16)) -> np.ndarray:
    """Small int16 HU volume with air, for files written here (the conftest phantom is used through fixtures)."""
    return np.random.default_rng(1).integers(-1000, 500, shape_zyx).astype(np.int16)


def _hu_by_pydicom(files):
    """Independent HU decoding: pixel data * RescaleSlope + RescaleIntercept, slices sorted by position (z up)."""
    dss = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    return np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss]), dss


def _reason(path, **kw) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kw)
    assert info.value.path == os.fspath(path)
    return info.value.reason


def _write_mha(path, spacing: str, extra: str = "", array=None):
    """A MetaImage written by hand, so the header can say what SimpleITK's writer would refuse to write."""
    array = phantom_hu((4, 5, 6)) if array is None else array
    header = (f"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
              f"ElementSpacing = {spacing}\nDimSize = {array.shape[2]} {array.shape[1]} {array.shape[0]}\n{extra}"
              f"ElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    path.write_bytes(header.encode() + array.astype("<i2").tobytes())
    return path


def _nifti_with_pixdim(tmp_path, name, value):
    """A .nii.gz whose header pixdim[1] (x spacing) is ``value``; ITK itself would read 1 mm instead."""
    raw = tmp_path / "raw.nii"
    sitk.WriteImage(sitk.GetImageFromArray(phantom_hu((4, 5, 6))), os.fspath(raw))
    data = bytearray(raw.read_bytes())
    data[80:84] = struct.pack("<f", value)  # pixdim[0..7] float32 from byte 76; pixdim[1] is x
    out = tmp_path / name
    out.write_bytes(gzip.compress(bytes(data)))
    return out


# ---------------------------------------------------------------- real DICOM

def test_ct5n_series_geometry_and_hu(ct5n_dir):
    img = read_image(ct5n_dir)
    hu, dss = _hu_by_pydicom(sorted(ct5n_dir.iterdir()))
    assert img.GetSize() == (16, 16, 5)
    np.testing.assert_allclose(img.GetSpacing(), (0.488281, 0.488281, 2.5), atol=1e-6)
    lowest = dss[0].ImagePositionPatient
    np.testing.assert_allclose(img.GetOrigin(), [float(v) for v in lowest], atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)
    assert float(hu.min()) == -888.0 and float(hu.max()) == 85.0  # what pydicom decodes, written here by hand


def test_single_dicom_file_hu(ct_small_path):
    img = read_image(ct_small_path, rules=ValidationRules(min_axis_size=1))
    ds = pydicom.dcmread(ct_small_path)
    assert img.GetSize() == (128, 128, 1)
    np.testing.assert_allclose(img.GetSpacing()[:2], [float(v) for v in ds.PixelSpacing], atol=1e-6)
    np.testing.assert_allclose(img.GetOrigin(), [float(v) for v in ds.ImagePositionPatient], atol=1e-5)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img)[0], expected)


def test_single_slice_rejected_by_default(ct_small_path):
    assert "single slice" in _reason(ct_small_path)


def test_missing_slice_rejected(ct5n_copy):
    middle = sorted(ct5n_copy.iterdir(), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))[2]
    middle.unlink()
    reason = _reason(ct5n_copy)
    assert "non-uniform slice spacing" in reason and "5" in reason and "2.5" in reason


def test_mr_modality_rejected_series_and_file(ct5n_copy):
    for f in ct5n_copy.iterdir():
        ds = pydicom.dcmread(f)
        ds.Modality = "MR"
        ds.save_as(f)
    assert _reason(ct5n_copy) == "modality 'MR' is not CT"
    single = next(ct5n_copy.iterdir())
    assert _reason(single, rules=ValidationRules(min_axis_size=1)) == "modality 'MR' is not CT"
    assert read_image(ct5n_copy, require_ct=False).GetSize() == (16, 16, 5)


def test_series_selection(ct5n_copy):
    # a second, smaller series in the same folder: the largest is read unless a UID is given
    other_uid = "1.2.826.0.1.3680043.8.498.1"
    for i, f in enumerate(sorted(ct5n_copy.iterdir())[:2]):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = other_uid
        ds.SOPInstanceUID = f"{other_uid}.{i + 1}"
        ds.save_as(ct5n_copy / f"other{i}.dcm")
    assert read_image(ct5n_copy).GetSize() == (16, 16, 5)
    assert read_image(ct5n_copy, series_uid=other_uid).GetSize()[2] == 2
    reason = _reason(ct5n_copy, series_uid="9.9.9")
    assert "'9.9.9' not in the folder" in reason and other_uid in reason


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("no images")
    assert "no DICOM series" in _reason(tmp_path)


# ---------------------------------------------------------------- file formats

@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha"])
def test_formats_roundtrip(write_ct, name):
    vol = phantom_hu()
    path = write_ct(name, vol, spacing=(0.7, 0.8, 1.5), origin=(-10.0, 20.0, 5.0))
    img = read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol)
    np.testing.assert_allclose(img.GetSpacing(), (0.7, 0.8, 1.5), rtol=1e-6)
    np.testing.assert_allclose(img.GetOrigin(), (-10.0, 20.0, 5.0), atol=1e-5)


def test_4d_with_one_timepoint_is_3d(tmp_path):
    import nibabel as nib

    vol = np.transpose(phantom_hu(), (2, 1, 0))[..., None]  # nibabel is x-fastest (x, y, z, t)
    nib.save(nib.Nifti1Image(vol, np.diag([0.7, 0.8, 1.5, 1.0])), tmp_path / "t1.nii.gz")
    img = read_image(tmp_path / "t1.nii.gz")
    assert img.GetDimension() == 3 and img.GetSize() == vol.shape[:3]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), phantom_hu())


@pytest.mark.parametrize("slope, inter", [(1.0, 0.0), (0.5, -1024.0)])
def test_verified_gzip_read_equals_itk(tmp_path, slope, inter):
    # one checked decompression, the voxels built from it (unscaled) or read by ITK from a plain copy (rescaled):
    # either way the image equals ITK's own read of the .nii.gz, geometry included
    import nibabel as nib

    affine = np.array([[0.0, -0.8, 0.0, 12.5], [0.7, 0.0, 0.0, -40.0], [0.0, 0.0, 1.3, 7.25], [0, 0, 0, 1]])
    vol = (phantom_hu().transpose(2, 1, 0) - 24).astype(np.int16)  # nibabel order (x, y, z)
    nii = nib.Nifti1Image(vol, affine)
    nii.header.set_slope_inter(slope, inter)
    path = tmp_path / "geo.nii.gz"
    nib.save(nii, path)
    ours, itk = read_image(path), sitk.ReadImage(os.fspath(path))
    assert ours.GetPixelID() == itk.GetPixelID()
    assert (ours.GetOrigin(), ours.GetSpacing()) == (itk.GetOrigin(), itk.GetSpacing())
    assert ours.GetDirection() == itk.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(itk))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), vol.transpose(2, 1, 0) * slope + inter)


# ---------------------------------------------------------------- rejections (every kind, clear reason)

def test_truncated_nii_gz(write_ct, tmp_path):
    good = write_ct("good.nii.gz").read_bytes()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(good[: len(good) * 2 // 3])
    assert "truncated gzip stream" in _reason(bad)
    # without the CRC pass ITK zero-fills the missing part: the documented cost of --no-verify-gzip
    img = read_image(bad, rules=ValidationRules(verify_gzip=False))
    assert img.GetSize() == (16, 14, 12)


@pytest.mark.parametrize("where", ["crc", "middle"])
def test_corrupt_gzip_payload(write_ct, tmp_path, where):
    # ITK itself returns such data without complaint (measured: a 64-byte flip mid-stream changed 393 241 voxels)
    data = bytearray(gzip.compress(write_ct("plain.nii").read_bytes(), compresslevel=1))
    if where == "crc":
        data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])  # CRC-32 trailer: only a full decompression sees it
    else:
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(b ^ 0x5A for b in data[mid:mid + 64])
    bad = tmp_path / f"{where}.nii.gz"
    bad.write_bytes(bytes(data))
    assert _reason(bad).startswith("corrupt gzip stream")


def test_not_gzip_at_all(tmp_path):
    bad = tmp_path / "garbage.nii.gz"
    bad.write_bytes(b"this is not an image" * 10)
    assert _reason(bad).startswith("corrupt gzip stream (")
    plain = tmp_path / "garbage.mha"
    plain.write_bytes(b"this is not an image" * 10)
    assert _reason(plain).startswith("unreadable or unsupported image file: ")


def test_empty_file(tmp_path):
    (tmp_path / "empty.nrrd").write_bytes(b"")
    assert "unreadable or unsupported image file" in _reason(tmp_path / "empty.nrrd")


def test_missing_path(tmp_path):
    assert _reason(tmp_path / "nope.nii.gz") == "no such file or folder"


def test_2d_image(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(phantom_hu()[0]), os.fspath(tmp_path / "slice.nii.gz"))
    assert "a 2-D image" in _reason(tmp_path / "slice.nii.gz")


def test_4d_image(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 3), np.int16), np.eye(4)), tmp_path / "dyn.nii.gz")
    assert "a 4-D image" in _reason(tmp_path / "dyn.nii.gz")


@pytest.mark.parametrize("value", [0.0, -0.7, float("nan")])
def test_bad_nifti_spacing(tmp_path, value):
    path = _nifti_with_pixdim(tmp_path, "sp.nii.gz", value)
    assert "invalid voxel spacing" in _reason(path)


@pytest.mark.parametrize("spacing", ["0 1 1", "1 -2 1", "nan 1 1"])
def test_bad_metaimage_spacing(tmp_path, spacing):
    assert "invalid voxel spacing" in _reason(_write_mha(tmp_path / "sp.mha", spacing))


def test_metaimage_modality(tmp_path):
    mr = _write_mha(tmp_path / "m.mha", "1 1 1", "Modality = MET_MOD_MR\n")
    assert _reason(mr) == "modality 'MET_MOD_MR' is not CT"
    assert read_image(_write_mha(tmp_path / "c.mha", "1 1 1", "Modality = MET_MOD_CT\n")).GetSize() == (6, 5, 4)


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.nrrd", "nan.mha", "nan.mhd"])
def test_nan_voxels(tmp_path, name):
    # ITK's NIfTI reader turns NaN into 0, so the NIfTI case counts on nibabel's voxels; both go through the one
    # rule (smart.data.validation.check_finite_voxels), in read_image itself, for every format
    vol = phantom_hu().astype(np.float32)
    vol[2, 3, 4] = np.nan
    vol[5, 6, 7] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(vol), os.fspath(tmp_path / name))
    assert _reason(tmp_path / name) == f"2 non-finite voxel value(s) (1 NaN, 1 Inf) of {vol.size}"
    with pytest.raises(ImageReadError, match="2 non-finite"):
        check_intensities(tmp_path / name, vol, ValidationRules())


def test_memory_guard(write_ct):
    path = write_ct("big.nii.gz")  # 16 x 14 x 12 = 2688 voxels
    reason = _reason(path, rules=ValidationRules(max_voxels=2687))
    assert "2688 voxels" in reason and "max_voxels=2687" in reason
    assert read_image(path, rules=ValidationRules(max_voxels=2688)).GetSize() == (16, 14, 12)


def test_multicomponent_rejected(tmp_path):
    rgb = sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, os.fspath(tmp_path / "rgb.mha"))
    assert "3 components per voxel" in _reason(tmp_path / "rgb.mha")


# ---------------------------------------------------------------- pure rules

def test_check_intensities_rules():
    rules = ValidationRules()
    vol = phantom_hu().astype(np.float32)
    assert check_intensities("v", vol, rules) == (float(vol.min()), float(vol.max()))
    nan = vol.copy()
    nan[1, 2, 3] = np.nan
    nan[0, 0, 0] = np.inf
    with pytest.raises(ImageReadError, match="2 non-finite voxel"):
        check_intensities("v", nan, rules)
    with pytest.raises(ImageReadError, match=r"constant image \(every voxel is -1000\)"):
        check_intensities("v", np.full((3, 3, 3), -1000, np.int16), rules)
    with pytest.raises(ImageReadError, match="no air"):
        check_intensities("v", (vol + 1024).clip(0, 4095), rules)  # raw stored values, intercept not applied
    with pytest.raises(ImageReadError, match="no air"):
        check_intensities("v", (vol + 1000) / 2000, rules)  # already normalised
    with pytest.raises(ImageReadError, match="outside the plausible CT range"):
        check_intensities("v", np.array([-1000.0, 40000.0]), rules)


def test_check_slice_positions():
    rules = ValidationRules()
    straight = [(0, 0, z) for z in (5.0, 0.0, 2.5, 7.5)]  # unordered on purpose
    assert check_slice_positions("s", straight, (0, 0, 1), rules) == pytest.approx(2.5)
    with pytest.raises(ImageReadError, match="gantry tilt"):
        check_slice_positions("s", [(0, 0.0, 0), (0, 1.0, 2.5), (0, 2.0, 5.0)], (0, 0, 1), rules)
    with pytest.raises(ImageReadError, match="duplicate slice positions"):
        check_slice_positions("s", [(0, 0, 0), (0, 0, 0), (0, 0, 2.5)], (0, 0, 1), rules)


def test_check_modality():
    check_modality("f", None)
    check_modality("f", "CT ")
    with pytest.raises(ImageReadError, match="'PT' is not CT"):
        check_modality("f", "PT")


@pytest.mark.parametrize("kwargs", [{"max_voxels": 0}, {"min_axis_size": 0}, {"hu_min": 5, "hu_max": 5},
                                    {"air_threshold_hu": float("nan")}, {"slice_gap_tolerance": 1.5}])
def test_rules_reject_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ValidationRules(**kwargs)


def test_case_ids(tmp_path, ct5n_dir):
    assert case_id_from_path("/a/b/LIDC-0001.nii.gz") == "LIDC-0001"
    # a lossy readable form carries a hash of the path, so "scan one" and "scan_one" never meet
    assert case_id_from_path("/a/b/scan one.NRRD") == "scan_one___h" + hashlib.sha1(b"scan one").hexdigest()[:10]
    assert case_id_from_path("/a/b/scan_one.nrrd") == "scan_one"
    assert case_id_from_path("/a/b/x.y.mha") == "x.y"
    assert case_id_from_path(ct5n_dir) == "CT5N"
    assert is_image_file("A.NII.GZ") and is_image_file("b.dcm") and not is_image_file("notes.csv")
    shutil.copy(ct5n_dir / "2062", tmp_path / "2062")
    assert case_id_from_path(tmp_path / "2062") == "2062"


# ================================================================ issue #10: clinical inputs (tests/clinical_generators.py)

# ------------------------------------------------------------------ kind 1: per-slice rescale


def test_first_slice_unsigned_others_intercept_minus_1024(tmp_path):
    """The issue's example: slice 0 intercept 0 (stored >= 0), slices 1-7 intercept -1024, 12 bits stored."""
    hu = ct_hu_volume((8, 10, 12))
    hu[0] = np.abs(hu[0])  # slice 0 holds no negative HU, so intercept 0 and unsigned storage are exact there
    write_ct_series(tmp_path / "ct", hu, spacing=(1.0, 1.0, 2.0), intercepts=[0.0] + [-1024.0] * 7,
                    bits_stored=12, signed=False)
    image = read_image(tmp_path / "ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), hu.astype(np.float32))
    rec = resample_file(tmp_path / "ct", tmp_path / "out.nii.gz", spacing=(1.0, 1.0, 2.0))
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out.nii.gz"))).astype(np.int32)
    assert out.shape == hu.shape and np.abs(out - hu).max() <= 1
    assert (rec.hu_min, rec.hu_max) == (float(hu.min()), float(hu.max())) and rec.hu_min < -900


def test_per_slice_fractional_slope(tmp_path):
    """Second example of the kind: slope 0.5 / intercept -1000.25 on odd slices, 1 / -1024 on even ones (signed)."""
    rng = np.random.default_rng(3)
    d = 6
    slopes = [1.0 if k % 2 == 0 else 0.5 for k in range(d)]
    intercepts = [-1024.0 if k % 2 == 0 else -1000.25 for k in range(d)]
    stored = rng.integers(-20, 2200, size=(d, 9, 11))
    hu = stored * np.asarray(slopes)[:, None, None] + np.asarray(intercepts)[:, None, None]
    folder = tmp_path / "ct"
    # hu is exactly stored * slope + intercept, so the generator's rounding back to stored values is exact
    write_ct_series(folder, hu, slopes=slopes, intercepts=intercepts, signed=True)
    image = read_image(folder)
    assert image.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), hu, atol=1e-3)


# ------------------------------------------------------------------ kind 2: no silent series choice


def test_two_series_with_equal_counts_rejected(tmp_path):
    hu = ct_hu_volume((6, 8, 8))
    folder = tmp_path / "study"
    a = write_ct_series(folder, hu, prefix="soft")[0].SeriesInstanceUID
    b = write_ct_series(folder, hu + 1, prefix="sharp")[0].SeriesInstanceUID
    reason = _reason(folder)
    assert "ambiguous" in reason and a in reason and b in reason and "--series-uid" in reason
    assert np.array_equal(sitk.GetArrayFromImage(read_image(folder, series_uid=b)), hu + 1)

    out = tmp_path / "out"
    args = ["resample", "--input", str(folder), "--out-dir", str(out), "--manifest", str(tmp_path / "m.csv"),
            "--rejected", str(tmp_path / "r.csv")]
    assert smart_main(args) == 1
    rejected = pd.read_csv(tmp_path / "r.csv")
    assert len(rejected) == 1 and "ambiguous" in rejected.reason[0]
    assert smart_main(args + ["--series-uid", a]) == 0
    manifest = pd.read_csv(tmp_path / "m.csv", dtype=str)
    assert manifest.series_uid.tolist() == [a] and manifest.geometry.tolist() == ["dicom"]


def test_rule_largest_series_and_localizer_set_aside(tmp_path):
    """Second example: a volume, a smaller reconstruction and an equally long scout. The rule (localizers aside,
    most files wins) picks the volume, and the manifest names it."""
    hu = ct_hu_volume((8, 8, 8))
    folder = tmp_path / "study"
    volume = write_ct_series(folder, hu, prefix="vol")[0].SeriesInstanceUID
    write_ct_series(folder, hu[:4], prefix="thick")
    write_ct_series(folder, hu, prefix="scout", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    image = read_image(folder)
    assert image_provenance(image)["series_uid"] == volume
    assert smart_main(["resample", "--input", str(folder), "--out-dir", str(tmp_path / "o"), "--manifest",
                       str(tmp_path / "m.csv"), "--rejected", str(tmp_path / "r.csv")]) == 0
    assert pd.read_csv(tmp_path / "m.csv", dtype=str).series_uid.tolist() == [volume]


# ------------------------------------------------------------------ kind 7: finite but implausible


@pytest.mark.parametrize("spacing, words", [((1e-4, 1.0, 1.0), "implausible voxel spacing"),
                                            ((0.8, 0.8, 150.0), "implausible voxel spacing"),
                                            ((15.0, 15.0, 15.0), "implausible physical extent")])
def test_implausible_spacing_and_extent(tmp_path, spacing, words):
    hu = ct_hu_volume((200, 6, 6)) if words.endswith("extent") else ct_hu_volume((6, 6, 6))
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing(spacing)
    path = tmp_path / "ct.mha"
    sitk.WriteImage(img, str(path))
    assert words in _reason(path)


def test_implausible_dicom_pixel_spacing(tmp_path):
    write_ct_series(tmp_path / "ct", ct_hu_volume((4, 6, 6)), spacing=(0.001, 0.001, 2.0))
    assert "implausible voxel spacing" in _reason(tmp_path / "ct")


def test_implausible_hu(tmp_path):
    from smart.data.validation import check_intensities

    hu = ct_hu_volume((4, 6, 6)).astype(np.float32)
    hu[0, 0, 0] = -20000.0  # finite, inside int16, but no scanner stores it as HU
    with pytest.raises(ImageReadError, match="outside the plausible CT range"):
        check_intensities("v", hu, ValidationRules())
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(hu), str(path))
    with pytest.raises(ImageReadError, match=r"\[-20000, .*plausible"):
        resample_file(path, tmp_path / "o.nii.gz")


# ================================================================ issue #20 item 4: one non-finite rule, every reader


def test_non_finite_rule_in_every_reader(tmp_path):
    """check_finite_voxels is the one rule: read_image (CTs, masks, zero-shot, consensus, import), read_array_zyx
    (stored crops: cohort, zero-shot) and the OrganMNIST npz reader all reject NaN/Inf with the same reason."""
    from smart.data.io import read_array_zyx
    from smart.data.organmnist import load_organmnist3d
    from smart.data.validation import check_finite_voxels

    vol = phantom_hu((4, 5, 6)).astype(np.float32)
    vol[1, 2, 3] = -np.inf
    path = tmp_path / "crop.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(vol), os.fspath(path))
    reason = f"1 non-finite voxel value(s) (0 NaN, 1 Inf) of {vol.size}"
    for read in (read_array_zyx, lambda p: read_image(p, require_ct=False)):
        with pytest.raises(ImageReadError) as info:
            read(path)
        assert (info.value.path, info.value.reason) == (os.fspath(path), reason)
    images = np.zeros((2, 4, 4, 4), np.float32)
    images[1, 0, 0, 0] = np.nan
    npz = tmp_path / "organmnist3d.npz"
    np.savez(npz, train_images=images, train_labels=np.zeros((2, 1), np.int64))
    with pytest.raises(ImageReadError, match=r"organmnist3d.npz\[train_images\]: 1 non-finite voxel value\(s\) "
                                             r"\(1 NaN, 0 Inf\) of 128"):
        load_organmnist3d(npz, "train")
    check_finite_voxels("ints", np.full(3, np.iinfo(np.int16).min, np.int16))  # integers cannot be non-finite
