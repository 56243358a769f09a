"""Issue #10, kinds 1, 2, 3 and 7: clinical DICOM/NIfTI inputs that readers get wrong, each with its right value.

Every input is generated here (tests/data/clinical_generators.py) from explicit numbers; the expected values are
computed from those numbers, never from the reader under test.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from clinical_generators import ct_hu_volume, write_ct_series, write_nifti

from smart.cli import main as smart_main
from smart.data.geometry import orientation_label
from smart.data.io import ImageReadError, image_provenance, read_image
from smart.data.resample import resample_file
from smart.data.validation import ValidationRules


def _reason(path, **kw) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kw)
    assert info.value.path == os.fspath(path)
    return info.value.reason


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


# ------------------------------------------------------------------ kind 3: NIfTI geometry by one rule

_ROT90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _affines():
    q = np.eye(4)
    q[:3, :3] = np.diag([1.0, 1.0, 2.0])
    q[:3, 3] = (-5.0, -6.0, 10.0)
    s = q.copy()
    s[:3, :3] = _ROT90 @ q[:3, :3]
    s[:3, 3] += (30.0, 0.0, 0.0)
    return q, s


def _lps_point(affine_ras, ijk):
    p = affine_ras @ np.array([*ijk, 1.0])
    return np.array([-p[0], -p[1], p[2]])


@pytest.mark.parametrize("s_code", [1, 2, 4])
def test_qform_sform_disagree_sform_wins(tmp_path, s_code):
    """The issue's example (90 degree rotation + 30 mm). ITK follows the qform for sform_code 2/4; the standard
    (and nibabel/FSL) follows the sform whatever its positive code."""
    q, s = _affines()
    data = ct_hu_volume((4, 5, 6)).transpose(2, 1, 0)  # (i, j, k)
    path = write_nifti(tmp_path / "ct.nii.gz", data, qform=q, sform=s, qform_code=1, sform_code=s_code)
    image = read_image(path)
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint(ijk), _lps_point(s, ijk), atol=1e-4)
    assert image_provenance(image)["geometry"] == "nifti sform; qform differs"
    rec = resample_file(path, tmp_path / "out.nii.gz", spacing=(1.0, 1.0, 2.0))
    assert rec.geometry == "nifti sform; qform differs"
    # the written CT sits where the sform says, so any later reader agrees
    out = sitk.ReadImage(str(tmp_path / "out.nii.gz"))
    np.testing.assert_allclose(out.TransformIndexToPhysicalPoint((5, 4, 3)), _lps_point(s, (5, 4, 3)), atol=1e-3)


def test_qform_only_and_sform_scale_differs_from_pixdim(tmp_path):
    """Second examples: sform_code 0 -> qform; an sform whose column lengths differ from pixdim -> the sform's
    spacing (ITK keeps pixdim)."""
    q, s = _affines()
    data = ct_hu_volume((4, 5, 6)).transpose(2, 1, 0)
    only_q = read_image(write_nifti(tmp_path / "q.nii", data, qform=q, sform=None))
    assert image_provenance(only_q)["geometry"] == "nifti qform"
    np.testing.assert_allclose(only_q.TransformIndexToPhysicalPoint((1, 2, 3)), _lps_point(q, (1, 2, 3)))
    only_s = read_image(write_nifti(tmp_path / "s.nii", data, qform=None, sform=s))
    assert only_s.GetSpacing() == pytest.approx((1.0, 1.0, 2.0))
    assert image_provenance(only_s)["geometry"] == "nifti sform"
    np.testing.assert_allclose(only_s.TransformIndexToPhysicalPoint((1, 2, 3)), _lps_point(s, (1, 2, 3)))


def test_shear_and_missing_transform_rejected(tmp_path):
    q, s = _affines()
    sheared = s.copy()
    sheared[0, 2] = 0.6  # k axis leans along x
    data = ct_hu_volume((4, 5, 6)).transpose(2, 1, 0)
    assert "sheared" in _reason(write_nifti(tmp_path / "shear.nii.gz", data, qform=q, sform=sheared))
    assert "orientation is unknown" in _reason(write_nifti(tmp_path / "none.nii", data, qform=None, sform=None))


def test_flipped_and_oblique_geometry_kept_and_recorded(tmp_path):
    """Flipped axes (direction diag(-1,-1,1)) and an oblique grid survive resampling (same physical positions) and
    are named in the manifest."""
    hu = ct_hu_volume((8, 10, 12))
    flipped = sitk.GetImageFromArray(hu)
    flipped.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    flipped.SetOrigin((40.0, 30.0, -10.0))
    sitk.WriteImage(flipped, str(tmp_path / "flip.nrrd"))
    c, sn = np.cos(0.3), np.sin(0.3)
    oblique = sitk.GetImageFromArray(hu)
    oblique.SetDirection((c, -sn, 0, sn, c, 0, 0, 0, 1))
    sitk.WriteImage(oblique, str(tmp_path / "obl.nii.gz"))
    assert orientation_label(flipped.GetDirection()) == "RAS"
    assert smart_main(["resample", "--input", str(tmp_path / "flip.nrrd"), str(tmp_path / "obl.nii.gz"),
                       "--out-dir", str(tmp_path / "o"), "--manifest", str(tmp_path / "m.csv"), "--rejected",
                       str(tmp_path / "r.csv"), "--spacing", "1"]) == 0
    manifest = pd.read_csv(tmp_path / "m.csv", dtype=str).set_index("case_id")
    assert manifest.orientation["flip"] == "RAS" and manifest.orientation["obl"] == "oblique LPS"
    assert manifest.geometry["flip"] == "header" and manifest.geometry["obl"].startswith("nifti")
    for name, src in (("flip", flipped), ("obl", oblique)):
        out = sitk.ReadImage(str(tmp_path / "o" / f"{name}.nii.gz"))
        np.testing.assert_allclose(out.GetDirection(), src.GetDirection(), atol=1e-5)
        np.testing.assert_allclose(out.TransformIndexToPhysicalPoint((3, 4, 5)),
                                   src.TransformIndexToPhysicalPoint((3, 4, 5)), atol=1e-3)
        assert sitk.GetArrayFromImage(out)[5, 4, 3] == hu[5, 4, 3]


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
