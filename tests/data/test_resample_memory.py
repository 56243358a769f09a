"""Resampling knows its memory (issue 20, item 9): the peak estimated from the header, the CT refused before it is
read when the estimate exceeds the job's mem_mb (docs/data_preparation.md "Resampling knows its memory")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from clinical_generators import ct_hu_volume, write_ct_series
from smart.cli import main as smart_main
from smart.data.resample_memory import (READER_BASE_MB, READER_BYTES_PER_VOXEL, check_memory, estimate_peak_mb,
                                        header_voxels)
from smart.data.validation import ImageReadError


def _nifti(path, shape_zyx):
    image = sitk.GetImageFromArray(np.full(shape_zyx, -1000, np.int16))
    image.SetSpacing((0.8, 0.8, 1.0))
    sitk.WriteImage(image, str(path), True)
    return path


def test_estimate_is_the_measured_line():
    assert (READER_BASE_MB, READER_BYTES_PER_VOXEL) == (423.0, 12.0)
    # 512 x 512 x 1,500 slices: measured 4,927 MiB (BENCHMARKS.md); the line gives 423 + 12 * 393,216,000 / 2^20
    assert estimate_peak_mb(512 * 512 * 1500) == 423.0 + 4500.0
    assert estimate_peak_mb(0) == 423.0


def test_header_voxels_of_files_and_dicom_series(tmp_path):
    assert header_voxels(_nifti(tmp_path / "a.nii.gz", (7, 9, 11))) == 7 * 9 * 11
    folder = tmp_path / "dicom"
    small = write_ct_series(folder, ct_hu_volume((3, 10, 12)), prefix="small")
    large = write_ct_series(folder, ct_hu_volume((5, 10, 12)), prefix="large")
    assert header_voxels(folder) == 5 * 10 * 12  # the largest series of the folder (what the reader picks)
    assert header_voxels(folder, str(small[0].SeriesInstanceUID)) == 3 * 10 * 12
    assert header_voxels(folder, str(large[0].SeriesInstanceUID)) == 5 * 10 * 12
    assert header_voxels(folder, "1.2.3.4") is None  # no such series: the reader rejects it with its own reason
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    assert header_voxels(tmp_path / "junk.nii.gz") is None


def test_check_memory_names_the_ct_and_the_estimate(tmp_path):
    big = _nifti(tmp_path / "big.nii.gz", (40, 512, 512))  # 10,485,760 voxels -> 423 + 120 = 543 MiB
    assert check_memory(big, 543.0) == 543.0
    with pytest.raises(ImageReadError) as err:
        check_memory(big, 500)
    assert str(err.value) == (f"{big}: estimated peak memory 543 MB for 10485760 voxels (423 MB + 12 B per voxel, "
                              f"the measured factor of the reader) exceeds mem_mb=500; give the job more memory "
                              f"(resources.resample.mem_mb) or leave this CT out")


def test_resample_refuses_the_ct_that_cannot_fit_and_resamples_the_rest(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _nifti(inputs / "big.nii.gz", (40, 512, 512))      # estimate 543 MiB
    small = ct_hu_volume((6, 10, 12))
    image = sitk.GetImageFromArray(small)
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(inputs / "small.nii.gz"))  # estimate 423.01 MiB
    write_ct_series(inputs / "series", ct_hu_volume((4, 64, 64)))  # 16,384 voxels: 423.19 MiB
    out = tmp_path / "out"
    args = ["resample", "--input", str(inputs), "--out-dir", str(out), "--manifest", str(out / "m.csv"),
            "--rejected", str(out / "r.csv"), "--mem-mb", "500"]
    assert smart_main(args) == 0
    rejected = pd.read_csv(out / "r.csv")
    assert rejected.file.tolist() == [str(inputs / "big.nii.gz")]
    assert rejected.reason.item().startswith("estimated peak memory 543 MB for 10485760 voxels")
    manifest = pd.read_csv(out / "m.csv", keep_default_na=False).set_index("case_id")
    assert manifest.status.to_dict() == {"big": "rejected", "series": "ok", "small": "ok"}
    assert not (out / "big.nii.gz").exists()
    assert "smart resample: rejected " + str(inputs / "big.nii.gz") + ": estimated peak memory 543 MB" \
        in capsys.readouterr().err
    # the DICOM series' estimate, 423.19 MiB, is refused by a budget 0.1 MiB smaller
    assert smart_main(["resample", "--input", str(inputs / "series"), "--out-dir", str(tmp_path / "o2"),
                       "--manifest", str(tmp_path / "o2/m.csv"), "--rejected", str(tmp_path / "o2/r.csv"),
                       "--mem-mb", "423.09"]) == 1
    assert pd.read_csv(tmp_path / "o2/r.csv").reason.item().startswith("estimated peak memory 423 MB for 16384 voxels")
    assert smart_main(args[:-2] + ["--mem-mb", "0"]) == 2
    assert "--mem-mb must be > 0 MiB, got 0.0" in capsys.readouterr().err
