"""smart.data.discovery: which sources a batch's inputs hold, and one case id per source."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from smart.data.discovery import Source, assign_case_ids, discover_inputs


def test_folder_walk_finds_images_and_series_skips_hidden_and_excluded(tmp_path, write_ct, ct5n_dir):
    write_ct("in/b.nii.gz")
    write_ct("in/sub/a.mha")
    write_ct("in/.hidden/c.nii.gz")
    write_ct("in/out/d.nii.gz")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    shutil.copytree(ct5n_dir, tmp_path / "in" / "series")
    sources, rejected = discover_inputs([tmp_path / "in"], exclude=tmp_path / "in" / "out")
    assert [s.path.relative_to(tmp_path / "in").as_posix() for s in sources] == ["b.nii.gz", "series", "sub/a.mha"]
    assert [s.case_id for s in sources] == ["b", "series", "sub__a"]
    assert rejected == []


def test_csv_listing_is_relative_to_its_folder_and_bad_inputs_are_rows(tmp_path, write_ct):
    a = write_ct("list/a.nii.gz")
    pd.DataFrame({"image": ["a.nii.gz", "missing.nii.gz"]}).to_csv(tmp_path / "list" / "cases.csv", index=False)
    pd.DataFrame({"name": ["x"]}).to_csv(tmp_path / "nocolumn.csv", index=False)
    (tmp_path / "empty").mkdir()
    sources, rejected = discover_inputs([tmp_path / "list" / "cases.csv", tmp_path / "nocolumn.csv",
                                         tmp_path / "empty"])
    assert [s.path for s in sources] == [a.resolve()]
    assert [(Path(r["file"]).name, r["reason"].split(" (")[0]) for r in rejected] == [
        ("missing.nii.gz", "no such file or folder"),
        ("nocolumn.csv", "CSV has none of the columns path, image, source, file"),
        ("empty", "folder holds no image files or DICOM series"),
    ]


def test_second_source_of_a_case_id_is_rejected(tmp_path):
    # the same relative path under two inputs: the later one is a rejection, never a second writer of ct.nii.gz
    first, second, other = (Source(tmp_path / "x" / "ct.nii.gz", tmp_path / "x"),
                            Source(tmp_path / "y" / "ct.nrrd", tmp_path / "y"),
                            Source(tmp_path / "y" / "b.nii.gz", tmp_path / "y"))
    cases, rejected = assign_case_ids([first, second, other])
    assert cases == [("ct", first), ("b", other)]
    assert [r["file"] for r in rejected] == [os.fspath(second.path)]
    assert rejected[0]["reason"].startswith("duplicate case_id 'ct' (already taken by ")
