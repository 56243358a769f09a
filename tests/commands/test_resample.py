"""``smart resample`` (smart.commands.resample): argument checks and the CLI end to end on pydicom's real CT files."""

from __future__ import annotations

import argparse
import os

import pandas as pd
import pytest

from smart.commands import resample as resample_cmd


@pytest.mark.parametrize("extra", [["--spacing", "0"], ["--spacing", "2", "2"], ["--max-voxels", "0"]])
def test_batch_bad_arguments(tmp_path, write_ct, extra):
    parser = argparse.ArgumentParser()
    resample_cmd.add_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--input", os.fspath(write_ct("a.nii.gz")), "--out-dir", os.fspath(out),
                              "--manifest", os.fspath(out / "m.csv"), "--rejected", os.fspath(out / "r.csv"), *extra])
    assert resample_cmd.main(args) == 2
    assert not out.exists()


def test_cli_end_to_end_on_pydicom_data(tmp_path, ct5n_dir, ct_small_path):
    import subprocess
    import sys

    out = tmp_path / "ct_2mm"
    cmd = [sys.executable, "-m", "smart", "resample", "--input", os.fspath(ct5n_dir), os.fspath(ct_small_path),
           "--out-dir", os.fspath(out), "--manifest", os.fspath(out / "manifest.csv"),
           "--rejected", os.fspath(out / "rejected.csv")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert "1 resampled, 0 unchanged (skipped), 1 rejected" in done.stderr
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(zip(manifest.case_id, manifest.status)) == [("CT5N", "ok"), ("CT_small", "rejected")]
    assert pd.read_csv(out / "rejected.csv").reason.item().startswith("a single slice: size (128, 128, 1)")
