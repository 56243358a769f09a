"""smart.data.resample_batch: a batch of sources -> resampled files + incremental manifest + rejections; and the
input discovery it uses (smart.data.discovery)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import SimpleITK as sitk

from data_fixtures import write_bad_inputs
from smart.data.resample_batch import MANIFEST_COLUMNS, resample_batch
from smart.data.validation import ValidationRules


def _run(inputs, out_dir, spacing=2.0):
    counts = resample_batch(inputs, out_dir, out_dir / "manifest.csv", out_dir / "rejected.csv", spacing=spacing,
                            rules=ValidationRules(), progress=False)
    rc = 0 if counts["resampled"] + counts["unchanged"] > 0 else 1
    manifest = pd.read_csv(out_dir / "manifest.csv", keep_default_na=False)
    rejected = pd.read_csv(out_dir / "rejected.csv", keep_default_na=False)
    return rc, manifest, rejected


def test_batch_mixed_good_and_bad(tmp_path, ct5n_dir, phantom):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = write_bad_inputs(inputs, ct5n_dir, phantom)
    (inputs / "good.nii.gz").rename(inputs / "patient_a.nii.gz")
    shutil.copytree(ct5n_dir, inputs / "ct5n_series")
    (inputs / "notes.txt").write_text("ignored: not an image")
    out_dir = tmp_path / "out"
    rc, manifest, rejected = _run([inputs], out_dir)
    assert rc == 0
    assert list(manifest.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    ok = manifest[manifest.status == "ok"]
    assert sorted(ok.case_id) == ["ct5n_series", "patient_a"]
    assert sorted(os.path.basename(f) for f in rejected.file) == sorted(cases)
    for name, phrase in cases.items():
        reason = rejected.loc[rejected.file.map(os.path.basename) == name, "reason"].item()
        assert phrase in reason, (name, reason)
    # manifest.journal.csv: the per-case resume state, kept (smart.data.shards.journal_path)
    assert sorted(p.name for p in out_dir.iterdir()) == ["ct5n_series.nii.gz", "manifest.csv", "manifest.journal.csv",
                                                        "patient_a.nii.gz", "rejected.csv"]
    row = ok.set_index("case_id").loc["ct5n_series"]
    assert (row.orig_size, row.new_size, row.new_spacing) == ("16x16x5", "4x4x6", "2x2x2")
    assert row.orig_spacing == "0.488281x0.488281x2.5"
    written = sitk.GetArrayFromImage(sitk.ReadImage(row.path))
    assert (float(row.hu_min), float(row.hu_max)) == (written.min(), written.max())


def test_batch_all_bad_exits_nonzero(tmp_path, phantom):
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 4, 4), 0, np.int16)), os.fspath(tmp_path / "c.nii.gz"))
    rc, manifest, rejected = _run([tmp_path / "c.nii.gz", tmp_path / "missing.nii.gz"], tmp_path / "out")
    assert rc == 1
    assert list(rejected.reason) == ["no such file or folder", "constant image (every voxel is 0)"]
    assert list(manifest.status) == ["rejected"]


def test_batch_resumes_and_redoes_changed(tmp_path, write_ct, phantom):
    a = write_ct("in/a.nii.gz")
    write_ct("in/b.nii.gz", phantom(seed=3))
    listing = tmp_path / "list.csv"
    pd.DataFrame({"path": ["in/a.nii.gz", os.fspath(tmp_path / "in" / "b.nii.gz")]}).to_csv(listing, index=False)
    out_dir = tmp_path / "out"
    rc, first, _ = _run([listing], out_dir)
    assert rc == 0 and list(first.status) == ["ok", "ok"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.nii.gz")}
    rc, second, _ = _run([listing], out_dir)
    assert rc == 0 and second.drop(columns="fingerprint").equals(first.drop(columns="fingerprint"))
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.nii.gz")} == stamps  # nothing rewritten
    # a changed source is resampled again; a different spacing redoes everything
    write_ct("in/a.nii.gz", phantom(seed=9)[:, :, :10])
    os.utime(a, ns=(stamps["a.nii.gz"] + 10**9, stamps["a.nii.gz"] + 10**9))
    rc, third, _ = _run([listing], out_dir)
    assert third.set_index("case_id").loc["a", "orig_size"] == "10x14x12"
    assert (out_dir / "b.nii.gz").stat().st_mtime_ns == stamps["b.nii.gz"]
    rc, fourth, _ = _run([listing], out_dir, spacing=3.0)
    assert list(fourth.new_spacing) == ["3x3x3", "3x3x3"]


def test_batch_duplicate_case_ids(tmp_path, write_ct):
    write_ct("x/ct.nii.gz")
    write_ct("y/ct.nii.gz")
    rc, manifest, rejected = _run([tmp_path / "x", tmp_path / "y"], tmp_path / "out")
    assert rc == 0 and list(manifest.case_id) == ["ct"]
    assert rejected.reason.item().startswith("duplicate case_id 'ct'")


