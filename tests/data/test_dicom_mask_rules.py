"""Masks from DICOM, completed (issue 20, item 8): FRACTIONAL SEG by the standard's threshold, repeated segment / ROI
names united, a repeated RTSTRUCT contour that does not erase its slice, overlapping pieces united, holes by nesting
depth (docs/data_preparation.md "Masks from DICOM, completed"). SEG files are written with highdicom 0.28.2,
RTSTRUCT files with pydicom (tests/clinical_generators.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from clinical_generators import ct_hu_volume, write_ct_series, write_rtstruct, write_seg

from smart.cli import main as smart_main
from smart.data.dicom_seg import FRACTIONAL_THRESHOLD, read_seg, segment_image, select_segments
from smart.data.rtstruct import rasterise_contours
from smart.inputs import InputFileError


def _grid(shape_zyx=(3, 12, 12)) -> sitk.Image:
    """1 mm voxels at the origin, identity direction: pixel (column c, row r) of slice k is centred at (c, r, k) mm."""
    return sitk.Image(shape_zyx[::-1], sitk.sitkUInt8)


def _square(lo: float, hi: float, z: float = 1.0) -> np.ndarray:
    """A closed planar square contour from (lo, lo) to (hi, hi) mm in the plane z (counter-clockwise)."""
    return np.array([[lo, lo, z], [hi, lo, z], [hi, hi, z], [lo, hi, z]], dtype=float)


def _pixels(lo: float, hi: float) -> set[tuple[int, int]]:
    """Pixel centres (row, column) strictly inside the square (bounds at half-integers: no centre on an edge)."""
    inside = [i for i in range(12) if lo < i < hi]
    return {(r, c) for r in inside for c in inside}


def _slice(mask: np.ndarray, k: int = 1) -> set[tuple[int, int]]:
    return set(map(tuple, np.argwhere(mask[k]).tolist()))


# ------------------------------------------------------------------------------------------------ RTSTRUCT contours

def test_a_repeated_contour_does_not_erase_its_slice():
    # the example: one contour written twice (XOR used to give an empty slice)
    square = _square(1.5, 5.5)
    once = rasterise_contours([square], _grid())
    assert _slice(once) == _pixels(1.5, 5.5) and once.sum() == 16
    np.testing.assert_array_equal(rasterise_contours([square, square], _grid()), once)
    # the same kind: repeated with another start point and the other direction, and three times
    other = square[::-1][np.r_[2:4, 0:2]]
    np.testing.assert_array_equal(rasterise_contours([square, other, square], _grid()), once)


def test_overlapping_pieces_are_united_and_nested_contours_are_holes():
    a, b = _square(1.5, 5.5), _square(3.5, 7.5)
    union = rasterise_contours([a, b], _grid())
    assert _slice(union) == _pixels(1.5, 5.5) | _pixels(3.5, 7.5) and union.sum() == 16 + 16 - 4  # XOR: 24
    hole = rasterise_contours([_square(1.5, 5.5), _square(2.5, 4.5)], _grid())
    assert _slice(hole) == _pixels(1.5, 5.5) - _pixels(2.5, 4.5) and hole.sum() == 12
    # an island inside the hole (depth 2) is structure again; the order of the contours does not matter
    nested = [_square(4.5, 5.5), _square(0.5, 9.5), _square(2.5, 7.5)]
    island = rasterise_contours(nested, _grid())
    assert _slice(island) == (_pixels(0.5, 9.5) - _pixels(2.5, 7.5)) | _pixels(4.5, 5.5) and island.sum() == 81 - 25 + 1
    np.testing.assert_array_equal(rasterise_contours(nested[::-1], _grid()), island)


SPACING = (1.0, 1.0, 2.0)


def _ct(tmp_path, patient="P1"):
    return write_ct_series(tmp_path / "dicom" / patient / "ct", ct_hu_volume((4, 12, 12)), spacing=SPACING,
                           origin=(0.0, 0.0, 0.0), patient_id=patient)


def _import(tmp_path, *roi):
    out = tmp_path / "out"
    rc = smart_main(["import-masks", "--dicom-root", str(tmp_path / "dicom"), "--out-dir", str(out), *roi])
    masks = pd.read_csv(out / "masks.csv", dtype={"case_id": str}) if (out / "masks.csv").exists() else None
    return rc, out, masks, pd.read_csv(out / "rejected.csv")


def test_rtstruct_repeated_contour_and_repeated_roi_names_through_import(tmp_path, capsys):
    slices = _ct(tmp_path)
    z2 = float(slices[2].ImagePositionPatient[2])
    # rater a: the slice-2 contour written twice; rater b: two ROIs both named GTV, overlapping on slice 2
    write_rtstruct(tmp_path / "dicom/P1/a.dcm", slices, {"GTV": [_square(1.5, 5.5, z2), _square(1.5, 5.5, z2)]},
                   series_description="a")
    rs = write_rtstruct(tmp_path / "dicom/P1/b.dcm", slices,
                        {"GTV": [_square(1.5, 5.5, z2)], "x": [_square(3.5, 7.5, z2)]}, series_description="b")
    import pydicom

    ds = pydicom.dcmread(rs)
    ds.StructureSetROISequence[1].ROIName = "GTV"  # a second ROI of the same name: a second piece
    ds.save_as(rs)
    write_rtstruct(tmp_path / "dicom/P1/c.dcm", slices, {"GTV": [_square(1.5, 5.5, z2)],
                                                         "GTV-2": [_square(3.5, 7.5, z2)]}, series_description="c")
    rc, out, masks, rejected = _import(tmp_path, "--roi-pattern", "gtv(-2)?")
    assert rc == 0
    n = dict(zip(masks.rater, masks.n_voxels))
    assert n == {"a": 16, "b": 28}
    mask_b = sitk.GetArrayFromImage(sitk.ReadImage(str(out / masks["mask"][masks.rater == "b"].item())))
    assert _slice(mask_b, 2) == _pixels(1.5, 5.5) | _pixels(3.5, 7.5)
    assert rejected.file.map(lambda f: f.split("/")[-1]).tolist() == ["c.dcm"]
    assert rejected.reason.item().startswith("2 ROIs with 2 different names ('GTV', 'GTV-2') matching /gtv(-2)?/")


# ------------------------------------------------------------------------------------------------------------ SEG

def test_fractional_seg_threshold_is_half_the_maximum_inclusive(tmp_path):
    slices = _ct(tmp_path)
    fraction = np.zeros((4, 12, 12), np.float32)
    fraction[1, 2, 3] = 0.5     # stored 100 of 200: exactly half -> foreground
    fraction[1, 2, 4] = 0.495   # stored 99 of 200 -> background
    fraction[2, 5, 5:8] = 1.0   # certain
    fraction[2, 6, 5] = 0.75
    write_seg(tmp_path / "dicom/P1/prob.dcm", slices, {"GTV": fraction}, fractional="PROBABILITY",
              max_fractional_value=200, series_description="prob")
    occupancy = np.zeros((4, 12, 12), np.float32)
    occupancy[1, 8, 8] = 128 / 255  # stored 128 of 255 (50.2 %) -> foreground
    occupancy[1, 8, 9] = 127 / 255  # stored 127 of 255 (49.8 %) -> background
    write_seg(tmp_path / "dicom/P1/occ.dcm", slices, {"GTV": occupancy}, fractional="OCCUPANCY",
              series_description="occ")
    assert FRACTIONAL_THRESHOLD == 0.5
    seg = read_seg(tmp_path / "dicom/P1/prob.dcm")
    assert int(seg.MaximumFractionalValue) == 200 and str(seg.SegmentationType) == "FRACTIONAL"
    rc, out, masks, rejected = _import(tmp_path, "--roi", "GTV")
    assert rc == 0 and rejected.empty
    got = {r: set(map(tuple, np.argwhere(sitk.GetArrayFromImage(sitk.ReadImage(str(out / m)))).tolist()))
           for r, m in zip(masks.rater, masks["mask"])}
    assert got == {"prob": {(1, 2, 3), (2, 5, 5), (2, 5, 6), (2, 5, 7), (2, 6, 5)}, "occ": {(1, 8, 8)}}


def test_fractional_seg_without_a_maximum_is_refused(tmp_path):
    slices = _ct(tmp_path)
    fraction = np.zeros((4, 12, 12), np.float32)
    fraction[1, 2, 3] = 1.0
    path = write_seg(tmp_path / "f.dcm", slices, {"GTV": fraction}, fractional="PROBABILITY")
    seg = read_seg(path)
    seg.MaximumFractionalValue = 0
    with pytest.raises(InputFileError, match="FRACTIONAL SEG with MaximumFractionalValue 0: the fraction a stored "
                                             "value stands for is undefined"):
        segment_image(seg, [1], path)


def test_repeated_segment_labels_are_united_and_different_labels_refused(tmp_path):
    slices = _ct(tmp_path)
    a = np.zeros((4, 12, 12), np.uint8)
    a[2, 2:6, 2:6] = 1
    b = np.zeros_like(a)
    b[2, 4:8, 4:8] = 1          # overlaps a in 2 x 2 voxels
    c = np.zeros_like(a)
    c[1, 9, 9] = 1
    write_seg(tmp_path / "dicom/P1/pieces.dcm", slices, [("GTV", a), ("GTV", b), ("other", c)],
              series_description="pieces")
    write_seg(tmp_path / "dicom/P1/two.dcm", slices, [("GTV", a), ("GTV-2", b)], series_description="two")
    seg = read_seg(tmp_path / "dicom/P1/pieces.dcm")
    assert select_segments(seg, "pieces.dcm", name="GTV") == ([1, 2], "GTV")
    rc, out, masks, rejected = _import(tmp_path, "--roi-pattern", "gtv(-2)?")
    assert rc == 0
    assert masks.rater.tolist() == ["pieces"] and masks.n_voxels.item() == 16 + 16 - 4
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / masks["mask"].item())))
    np.testing.assert_array_equal(mask > 0, (a | b) > 0)
    assert rejected.file.map(lambda f: f.split("/")[-1]).tolist() == ["two.dcm"]
    assert rejected.reason.item() == ("2 segments with 2 different labels ('GTV', 'GTV-2') matching /gtv(-2)?/; "
                                      "segments in the file: 'GTV', 'GTV-2'")
