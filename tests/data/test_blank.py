"""Blank inputs are counted (issue 20, item 10): volumes with one value in every voxel, in an OrganMNIST3D npz, a
cohort's crops and the crops the package cuts, reported with their count and indices (smart.data.blank)."""

import numpy as np
import pandas as pd
import SimpleITK as sitk

from smart.data.blank import blank_indices, blank_note, blank_summary, is_blank
from smart.data.cohort import read_cohort
from smart.data.cohort_dataset import CohortDataset
from smart.data.organmnist import load_organmnist3d, organmnist_blank


def test_blank_means_one_value_in_every_voxel():
    stack = np.random.default_rng(0).integers(1, 255, (5, 4, 4, 4)).astype(np.uint8)
    stack[1] = 0          # all zero
    stack[3] = 117        # constant, not zero
    stack[4, 1:, :, :] = 9  # one slice differs from the rest: not blank
    stack[4, 0] = 8
    assert blank_indices(stack).tolist() == [1, 3]
    floats = np.zeros((2, 3, 3, 3), np.float32)
    floats[0, 0, 0, 0] = np.nan  # NaN is never equal: not blank (the non-finite rule rejects it elsewhere)
    assert blank_indices(floats).tolist() == [1]
    assert is_blank(np.full((2, 2, 2), -1024)) and not is_blank(np.arange(8))
    assert blank_indices(np.zeros((0, 4, 4, 4))).tolist() == []
    assert blank_note("f.npz train_images", [1, 3], 5) == (
        "f.npz train_images: 2 of 5 volumes are blank (one value in every voxel): indices [1, 3]")
    assert blank_note("x", range(25), 30).endswith("indices [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, "
                                                   "16, 17, 18, 19, ... (5 more)]")
    frame = pd.DataFrame({"sample_id": ["a", "b", "c"], "blank": [False, True, True]})
    assert blank_summary(frame) == {"count": 2, "indices": [1, 2], "sample_ids": ["b", "c"]}
    assert blank_summary(frame.drop(columns="blank"))["count"] == 0


def test_organmnist_npz_blank_volumes_counted_per_split(tmp_path, capsys):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (5, 28, 28, 28), dtype=np.uint8)
    train[2] = 0
    train[4] = 0
    val = rng.integers(0, 256, (2, 28, 28, 28), dtype=np.uint8)
    val[0] = 255
    test = rng.integers(0, 256, (3, 28, 28, 28), dtype=np.uint8)
    labels = {f"{s}_labels": np.zeros((n, 1), np.uint8) for s, n in (("train", 5), ("val", 2), ("test", 3))}
    np.savez(tmp_path / "o.npz", train_images=train, val_images=val, test_images=test, **labels)
    images, _ = load_organmnist3d(tmp_path / "o.npz")
    err = capsys.readouterr().err.splitlines()
    assert err == [f"note: {tmp_path / 'o.npz'} train_images: 2 of 5 volumes are blank (one value in every voxel): "
                   f"indices [2, 4]",
                   f"note: {tmp_path / 'o.npz'} val_images: 1 of 2 volumes are blank (one value in every voxel): "
                   f"indices [0]"]
    assert organmnist_blank(images, [5, 2, 3], ["train", "val", "test"]) == {
        "count": 3, "indices": [2, 4, 5], "by_split": {"train": [2, 4], "val": [0], "test": []}}


def test_cohort_dataset_reports_blank_crops(tmp_path, capsys):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(-1000, 500, (8, 8, 8)), np.zeros((8, 8, 8)), np.full((6, 6, 6), 40)]
    rows = []
    for i, array in enumerate(arrays):
        sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.int16)), str(tmp_path / f"c{i}.nii.gz"))
        rows.append({"sample_id": f"s{i}", "patient_id": f"p{i}", "image": f"c{i}.nii.gz", "label": i % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "cohort.csv", index=False)
    ds = CohortDataset(read_cohort(tmp_path / "cohort.csv"), crop_size=(8, 8, 8))
    # the 6^3 crop of 40 HU is blank although padding to 8^3 with air gives it two values: judged as stored
    assert ds.blank_indices() == [1, 2]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"note: {tmp_path / 'c1.nii.gz'}: blank crop (one value in every voxel), cohort index 1",
                   f"note: {tmp_path / 'c2.nii.gz'}: blank crop (one value in every voxel), cohort index 2"]
    ds[1]
    assert capsys.readouterr().err == ""  # reported once


def test_cohort_crops_count_blank_crops(tmp_path, capsys):
    import json

    from smart.cli import main as smart_main

    array = np.full((20, 20, 20), -900, np.int16)
    array[2:6, 2:6, 2:6] = 300  # a lesion in one corner; the centre of the CT is uniform lung
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    rows = [{"sample_id": "lesion", "patient_id": "p", "image": "ct.nii.gz", "label": 1, "center_x": 8.0,
             "center_y": 8.0, "center_z": 8.0},
            {"sample_id": "uniform", "patient_id": "p", "image": "ct.nii.gz", "label": 0, "center_x": 24.0,
             "center_y": 24.0, "center_z": 24.0}]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    assert smart_main(["cohort-crops", "--cohort", str(tmp_path / "t.csv"), "--out-dir", str(out),
                       "--crop-size", "8"]) == 0
    summary = json.loads((out / "cohort.summary.json").read_text())
    assert summary["blank_crops"] == {"count": 1, "indices": [1], "sample_ids": ["uniform"]}
    assert pd.read_csv(out / "cohort.csv").blank.tolist() == [False, True]
    assert (f"note: {out / 'cohort.csv'}: 1 of 2 crops are blank (one value in every voxel): indices [1]"
            in capsys.readouterr().err)
