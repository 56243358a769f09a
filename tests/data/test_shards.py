"""smart.data.shards + ``smart resample --shard/--shards`` + ``smart resample-merge``: ownership, an interrupted shard
losing nothing, and the merged manifest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.data.shards import journal_path, merge_shard_tables, shard_of

REPO = Path(__file__).resolve().parents[2]


def _ct(path: Path, seed: int, size=(96, 96, 80)) -> Path:
    rng = np.random.default_rng(seed)
    vol = rng.normal(-400, 200, size[::-1]).clip(-1024, 1500).astype(np.int16)
    vol[0] = -1000
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((0.7, 0.7, 1.25))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, os.fspath(path), useCompression=True)
    return path


def _resample(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.fspath(REPO)}
    return subprocess.Popen([sys.executable, "-m", "smart", "resample", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_owner_is_stable_and_covers_every_shard():
    ids = [f"case{i:04d}" for i in range(400)]
    owners = [shard_of(c, 7) for c in ids]
    assert set(owners) == set(range(7))
    assert owners == [shard_of(c, 7) for c in ids]  # deterministic (no per-process hash salt)
    assert all(shard_of(c, 1) == 0 for c in ids)
    with pytest.raises(ValueError, match="shard count must be an integer >= 1, got 0"):
        shard_of("a", 0)


def test_interrupted_shard_keeps_finished_cts_and_rerun_completes(tmp_path):
    # every case in nested sub-folders (discovery walks them). Shard 0 of 2 first finishes only 2 of its CTs (the
    # rest are not there yet: the state a shard killed after its second CT leaves, reached without racing a kill
    # against the process); Snakemake-style its declared outputs are deleted, and the rerun over every CT must
    # neither lose nor redo a finished CT.
    sources = [_ct(tmp_path / "raw" / f"site{i % 3}" / "a" / f"ct{i:02d}.nii.gz", i) for i in range(12)]
    # case ids are the paths relative to the input root (docs/data_preparation.md "Case ids"): site0__a__ct00
    ids = ["__".join(p.relative_to(tmp_path / "raw").parts)[:-7] for p in sources]
    mine = sorted(c for c in ids if shard_of(c, 2) == 0)
    assert len(mine) >= 3
    later = [p for p, c in zip(sources, ids) if c in mine[2:]]
    for p in later:  # held back until the rerun
        p.rename(p.with_name(p.name + ".later"))
    out = tmp_path / "ct_2mm"
    manifest, rejected = tmp_path / "shard_0_of_2.csv", tmp_path / "shard_0_of_2.rejected.csv"
    args = ["--input", os.fspath(tmp_path / "raw"), "--out-dir", os.fspath(out), "--manifest", os.fspath(manifest),
            "--rejected", os.fspath(rejected), "--shard", "0", "--shards", "2"]
    journal = journal_path(manifest)
    first = _resample(args)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    for p in later:
        p.with_name(p.name + ".later").rename(p)
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("*.nii.gz")}
    finished = set(pd.read_csv(journal)["case_id"])
    assert finished == set(mine[:2])
    assert {f"{c}.nii.gz" for c in finished} == set(done)
    assert not list(out.glob(".*tmp*"))  # atomic writes: no half-written CT left behind
    manifest.unlink(missing_ok=True)  # what Snakemake does to a failed job's declared outputs
    rejected.unlink(missing_ok=True)

    rerun = _resample(args)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert f"{len(mine) - len(finished)} resampled, {len(finished)} unchanged" in err
    for case in finished:  # kept, not rewritten
        assert (out / f"{case}.nii.gz").stat().st_mtime_ns == done[f"{case}.nii.gz"]
    table = pd.read_csv(manifest)
    assert sorted(table.case_id) == mine and (table.status == "ok").all()
    assert pd.read_csv(journal).equals(table)  # kept: the state a later rerun (after Snakemake deletes outputs) reads

    other = _resample(["--input", os.fspath(tmp_path / "raw"), "--out-dir", os.fspath(out),
                       "--manifest", os.fspath(tmp_path / "shard_1_of_2.csv"),
                       "--rejected", os.fspath(tmp_path / "shard_1_of_2.rejected.csv"),
                       "--shard", "1", "--shards", "2"])
    assert other.wait(timeout=600) == 0
    for case in mine:  # shard 1 leaves shard 0's CTs alone
        assert (out / f"{case}.nii.gz").is_file()
    merged, merged_rej = tmp_path / "manifest.csv", tmp_path / "rejected.csv"
    counts = merge_shard_tables([manifest, tmp_path / "shard_1_of_2.csv"],
                                [rejected, tmp_path / "shard_1_of_2.rejected.csv"], merged, merged_rej)
    assert counts == {"cases": 12, "ok": 12, "rejected": 0}
    assert pd.read_csv(merged).case_id.tolist() == sorted(ids)


def test_merge_errors_name_the_problem(tmp_path):
    cols = "case_id,source,path,status\n"
    (tmp_path / "a.csv").write_text(cols + "x,s,p,ok\n")
    (tmp_path / "b.csv").write_text(cols + "x,s2,p2,ok\n")
    (tmp_path / "r.csv").write_text("file,reason\n")
    (tmp_path / "bad.csv").write_text(cols + "y,s,,rejected\n")
    out = tmp_path / "m.csv", tmp_path / "mr.csv"
    with pytest.raises(ValueError, match=r"\['x'\] appear in more than one shard manifest"):
        merge_shard_tables([tmp_path / "a.csv", tmp_path / "b.csv"], [tmp_path / "r.csv"], *out)
    with pytest.raises(ValueError, match="gone.csv: shard table does not exist"):
        merge_shard_tables([tmp_path / "gone.csv"], [tmp_path / "r.csv"], *out)
    with pytest.raises(ValueError, match="none of the 1 case"):
        merge_shard_tables([tmp_path / "bad.csv"], [tmp_path / "r.csv"], *out)
    assert not out[0].exists()


def test_cli_rejects_a_bad_shard(tmp_path):
    proc = _resample(["--input", os.fspath(tmp_path), "--out-dir", os.fspath(tmp_path / "o"), "--manifest",
                      os.fspath(tmp_path / "m.csv"), "--rejected", os.fspath(tmp_path / "r.csv"), "--shards", "0"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "shard count must be an integer >= 1, got 0" in err
