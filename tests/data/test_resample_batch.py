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
    listing = tmp_path / "list.csv"  # ids are the listed paths relative to its folder: in__a, in__b
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
    os.utime(a, ns=(stamps["in__a.nii.gz"] + 10**9, stamps["in__a.nii.gz"] + 10**9))
    rc, third, _ = _run([listing], out_dir)
    assert third.set_index("case_id").loc["in__a", "orig_size"] == "10x14x12"
    assert (out_dir / "in__b.nii.gz").stat().st_mtime_ns == stamps["in__b.nii.gz"]
    rc, fourth, _ = _run([listing], out_dir, spacing=3.0)
    assert list(fourth.new_spacing) == ["3x3x3", "3x3x3"]


def test_batch_duplicate_case_ids(tmp_path, write_ct):
    write_ct("x/ct.nii.gz")
    write_ct("y/ct.nii.gz")
    rc, manifest, rejected = _run([tmp_path / "x", tmp_path / "y"], tmp_path / "out")
    assert rc == 0 and list(manifest.case_id) == ["ct"]
    assert rejected.reason.item().startswith("duplicate case_id 'ct'")




# ------------------------------------------------------------------ issue #20 item 6: stable, unique case ids


def _patient_series(folder, n_slices, seed):
    from clinical_generators import ct_hu_volume, write_ct_series

    write_ct_series(folder, ct_hu_volume((n_slices, 10, 12), seed=seed))


def test_two_patients_ct_layout_and_a_folder_that_sorts_first(tmp_path):
    """The issue's example: <patient>/CT/ for two patients gave both the id CT (one rejected as duplicate) and, after
    a folder that sorts first was added, a rerun overwrote CT.nii.gz with another patient."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    _patient_series(inputs / "p1" / "CT", 4, seed=1)
    _patient_series(inputs / "p2" / "CT", 6, seed=2)
    rc, first, rejected = _run([inputs], out)
    assert rejected.empty and list(first.case_id) == ["p1__CT", "p2__CT"]
    assert list(first.orig_size) == ["12x10x4", "12x10x6"]  # each output holds its own patient
    before = {p.name: p.read_bytes() for p in out.glob("*.nii.gz")}
    _patient_series(inputs / "a0" / "CT", 5, seed=3)  # sorts before p1
    rc, second, rejected = _run([inputs], out)
    assert rejected.empty and list(second.case_id) == ["a0__CT", "p1__CT", "p2__CT"]
    assert {p.name: p.read_bytes() for p in out.glob("*.nii.gz") if p.name != "a0__CT.nii.gz"} == before
    assert second.set_index("case_id").loc["a0__CT", "orig_size"] == "12x10x5"
    # removing a folder changes no other case either
    shutil.rmtree(inputs / "p1")
    rc, third, rejected = _run([inputs], out)
    assert list(third.case_id) == ["a0__CT", "p2__CT"]
    assert (out / "p2__CT.nii.gz").read_bytes() == before["p2__CT.nii.gz"]


def test_same_file_name_in_two_site_folders(tmp_path, write_ct, phantom):
    """Same kind: <site>/ct.nii.gz for two sites were both 'ct'."""
    write_ct("in/site1/ct.nii.gz", phantom(seed=1))
    write_ct("in/site2/ct.nii.gz", phantom(seed=2)[:, :, :10])
    rc, manifest, rejected = _run([tmp_path / "in"], tmp_path / "out")
    assert rejected.empty and list(manifest.case_id) == ["site1__ct", "site2__ct"]
    assert manifest.orig_size.tolist() == ["16x14x12", "10x14x12"]


# ------------------------------------------------------------------ issue #20 items 1 and 5 through the command


def _unprivileged():
    """Shell words that run a command without the capabilities that let root ignore file permissions (tests run as
    root in CI); [] when not root. None when root cannot drop them here (no setpriv)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_unreadable_entries_are_rows_and_the_batch_goes_on(tmp_path, write_ct, ct5n_dir):
    import subprocess
    import sys

    prefix = _unprivileged()
    if prefix is None:
        import pytest
        pytest.skip("running as root without setpriv: permissions cannot be denied to root")
    write_ct("in/a/good.nii.gz")
    write_ct("in/b/locked.nii.gz")
    (tmp_path / "in" / "c").mkdir()
    shutil.copytree(ct5n_dir, tmp_path / "in" / "d" / "series")
    os.chmod(tmp_path / "in" / "b" / "locked.nii.gz", 0)
    os.chmod(tmp_path / "in" / "c", 0)
    os.chmod(tmp_path / "in" / "d" / "series" / sorted(os.listdir(tmp_path / "in" / "d" / "series"))[2], 0)
    os.symlink("x", tmp_path / "in" / "loop.nii.gz")
    os.symlink("loop.nii.gz", tmp_path / "in" / "x")
    out = tmp_path / "out"
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "smart", "resample", "--input", str(tmp_path / "in"),
                               "--out-dir", str(out), "--manifest", str(out / "manifest.csv"), "--rejected",
                               str(out / "rejected.csv")], capture_output=True, text=True, env=os.environ.copy())
    finally:
        for p in (tmp_path / "in" / "b" / "locked.nii.gz", tmp_path / "in" / "c"):
            os.chmod(p, 0o755)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    rejected = pd.read_csv(out / "rejected.csv", keep_default_na=False)
    assert list(manifest[manifest.status == "ok"].case_id) == ["a__good"]
    reasons = dict(zip(rejected.file.map(lambda f: os.path.relpath(f, tmp_path / "in")), rejected.reason))
    series_file = sorted(os.listdir(ct5n_dir))[2]
    assert reasons == {
        "b/locked.nii.gz": "cannot read (Permission denied)",
        "c": "cannot read (Permission denied)",
        "d/series": f"1 file(s) in the DICOM folder cannot be read as slices: {series_file} (cannot read (Permission "
                    f"denied)). Repair or remove them (a series read without them would miss slices)",
        "loop.nii.gz": "symbolic link loop (too many levels of symbolic links)",
        "x": "symbolic link loop (too many levels of symbolic links)",
    }
