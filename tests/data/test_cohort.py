import numpy as np
import pandas as pd
import pytest

from smart.data.cohort import center_pad_crop, read_cohort


def test_read_cohort_resolves_paths_and_keeps_extra_columns(cohort_dir):
    frame = read_cohort(cohort_dir / "cohort.csv")
    assert list(frame.sample_id) == ["s0", "s1", "s2"] and list(frame.patient_id) == ["p0", "p0", "p1"]
    assert frame.label.tolist() == [0, 1, 0] and frame.label.dtype.kind == "i"
    assert frame.image[0] == str((cohort_dir / "crops" / "s0.nii.gz").resolve())
    assert frame.extra.tolist() == [0, 10, 20]


def _edit(cohort_dir, changes):
    frame = pd.read_csv(cohort_dir / "cohort.csv", dtype=str)
    for (row, column), value in changes.items():
        frame.loc[row, column] = value
    frame.to_csv(cohort_dir / "cohort.csv", index=False)
    return cohort_dir / "cohort.csv"


@pytest.mark.parametrize("value", ["2", "x", "0.5", "-1"])
def test_bad_label_names_file_and_line(cohort_dir, value):
    path = _edit(cohort_dir, {(1, "label"): value})
    with pytest.raises(ValueError, match=r"cohort\.csv: line 3: label"):
        read_cohort(path)


def test_missing_image_names_row(cohort_dir):
    path = _edit(cohort_dir, {(2, "image"): "crops/nope.nii.gz"})
    with pytest.raises(FileNotFoundError, match=r"line 4 \(sample_id 's2'\).*nope\.nii\.gz"):
        read_cohort(path)


def test_empty_images_fail_with_count_and_lidc_remedy(cohort_dir):
    path = _edit(cohort_dir, {(0, "image"): "", (2, "image"): ""})
    with pytest.raises(ValueError) as info:
        read_cohort(path)
    message = str(info.value)
    assert str(path) in message and "2 of 3 row(s) have no image" in message and "'s0'" in message
    assert "--dicom-root" in message and ".pylidcrc" in message


def test_empty_labels_are_dropped_with_a_note(cohort_dir, capsys):
    path = _edit(cohort_dir, {(0, "label"): "", (0, "image"): ""})  # an excluded LIDC nodule: no label, no crop
    frame = read_cohort(path)
    assert list(frame.sample_id) == ["s1", "s2"] and frame.label.tolist() == [1, 0]
    assert list(frame.index) == [0, 1]
    assert "dropped 1 of 3 row(s) with an empty label" in capsys.readouterr().err
    # line numbers in later errors still count the dropped row (CSV line = original row + 2)
    with pytest.raises(ValueError, match=r"line 4: label"):
        read_cohort(_edit(cohort_dir, {(2, "label"): "7"}))


def test_all_labels_empty_is_an_error(cohort_dir):
    path = _edit(cohort_dir, {(i, "label"): "" for i in range(3)})
    with pytest.raises(ValueError, match=r"all 3 rows have an empty label"):
        read_cohort(path)


def test_absolute_image_path_is_kept(cohort_dir):
    absolute = str((cohort_dir / "crops" / "s1.nii.gz").resolve())
    frame = read_cohort(_edit(cohort_dir, {(0, "image"): absolute}))
    assert frame.image[0] == absolute


def test_structural_errors(cohort_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="cohort file not found"):
        read_cohort(tmp_path / "missing.csv")
    frame = pd.read_csv(cohort_dir / "cohort.csv")
    frame.drop(columns=["patient_id"]).to_csv(tmp_path / "nopatient.csv", index=False)
    with pytest.raises(ValueError, match=r"nopatient\.csv: missing column\(s\) \['patient_id'\]"):
        read_cohort(tmp_path / "nopatient.csv")
    with pytest.raises(ValueError, match="duplicate sample_id 's0'"):
        read_cohort(_edit(cohort_dir, {(1, "sample_id"): "s0"}))
    frame.iloc[:0].to_csv(cohort_dir / "empty.csv", index=False)
    with pytest.raises(ValueError, match="no rows"):
        read_cohort(cohort_dir / "empty.csv")


def test_center_pad_crop_against_explicit_indices():
    v = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    out = center_pad_crop(v, (3, 8, 7), fill=-1)
    assert out.shape == (3, 8, 7)
    assert np.array_equal(out[:, 1:7, :], v[1:4])  # crop 5->3 starts at 1; pad 6->8 puts 1 before
    assert (out[:, 0] == -1).all() and (out[:, 7] == -1).all()
    odd = center_pad_crop(np.ones((1, 1, 2)), (1, 1, 5))
    assert odd.tolist() == [[[0, 1, 1, 0, 0]]]  # extra pad voxel goes after
    with pytest.raises(ValueError, match="size"):
        center_pad_crop(v, (3, 3))
