"""smart.data.geometry: the NIfTI qform/sform rule applied wherever a NIfTI is read, orientation labels, and oblique /
flipped grids kept through resampling (issue #10, kind 3). Inputs written here with nibabel / SimpleITK."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from clinical_generators import ct_hu_volume, write_nifti

from smart.cli import main as smart_main
from smart.data.geometry import orientation_label
from smart.data.io import ImageReadError, image_provenance, read_image
from smart.data.resample import resample_file


def _reason(path) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == os.fspath(path)
    return info.value.reason


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
        # int16 is interpolated natively and truncated toward zero (docs/data_resample.md): within 1 HU
        assert abs(int(sitk.GetArrayFromImage(out)[5, 4, 3]) - int(hu[5, 4, 3])) <= 1
