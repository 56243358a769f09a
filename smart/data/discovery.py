"""Which CT sources a batch holds: image files, DICOM series folders, folders walked for both, and CSV listings.

Each source becomes one case named by ``smart.data.io.case_id_from_path``; inputs that hold nothing usable and
sources whose case id is already taken come back as ``rejected`` rows ``{"file", "reason"}`` (nothing is dropped
silently).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from smart.data.io import case_id_from_path, dicom_series_ids, is_image_file, table_path

# CSV listings name their paths in the first of these columns they have.
LIST_COLUMNS = ("path", "image", "source", "file")


def discover_inputs(inputs: Iterable[str | os.PathLike], exclude: Path | None = None) -> tuple[list[Path], list[dict]]:
    """Expand ``--input`` into case sources (files or DICOM series folders) and ``rejected`` rows for bad inputs.

    A folder holding a DICOM series is one case; any other folder is walked (sorted, hidden entries and
    ``exclude`` skipped) for image files and DICOM series folders. A ``.csv`` lists paths, which are expanded the
    same way (but not further CSVs).
    """
    sources: list[Path] = []
    rejected: list[dict] = []
    excluded = exclude.resolve() if exclude is not None else None
    for item in inputs:
        path = Path(item)
        if path.is_file() and path.suffix.lower() == ".csv":
            listed, bad = _paths_from_csv(path)
            rejected.extend(bad)
            for entry in listed:
                _expand(entry, sources, rejected, excluded)
        else:
            _expand(path, sources, rejected, excluded)
    return sources, rejected


def _expand(path: Path, sources: list[Path], rejected: list[dict], excluded: Path | None) -> None:
    if not path.exists():
        rejected.append({"file": os.fspath(path), "reason": "no such file or folder"})
    elif path.is_file():
        sources.append(path)
    elif dicom_series_ids(path):
        sources.append(path)
    else:
        found = []
        for root, dirs, files in os.walk(path):
            root_path = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and (excluded is None or (root_path / d).resolve() != excluded))
            if root_path != path and dicom_series_ids(root_path):
                found.append(root_path)
                continue
            found.extend(root_path / f for f in sorted(files) if not f.startswith(".") and is_image_file(f))
        if not found:
            rejected.append({"file": os.fspath(path), "reason": "folder holds no image files or DICOM series"})
        sources.extend(found)


def _paths_from_csv(csv_path: Path) -> tuple[list[Path], list[dict]]:
    try:
        frame = pd.read_csv(csv_path)
    except Exception as err:  # pandas raises parser, encoding and empty-data errors
        return [], [{"file": os.fspath(csv_path), "reason": f"unreadable CSV ({err})"}]
    column = next((c for c in LIST_COLUMNS if c in frame.columns), None)
    if column is None:
        return [], [{"file": os.fspath(csv_path),
                     "reason": f"CSV has none of the columns {', '.join(LIST_COLUMNS)} (found {list(frame.columns)})"}]
    base = csv_path.resolve().parent
    return [table_path(v, base) for v in frame[column].dropna()], []


def assign_case_ids(sources: Sequence[Path]) -> tuple[list[tuple[str, Path]], list[dict]]:
    """``[(case_id, source)]`` in input order, and a ``rejected`` row for every later source whose case id an earlier
    one already took (two outputs of one name would overwrite each other)."""
    cases: list[tuple[str, Path]] = []
    rejected: list[dict] = []
    seen: dict[str, str] = {}
    for src in sources:
        case_id = case_id_from_path(src)
        if case_id in seen:
            rejected.append({"file": os.fspath(src), "reason": f"duplicate case_id {case_id!r} (already taken by "
                                                               f"{seen[case_id]}); rename one of them"})
            continue
        seen[case_id] = os.fspath(src)
        cases.append((case_id, src))
    return cases, rejected
