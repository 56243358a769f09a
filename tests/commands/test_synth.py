"""``smart synth`` end to end: deterministic output, --count, bad arguments."""

import numpy as np
import pandas as pd
import pytest

from smart.cli import main


def test_organs_cli_is_deterministic(tmp_path):
    assert main(["synth", "organs", "--out", str(tmp_path / "a"), "--seed", "3", "--count", "33"]) == 0
    assert main(["synth", "organs", "--out", str(tmp_path / "b"), "--seed", "3", "--count", "33"]) == 0
    assert main(["synth", "organs", "--out", str(tmp_path / "c"), "--seed", "4", "--count", "33"]) == 0
    a, b, c = (np.load(tmp_path / d / "organmnist3d.npz") for d in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    assert not np.array_equal(a["train_images"], c["train_images"])


def test_nodules_cli_count_extends_cohort(tmp_path):
    main(["synth", "nodules", "--out", str(tmp_path / "a"), "--count", "2", "--crop-size", "24"])
    main(["synth", "nodules", "--out", str(tmp_path / "b"), "--count", "3", "--crop-size", "24"])
    a, b = pd.read_csv(tmp_path / "a" / "cohort.csv"), pd.read_csv(tmp_path / "b" / "cohort.csv")
    assert len(a) == 2 and len(b) == 3
    assert a.iloc[0].equals(b.iloc[0])  # same seed: the first item does not depend on --count


def test_cli_rejects_bad_count(tmp_path):
    with pytest.raises(SystemExit, match="count"):
        main(["synth", "organs", "--out", str(tmp_path), "--count", "0"])


def test_lidc_dicom_cli_writes_db_series_with_their_real_gaps(tmp_path):
    import SimpleITK as sitk

    from smart.data import lidc

    assert main(["synth", "lidc-dicom", "--out", str(tmp_path), "--count", "1", "--slab", "10"]) == 0
    db = lidc.read_database(scan_ids=[983])
    scan = db.scans.loc[983]
    folder = tmp_path / scan["patient_id"] / scan["study_instance_uid"] / scan["series_instance_uid"]
    assert sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) == (scan["series_instance_uid"],)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), scan["series_instance_uid"])
    z = sorted(float(sitk.ReadImage(f).GetOrigin()[2]) for f in files)
    k = int(round(lidc.nodule_table(db)["centroid_k"].iloc[0]))
    np.testing.assert_allclose(z, db.slice_zvals[983][k - 10:k + 11], atol=1e-4)
    assert np.isclose(np.diff(z), 1.25).sum() == 1  # the real missing slice (slice 188) is inside this slab
