"""Which CT sources a batch holds: image files, DICOM series folders, folders walked for both, and CSV listings.

Each source becomes one case, named by :func:`smart.data.io.case_id_from_path` from its path relative to the input
it was found under (docs/data_preparation.md "Case ids"). Inputs that hold nothing usable, tree entries that cannot
be read or walked (permission denied, a symbolic link that loops or points nowhere, a name that is not valid UTF-8)
and sources whose case id is already taken come back as ``rejected`` rows ``{"file", "reason"}``: nothing is
dropped silently, and no entry of a tree can stop the batch.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from smart.data.io import (ImageReadError, case_id_from_path, check_no_special_entries, display_path,
                           is_dicom_folder, is_image_file, special_kind, table_path)

# CSV listings name their paths in the first of these columns they have.
LIST_COLUMNS = ("path", "image", "source", "file")
# Optional listing column: the SeriesInstanceUID to read from that row's DICOM folder (the per-folder choice).
SERIES_COLUMN = "series_uid"


@dataclass(frozen=True)
class Source:
    """One case source: ``path`` (a file or a DICOM series folder), the input ``root`` it was found under (its
    case id is its path relative to it) and the ``series_uid`` a listing chose for it (None: the folder rule)."""

    path: Path
    root: Path
    series_uid: str | None = None

    @property
    def case_id(self) -> str:
        return case_id_from_path(self.path, self.root)


def discover_inputs(inputs: Iterable[str | os.PathLike],
                    exclude: Path | None = None) -> tuple[list[Source], list[dict]]:
    """Expand ``--input`` into case :class:`Source` s and ``rejected`` rows for bad inputs.

    A folder holding a DICOM series is one case; any other folder is walked (sorted; hidden entries and ``exclude``
    skipped; symbolic links followed, each real folder walked once) for image files and DICOM series folders. A
    ``.csv`` lists paths (each row is an input of its own), optionally with a ``series_uid`` per row, expanded the
    same way (but not further CSVs).
    """
    sources: list[Source] = []
    rejected: list[dict] = []
    excluded = exclude.resolve() if exclude is not None else None
    for item in inputs:
        path = Path(item)
        if path.is_file() and path.suffix.lower() == ".csv":
            listed, bad = _paths_from_csv(path)
            rejected.extend(bad)
            base = path.resolve().parent
            for entry, series_uid in listed:
                # ids relative to the listing's folder: rows p1/CT and p2/CT are p1__CT and p2__CT, not CT twice
                root = base if entry.is_relative_to(base) and entry != base else None
                _expand(entry, sources, rejected, excluded, series_uid, root)
        else:
            _expand(path, sources, rejected, excluded, None, None)
    return sources, rejected


def _reject(rejected: list[dict], path: Path, reason: str) -> None:
    rejected.append({"file": display_path(path), "reason": reason})


def _expand(path: Path, sources: list[Source], rejected: list[dict], excluded: Path | None,
            series_uid: str | None, root: Path | None) -> None:
    """One input: a file or a series folder is a case, any other folder is walked. Case ids are relative to
    ``root`` (a listing's folder), else to the input itself."""
    problem = _entry_problem(path)
    if problem:
        _reject(rejected, path, problem)
    elif path.is_file():
        sources.append(Source(path, root or path, series_uid))
    else:
        series = _series_folder(path, rejected)
        if series:
            sources.append(Source(path, root or path, series_uid))
            _series_folder_images(path, root or path, sources, rejected)
        before, rows_before = len(sources), len(rejected)
        _walk(path, root or path, sources, rejected, excluded, {os.path.realpath(path)}, series is not False)
        if series is False and len(sources) == before and len(rejected) == rows_before:
            _reject(rejected, path, "folder holds no image files or DICOM series")


def _entry_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as a tree entry (None when it can): not valid UTF-8, a dangling or looping
    symbolic link, permission denied. Checked by opening it, so it holds for root without DAC override too."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid UTF-8 text (shown with \\x escapes); rename it"
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop (too many levels of symbolic links)"
        if err.errno == errno.ENOENT and os.path.islink(path):
            return f"dangling symbolic link (points to {display_path(os.readlink(path))!s}, which does not exist)"
        if err.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot read ({err.strerror or err})"
    kind = special_kind(os.stat(path).st_mode)
    if kind:
        return f"not a regular file or folder ({kind}); reading it would block or misread"
    try:
        if path.is_dir():
            with os.scandir(path):
                pass
        else:
            with open(path, "rb"):
                pass
    except OSError as err:
        return f"cannot read ({err.strerror or err})"
    return None


def _series_folder(folder: Path, rejected: list[dict]) -> bool | None:
    """True when ``folder`` is a DICOM series folder (:func:`smart.data.io.is_dicom_folder`: decided by the files it
    holds, never by what a scan of them finds, so its case id depends on its path alone); None (and a row) when it
    is one but also holds pipes or devices, which reading its files would block on (its sub-folders are still
    walked); False otherwise."""
    if not is_dicom_folder(folder):
        return False  # no DICOM: the folder is walked, its pipes are rows of their own
    try:
        check_no_special_entries(folder)
    except ImageReadError as err:
        _reject(rejected, folder, err.reason)
        return None
    return True


def _series_folder_images(folder: Path, root: Path, sources: list[Source], rejected: list[dict]) -> None:
    """Image files of another format beside a DICOM series (a converted NIfTI next to its slices) are cases of their
    own, not part of the series."""
    for entry in _sorted_entries(folder, rejected):
        name = entry.name
        if not name.startswith(".") and is_image_file(name) and not name.lower().endswith(".dcm") \
                and _entry_problem(Path(entry.path)) is None:
            sources.append(Source(Path(entry.path), root))


def _sorted_entries(folder: Path, rejected: list[dict]) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: os.fsencode(e.name))
    except OSError as err:
        _reject(rejected, folder, f"cannot list the folder ({err.strerror or err})")
        return []


def _walk(folder: Path, root: Path, sources: list[Source], rejected: list[dict], excluded: Path | None,
          walked: set[str], in_series: bool = False) -> None:
    """Depth-first, sorted walk; every entry is a source, skipped as documented (hidden, not an image) or a
    rejection row. ``walked`` holds the real paths of the folders entered, so a link back up the tree (a loop) or a
    second link to one folder is a rejection instead of an endless walk or a case counted twice. In a DICOM series
    folder (``in_series``) only sub-folders are walked: its files are the series reader's to read or name."""
    for entry in _sorted_entries(folder, rejected):
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue  # hidden: .DS_Store, AppleDouble ._*, .git, editors' files
        if in_series and not _is_dir(entry):
            continue
        problem = _entry_problem(path)
        if problem:
            _reject(rejected, path, problem)
            continue
        if path.is_dir():
            if excluded is not None and path.resolve() == excluded:
                continue
            real = os.path.realpath(path)
            if real in walked:
                _reject(rejected, path, f"symbolic link to a folder already walked ({display_path(real)}): "
                                        f"a loop or a second path to the same cases; not walked again")
                continue
            walked.add(real)
            series = _series_folder(path, rejected)
            if series:
                sources.append(Source(path, root))
                _series_folder_images(path, root, sources, rejected)
            _walk(path, root, sources, rejected, excluded, walked, series is not False)
        elif is_image_file(entry.name):
            sources.append(Source(path, root))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _paths_from_csv(csv_path: Path) -> tuple[list[tuple[Path, str | None]], list[dict]]:
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as err:  # pandas raises parser, encoding and empty-data errors
        return [], [{"file": display_path(csv_path), "reason": f"unreadable CSV ({err})"}]
    column = next((c for c in LIST_COLUMNS if c in frame.columns), None)
    if column is None:
        return [], [{"file": display_path(csv_path),
                     "reason": f"CSV has none of the columns {', '.join(LIST_COLUMNS)} (found {list(frame.columns)})"}]
    base = csv_path.resolve().parent
    uids = frame[SERIES_COLUMN] if SERIES_COLUMN in frame.columns else [""] * len(frame)
    return [(table_path(v, base), str(u).strip() or None) for v, u in zip(frame[column], uids) if str(v).strip()], []


def assign_case_ids(sources: Sequence[Source]) -> tuple[list[tuple[str, Source]], list[dict]]:
    """``[(case_id, source)]`` in input order, and a ``rejected`` row (with its ``case_id``) for every later source
    whose case id an earlier one already took — the same relative path under two inputs, or two formats of one
    name (``ct.nii.gz`` and ``ct.nrrd`` in one folder): two outputs of one name would overwrite each other."""
    cases: list[tuple[str, Source]] = []
    rejected: list[dict] = []
    seen: dict[str, str] = {}
    for src in sources:
        case_id = src.case_id
        if case_id in seen:
            rejected.append({"file": display_path(src.path), "case_id": case_id,
                             "reason": f"duplicate case_id {case_id!r} (already taken by {seen[case_id]}); pass "
                                       f"their common parent folder or a CSV listing (ids are paths relative to "
                                       f"it), or rename one of them"})
            continue
        seen[case_id] = display_path(src.path)
        cases.append((case_id, src))
    return cases, rejected


__all__ = ["LIST_COLUMNS", "SERIES_COLUMN", "Source", "assign_case_ids", "discover_inputs"]
