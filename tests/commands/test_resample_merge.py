"""``smart resample-merge``: the union of shard tables through the CLI, and its one-line errors."""

from __future__ import annotations

import pandas as pd

from smart.cli import main

COLUMNS = "case_id,source,path,status,orig_spacing,orig_size,new_spacing,new_size,hu_min,hu_max,fingerprint\n"


def test_merges_shards_sorted_by_case(tmp_path, capsys):
    (tmp_path / "s0.csv").write_text(COLUMNS + "b,/raw/b,/ct/b.nii.gz,ok,1x1x1,4x4x4,2x2x2,2x2x2,-1000,40,f1\n")
    (tmp_path / "s1.csv").write_text(COLUMNS + "a,/raw/a,/ct/a.nii.gz,ok,1x1x1,4x4x4,2x2x2,2x2x2,-1000,40,f2\n"
                                     "c,/raw/c,,rejected,,,,,,,f3\n")
    (tmp_path / "r0.csv").write_text("file,reason\n")
    (tmp_path / "r1.csv").write_text("file,reason\n/raw/c,constant image\n")
    argv = ["resample-merge", "--shard-manifests", str(tmp_path / "s0.csv"), str(tmp_path / "s1.csv"),
            "--shard-rejected", str(tmp_path / "r0.csv"), str(tmp_path / "r1.csv"),
            "--manifest", str(tmp_path / "m.csv"), "--rejected", str(tmp_path / "r.csv")]
    assert main(argv) == 0
    assert "2 of 3 case(s) ok, 1 rejection(s) from 2 shard(s)" in capsys.readouterr().err
    merged = pd.read_csv(tmp_path / "m.csv", keep_default_na=False)
    assert merged.case_id.tolist() == ["a", "b", "c"] and merged.fingerprint.tolist() == ["f2", "f1", "f3"]
    assert pd.read_csv(tmp_path / "r.csv").reason.tolist() == ["constant image"]


def test_missing_shard_table_is_one_line(tmp_path, capsys):
    argv = ["resample-merge", "--shard-manifests", str(tmp_path / "gone.csv"), "--shard-rejected",
            str(tmp_path / "gone_r.csv"), "--manifest", str(tmp_path / "m.csv"), "--rejected", str(tmp_path / "r.csv")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"smart resample-merge: {tmp_path / 'gone.csv'}: shard table does not exist"
    assert not (tmp_path / "m.csv").exists()
