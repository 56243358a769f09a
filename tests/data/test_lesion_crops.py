"""``smart cohort-crops``: lesion-centred crops from full CTs with a mask or a world-mm centre."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.cli import main as smart_main
from smart.data.cohort import read_cohort
from smart.data.lesion_crops import mask_centroid_mm, parse_label, read_lesion_table

SPACING = (1.0, 1.5, 2.5)   # (x, y, z) mm — anisotropic, resampled to 2 mm
ORIGIN = (-20.0, 10.0, 30.0)
SHAPE_ZYX = (16, 24, 32)
LESION_ZYX = (slice(6, 10), slice(8, 14), slice(20, 26))  # 800 HU block; everything else -900 HU


def _ct(path):
    array = np.full(SHAPE_ZYX, -900, np.int16)
    array[LESION_ZYX] = 800
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))
    mask = sitk.GetImageFromArray((array > 0).astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def _lesion_center_mm():
    # independent formula: centre index of the block (x, y, z order), times spacing, plus origin (identity direction)
    centre_xyz = [(s.start + s.stop - 1) / 2 for s in LESION_ZYX[::-1]]
    return [o + c * sp for o, c, sp in zip(ORIGIN, centre_xyz, SPACING)]


@pytest.fixture()
def lesion_table(tmp_path):
    mask = _ct(tmp_path / "ct1.nii.gz")
    sitk.WriteImage(mask, str(tmp_path / "ct1_mask.nii.gz"))
    empty = sitk.Image(mask)
    empty *= 0
    sitk.WriteImage(empty, str(tmp_path / "empty_mask.nii.gz"))
    cx, cy, cz = _lesion_center_mm()
    rows = [
        {"sample_id": "m1", "patient_id": "p1", "image": "ct1.nii.gz", "label": "DCB", "mask": "ct1_mask.nii.gz"},
        {"sample_id": "c1", "patient_id": "p1", "image": "ct1.nii.gz", "label": "ndb", "mask": "",
         "center_x": cx, "center_y": cy, "center_z": cz},
        {"sample_id": "bad_label", "patient_id": "p2", "image": "ct1.nii.gz", "label": "PR", "mask": "ct1_mask.nii.gz"},
        {"sample_id": "no_ct", "patient_id": "p3", "image": "missing.nii.gz", "label": 1, "mask": "ct1_mask.nii.gz"},
        {"sample_id": "empty_mask", "patient_id": "p4", "image": "ct1.nii.gz", "label": 0, "mask": "empty_mask.nii.gz"},
        {"sample_id": "no_centre", "patient_id": "p5", "image": "ct1.nii.gz", "label": 0, "mask": ""},
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "lesions.csv", index=False)
    return tmp_path


def test_parse_label():
    assert [parse_label(v) for v in ("DCB", "ndb", "1", "0.0", 0, 1)] == [1, 0, 1, 0, 0, 1]
    for bad in ("PR", "2", "", "0.5"):
        with pytest.raises(ValueError, match="is not 0/1"):
            parse_label(bad)


def test_mask_centroid_matches_independent_formula(tmp_path):
    mask = _ct(tmp_path / "ct.nii.gz")
    np.testing.assert_allclose(mask_centroid_mm(mask), _lesion_center_mm(), atol=1e-9)
    with pytest.raises(ValueError, match="mask is empty"):
        mask_centroid_mm(mask * 0)


def test_table_needs_mask_or_centre_columns(tmp_path):
    pd.DataFrame([{"sample_id": "a", "patient_id": "p", "image": "x.nii.gz", "label": 1}]).to_csv(
        tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"t\.csv: needs a 'mask' column or all of"):
        read_lesion_table(tmp_path / "t.csv")


def test_cohort_crops_step(lesion_table, capsys):
    out = lesion_table / "out"
    rc = smart_main(["cohort-crops", "--cohort", str(lesion_table / "lesions.csv"), "--out-dir", str(out),
                     "--crop-size", "8", "--spacing", "2.0"])
    assert rc == 0
    rejected = pd.read_csv(out / "rejected.csv").set_index("sample_id")
    assert sorted(rejected.index) == ["bad_label", "empty_mask", "no_centre", "no_ct"]
    assert "'PR' is not 0/1" in rejected.at["bad_label", "reason"]
    assert rejected.at["no_ct", "file"].endswith("missing.nii.gz")
    assert rejected.at["empty_mask", "reason"] == "mask is empty (no non-zero voxel)"
    assert "no mask and no finite centre" in rejected.at["no_centre", "reason"]

    cohort = read_cohort(out / "cohort.csv")  # the classification-cohort contract holds
    assert list(cohort.sample_id) == ["m1", "c1"] and cohort.label.tolist() == [1, 0]
    np.testing.assert_allclose(cohort[["crop_center_x_mm", "crop_center_y_mm", "crop_center_z_mm"]].to_numpy(),
                               [_lesion_center_mm()] * 2, atol=1e-6)
    for image in cohort.image:
        crop = sitk.ReadImage(image)
        assert crop.GetSize() == (8, 8, 8) and crop.GetSpacing() == (2.0, 2.0, 2.0)
        array = sitk.GetArrayFromImage(crop)
        # the lesion (9 x 6 x 10 mm) sits at the crop centre; the crop corners are background
        assert array[4, 4, 4] > 400 and array[0, 0, 0] < -800
        # the crop's own geometry puts its centre voxel on the lesion centre (within half a 2 mm voxel)
        centre = crop.TransformIndexToPhysicalPoint((4, 4, 4))
        assert np.all(np.abs(np.subtract(centre, _lesion_center_mm())) <= 1.0 + 1e-6)
    assert "2 crops" in capsys.readouterr().out


def test_cohort_crops_step_bad_table(tmp_path, capsys):
    rc = smart_main(["cohort-crops", "--cohort", str(tmp_path / "none.csv"), "--out-dir", str(tmp_path / "o")])
    assert rc == 2 and "lesion table not found" in capsys.readouterr().err


def test_crops_that_hold_no_image_are_rejected_and_counted(tmp_path, capsys):
    # Issue 20, item 7 (second example of the kind): the same rule for lesion / response crops. The CT resampled to
    # 2 mm has 16 x 18 x 20 voxels (x, y, z); crops of 8^3 centred on the CT's first voxel keep 4/8 per axis.
    import json

    _ct(tmp_path / "ct1.nii.gz")
    x0, y0, z0 = ORIGIN
    mid_y, mid_z = y0 + 17.0, z0 + 18.0  # inner voxels of the 2 mm grid
    rows = [("face", x0, mid_y, mid_z),      # centre on the x = 0 face: 1/2 inside -> kept
            ("edge", x0, y0, mid_z),         # on an edge of two axes: 1/4 inside -> kept (the threshold is inclusive)
            ("corner", x0, y0, z0),          # on a corner: 1/8 inside -> rejected
            ("outside", x0 - 50.0, mid_y, mid_z)]  # 50 mm outside the CT -> rejected
    pd.DataFrame([{"sample_id": s, "patient_id": "p1", "image": "ct1.nii.gz", "label": 1, "center_x": x,
                   "center_y": y, "center_z": z} for s, x, y, z in rows]).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    assert smart_main(["cohort-crops", "--cohort", str(tmp_path / "t.csv"), "--out-dir", str(out),
                       "--crop-size", "8"]) == 0
    rejected = pd.read_csv(out / "rejected.csv").set_index("sample_id")
    assert sorted(rejected.index) == ["corner", "outside"]
    assert rejected.at["corner", "reason"] == ("no image: only 12.5% of the crop (8, 8, 8) lies inside the image "
                                               "(20, 18, 16) (minimum 25%): the rest would be padding")
    assert rejected.at["outside", "reason"].startswith("no image: crop centre lies outside the image (voxel index "
                                                       "(9.0, 8.5, -25.0)")
    assert rejected.at["corner", "file"].endswith("ct1.nii.gz")
    cohort = read_cohort(out / "cohort.csv")
    assert cohort.sample_id.tolist() == ["face", "edge"]
    summary = json.loads((out / "cohort.summary.json").read_text())
    assert summary["crops"] == 2 and summary["rejected"] == summary["rejected_no_image"] == 2
    err = capsys.readouterr().err
    assert "rejected corner: " in err and err.count("\n") == 2  # one line per rejection
    # a stricter threshold from the command line moves the edge crop out too
    assert smart_main(["cohort-crops", "--cohort", str(tmp_path / "t.csv"), "--out-dir", str(tmp_path / "o2"),
                       "--crop-size", "8", "--min-in-image", "0.3"]) == 0
    assert read_cohort(tmp_path / "o2" / "cohort.csv").sample_id.tolist() == ["face"]
