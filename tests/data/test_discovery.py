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


# ------------------------------------------------------------------ issue #20 item 5: no tree entry takes down a batch


def _rows(rejected):
    return {os.path.relpath(r["file"], r["file"].split("/in/")[0] + "/in"): r["reason"] for r in rejected}


def test_links_that_loop_or_point_nowhere_are_rows(tmp_path, write_ct):
    write_ct("in/a/good.nii.gz")
    os.symlink("..", tmp_path / "in" / "a" / "up")                         # a folder link back up the tree
    os.symlink("self.nii.gz", tmp_path / "in" / "self.nii.gz")             # a link to itself
    os.symlink("gone/ct.nii.gz", tmp_path / "in" / "dangling.nii.gz")      # a link to nothing
    os.symlink(tmp_path / "in" / "a", tmp_path / "in" / "b")               # a second path to folder a
    sources, rejected = discover_inputs([tmp_path / "in"])
    assert [s.case_id for s in sources] == ["a__good"]
    assert _rows(rejected) == {
        "a/up": f"symbolic link to a folder already walked ({tmp_path / 'in'}): a loop or a second path to the same "
                f"cases; not walked again",
        "b": f"symbolic link to a folder already walked ({tmp_path / 'in' / 'a'}): a loop or a second path to the "
             f"same cases; not walked again",
        "dangling.nii.gz": "dangling symbolic link (points to gone/ct.nii.gz, which does not exist)",
        "self.nii.gz": "symbolic link loop (too many levels of symbolic links)",
    }


def test_followed_link_to_a_folder_outside_is_walked(tmp_path, write_ct):
    write_ct("elsewhere/p9/ct.nii.gz")
    (tmp_path / "in").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "in" / "linked")
    sources, rejected = discover_inputs([tmp_path / "in"])
    assert ([s.case_id for s in sources], rejected) == (["linked__p9__ct"], [])


def test_names_that_are_not_utf8_are_rows(tmp_path, write_ct):
    write_ct("in/good.nii.gz")
    bad_file = os.fsencode(tmp_path / "in") + b"/scan\xff.nii.gz"
    bad_dir = os.fsencode(tmp_path / "in") + b"/pat\xe9"
    with open(bad_file, "wb") as fh:
        fh.write(b"x")
    os.mkdir(bad_dir)
    sources, rejected = discover_inputs([tmp_path / "in"])
    assert [s.case_id for s in sources] == ["good"]
    reason = "the name is not valid UTF-8 text (shown with \\x escapes); rename it"
    assert rejected == [{"file": f"{tmp_path}/in/pat\\xe9", "reason": reason},
                        {"file": f"{tmp_path}/in/scan\\xff.nii.gz", "reason": reason}]


# ------------------------------------------------------------------ issue #20 item 6: ids from the relative path


def test_case_ids_are_relative_paths(tmp_path, ct5n_dir, write_ct):
    for patient in ("p1", "p2"):
        shutil.copytree(ct5n_dir, tmp_path / "in" / patient / "CT")
    write_ct("in/site 1/ct.nii.gz")
    write_ct("in/site_1/ct.nii.gz")
    sources, rejected = discover_inputs([tmp_path / "in"])
    lossy = "site_1__ct___h" + __import__("hashlib").sha1(b"site 1/ct").hexdigest()[:10]
    assert [s.case_id for s in sources] == ["p1__CT", "p2__CT", lossy, "site_1__ct"]
    assert rejected == []
    # a file or series passed on its own is named by its own name
    sources, _ = discover_inputs([tmp_path / "in" / "p1" / "CT", tmp_path / "in" / "site_1" / "ct.nii.gz"])
    assert [s.case_id for s in sources] == ["CT", "ct"]


def test_pipes_are_rows_never_a_hang(tmp_path, write_ct, ct5n_dir):
    """A named pipe blocks whoever opens it: one named like an image, and one inside a DICOM folder (GDCM's scan
    opens every file), are rejection rows; the rest is found."""
    write_ct("in/good.nii.gz")
    os.mkfifo(tmp_path / "in" / "stream.nii.gz")
    shutil.copytree(ct5n_dir, tmp_path / "in" / "series")
    os.mkfifo(tmp_path / "in" / "series" / "pipe")
    sources, rejected = discover_inputs([tmp_path / "in"])
    assert [s.case_id for s in sources] == ["good"]
    assert _rows(rejected) == {
        "series": "holds pipe (named pipe): not regular files, which a DICOM scan would block on or misread; remove them",
        "stream.nii.gz": "not a regular file or folder (named pipe); reading it would block or misread",
    }
