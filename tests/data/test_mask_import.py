"""`smart import-masks`: RTSTRUCT and SEG files generated here -> masks whose physical centroid and volume match the
contours (issue #10 "Done when"), and the per-(case, rater) tables built from a DICOM tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from clinical_generators import (contour_stats, ct_hu_volume, sphere_contours, write_ct_series, write_rtstruct,
                                 write_seg)
from matplotlib.path import Path as PolygonPath

from smart.cli import main as smart_main

SPACING = (0.8, 0.8, 2.0)
SHAPE = (14, 48, 44)  # (z, y, x)


def _ct(folder, patient="P1", **geometry):
    return write_ct_series(folder, ct_hu_volume(SHAPE), spacing=SPACING, patient_id=patient, **geometry)


def _grid(slices) -> sitk.Image:
    """The CT grid from the generator's own numbers (first slice position, orientation, spacing)."""
    row = np.array([float(v) for v in slices[0].ImageOrientationPatient[:3]])
    col = np.array([float(v) for v in slices[0].ImageOrientationPatient[3:]])
    grid = sitk.Image(SHAPE[::-1], sitk.sitkUInt8)
    grid.SetSpacing(SPACING)
    grid.SetOrigin([float(v) for v in slices[0].ImagePositionPatient])
    grid.SetDirection(np.stack([row, col, np.cross(row, col)], axis=1).ravel().tolist())
    return grid


def _slice_z(slices):
    return [float(s.ImagePositionPatient[2]) for s in slices]


def _centroid_mm(mask_image: sitk.Image) -> np.ndarray:
    zyx = np.argwhere(sitk.GetArrayViewFromImage(mask_image) > 0).mean(axis=0)
    return np.array(mask_image.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]]))


def _within_one_voxel(mask_image, contours):
    """The Done-when check: centroid within one voxel on every axis, and volume within one voxel per contour
    (rasterising a contour can gain or lose boundary pixels; measured: 2.8 voxels over 7 contours)."""
    volume, centroid = contour_stats(contours, SPACING[2])
    n = int(sitk.GetArrayViewFromImage(mask_image).sum())
    voxel = float(np.prod(SPACING))
    got = _centroid_mm(mask_image)
    assert np.all(np.abs(got - centroid) <= np.asarray(SPACING)), (got, centroid)
    assert abs(n * voxel - volume) <= len(contours) * voxel, (n * voxel, volume, len(contours))
    return n * voxel, volume


def _import(tmp_path, *extra):
    out = tmp_path / "out"
    rc = smart_main(["import-masks", "--dicom-root", str(tmp_path / "dicom"), "--out-dir", str(out), *extra])
    masks = pd.read_csv(out / "masks.csv", dtype={"case_id": str})
    return rc, out, masks, pd.read_csv(out / "rejected.csv")


@pytest.mark.parametrize("orientation", ["axial", "feet-first-prone"])
def test_rtstruct_centroid_and_volume_match_the_contours(tmp_path, orientation):
    """Axial LPS CT, and (second example) a CT whose rows run right-to-left and columns anterior (row = (-1,0,0),
    col = (0,-1,0)): the contours are placed through the CT's geometry either way."""
    geometry = {} if orientation == "axial" else {"row": (-1.0, 0.0, 0.0), "col": (0.0, -1.0, 0.0),
                                                    "origin": (20.0, 25.0, 10.0)}
    slices = _ct(tmp_path / "dicom" / "ct", **geometry)
    lo = np.array(_grid(slices).GetOrigin())
    sign = 1 if orientation == "axial" else -1  # the grid extends towards -x, -y when rows/columns are flipped
    centre = (lo[0] + sign * 17.3, lo[1] + sign * 19.1, _slice_z(slices)[6] + 0.7)
    gtv = sphere_contours(centre, 9.5, _slice_z(slices), stretch=(1.0, 0.8))
    lung = sphere_contours(centre, 4.0, _slice_z(slices))
    write_rtstruct(tmp_path / "dicom" / "rs.dcm", slices, {"Lung": lung, "GTV": gtv}, series_description="dr_a")
    rc, out, masks, rejected = _import(tmp_path, "--roi", "GTV")
    assert rc == 0 and rejected.empty and masks.roi.tolist() == ["GTV"] and masks.kind.tolist() == ["RTSTRUCT"]
    mask = sitk.ReadImage(str(out / masks["mask"][0]))
    ct = _grid(slices)
    np.testing.assert_allclose(mask.GetDirection(), ct.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(mask.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    got, expected = _within_one_voxel(mask, gtv)
    assert abs(got - expected) / expected < 0.03
    assert masks.n_voxels[0] == int(sitk.GetArrayViewFromImage(mask).sum())
    assert masks.volume_ml[0] == pytest.approx(got / 1000.0, rel=1e-6)


def _pixel_centres_inside(ct_image, contours):
    """Independent rasterisation (matplotlib's point-in-polygon on the physical voxel centres of each slice)."""
    mask = np.zeros(SHAPE, bool)
    jj, ii = np.mgrid[: SHAPE[1], : SHAPE[2]]
    for c in contours:
        k = int(round(ct_image.TransformPhysicalPointToContinuousIndex([float(v) for v in c[0]])[2]))
        pts = np.array([ct_image.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k)))
                        for i, j in zip(ii.ravel(), jj.ravel())])
        mask[k] = PolygonPath(c[:, :2]).contains_points(pts[:, :2]).reshape(SHAPE[1:])
    return mask


def test_seg_centroid_and_volume_match_the_contours(tmp_path):
    slices = _ct(tmp_path / "dicom" / "ct")
    ct = _grid(slices)
    centre = (np.array(ct.GetOrigin()) + (15.1, 18.6, 0.0)) + (0, 0, 12.4)
    gtv = sphere_contours(centre, 8.3, _slice_z(slices))
    truth = _pixel_centres_inside(ct, gtv)
    other = np.roll(truth, 3, axis=2)
    write_seg(tmp_path / "dicom" / "seg.dcm", slices, {"Tumour": truth, "Tumour margin": other},
              series_description="dr_b")
    rc, out, masks, rejected = _import(tmp_path, "--roi", "Tumour")
    assert rc == 0 and rejected.empty and masks.kind.tolist() == ["SEG"]
    mask = sitk.ReadImage(str(out / masks["mask"][0]))
    assert np.array_equal(sitk.GetArrayFromImage(mask) > 0, truth)  # SEG voxels land on the same CT voxels
    _within_one_voxel(mask, gtv)


def test_tree_to_raters_csv_and_consensus(tmp_path):
    """Two patients, three raters each (RTSTRUCT, SEG, RTSTRUCT with another ROI spelling); an ambiguous file,
    a file whose CT is missing and a damaged file are rejected with their reasons. `smart consensus` then builds the
    consensus on the CT grid from raters.csv."""
    rows = {}
    for patient in ("P1", "P2"):
        slices = _ct(tmp_path / "dicom" / patient / "ct", patient=patient)
        ct = _grid(slices)
        centre = np.array(ct.GetOrigin()) + (16.0, 18.0, 12.0)
        z = _slice_z(slices)
        write_rtstruct(tmp_path / "dicom" / patient / "a.dcm", slices,
                       {"GTV-1": sphere_contours(centre, 8.0, z), "Body": sphere_contours(centre, 15.0, z)},
                       series_description="rater_a")
        write_seg(tmp_path / "dicom" / patient / "b.dcm", slices,
                  {"gtv_primary": _pixel_centres_inside(ct, sphere_contours(centre, 8.6, z))},
                  series_description="rater_b")
        write_rtstruct(tmp_path / "dicom" / patient / "c.dcm", slices, {"GTV": sphere_contours(centre + 1.5, 7.5, z)},
                       series_description="rater_c", contour_image_refs=True)
        rows[patient] = slices
    write_rtstruct(tmp_path / "dicom" / "P1" / "ambiguous.dcm", rows["P1"],
                   {"GTV-1": sphere_contours(centre, 5.0, z), "gtv-2": sphere_contours(centre, 6.0, z)},
                   series_description="rater_d")
    orphan = write_ct_series(tmp_path / "elsewhere", ct_hu_volume(SHAPE), spacing=SPACING, patient_id="P3")
    write_rtstruct(tmp_path / "dicom" / "orphan.dcm", orphan, {"GTV": sphere_contours(centre, 5.0, z)},
                   series_description="rater_a")
    (tmp_path / "dicom" / "notes.txt").write_text("not DICOM")
    rc, out, masks, rejected = _import(tmp_path, "--roi-pattern", r"gtv([-_].*)?")
    assert rc == 0
    assert sorted(zip(masks.case_id, masks.rater)) == [(p, r) for p in ("P1", "P2")
                                                       for r in ("rater_a", "rater_b", "rater_c")]
    reasons = dict(zip(rejected.file.map(lambda f: f.split("/")[-1]), rejected.reason))
    assert set(reasons) == {"ambiguous.dcm", "orphan.dcm"}
    assert "2 ROIs with 2 different names ('GTV-1', 'gtv-2')" in reasons["ambiguous.dcm"]
    assert "is not under" in reasons["orphan.dcm"] and orphan[0].SeriesInstanceUID in reasons["orphan.dcm"]
    raters = pd.read_csv(out / "raters.csv")
    assert raters.columns.tolist() == ["case_id", "image", "series_uid", "rater1", "rater2", "rater3"]
    assert raters.case_id.tolist() == ["P1", "P2"] and raters.series_uid[1] == rows["P2"][0].SeriesInstanceUID

    cons_dir = tmp_path / "consensus"
    assert smart_main(["consensus", "--raters", str(out / "raters.csv"), "--out-dir", str(cons_dir),
                       "--method", "majority"]) == 0
    table = pd.read_csv(cons_dir / "raters.csv")
    assert table.columns.tolist()[-1] == "consensus" and len(table) == 2
    for case in ("P1", "P2"):
        votes = sum(sitk.GetArrayFromImage(sitk.ReadImage(str(out / masks["mask"][i])))
                    for i in np.flatnonzero(masks.case_id == case))
        cons = sitk.ReadImage(str(cons_dir / table.consensus[table.case_id == case].iloc[0]))
        assert np.array_equal(sitk.GetArrayFromImage(cons) > 0, votes >= 2)
