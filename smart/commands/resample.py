"""``smart resample``: CT files / DICOM series -> ``DIR/{case_id}.nii.gz`` at isotropic spacing + manifest + rejections.

One job handles the whole batch (docs/data_resample.md "Snakemake granularity"). A bad file is listed in
``rejected.csv`` and the batch goes on; the exit status is 0 when at least one case is resampled (or already was),
1 when none is. Cases whose source and settings are unchanged since the manifest was last written are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import pandas as pd

from smart.atomic import write_csv
from smart.data.io import case_id_from_path, dicom_series_ids, is_image_file
from smart.data.resample import resample_file
from smart.data.validation import DEFAULT_MAX_VOXELS, ImageReadError, ValidationRules

MANIFEST_COLUMNS = ["case_id", "source", "path", "status", "orig_spacing", "orig_size", "new_spacing", "new_size",
                    "hu_min", "hu_max"]
# Extra column after the contract ones: identifies source + settings, so a re-run can skip unchanged cases.
FINGERPRINT_COLUMN = "fingerprint"
REJECTED_COLUMNS = ["file", "reason"]
_LIST_COLUMNS = ("path", "image", "source", "file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="image files, DICOM series folders, folders to walk, or CSV files listing paths "
                             "(column path/image/source/file; relative to the CSV's folder)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where {case_id}.nii.gz are written")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest CSV to write")
    parser.add_argument("--rejected", required=True, type=Path, help="rejections CSV to write (file, reason)")
    parser.add_argument("--spacing", type=float, nargs="+", default=[2.0], metavar="MM",
                        help="target spacing in mm: one value (isotropic, default 2.0) or three (x y z)")
    parser.add_argument("--max-voxels", type=int, default=DEFAULT_MAX_VOXELS,
                        help=f"reject volumes with more voxels than this (default {DEFAULT_MAX_VOXELS})")
    parser.add_argument("--series-uid", default=None,
                        help="SeriesInstanceUID to read from DICOM folders (default: the largest series)")
    parser.add_argument("--no-verify-gzip", dest="verify_gzip", action="store_false",
                        help="skip the CRC check of .gz inputs (ITK reads truncated/corrupt .nii.gz without error; "
                             "only for inputs verified otherwise)")
    parser.add_argument("--force", action="store_true", help="resample every case even if unchanged")


def main(args: argparse.Namespace) -> int:
    if len(args.spacing) not in (1, 3) or not all(math.isfinite(v) and v > 0 for v in args.spacing):
        print(f"smart resample: --spacing takes 1 or 3 positive values (mm), got {args.spacing}", file=sys.stderr)
        return 2
    spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    try:
        rules = ValidationRules(max_voxels=args.max_voxels, verify_gzip=args.verify_gzip)
    except ValueError as err:
        print(f"smart resample: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    sources, rejected = discover_inputs(args.input, exclude=out_dir)
    previous = {} if args.force else _previous_rows(args.manifest)

    rows: list[dict] = []
    seen: dict[str, str] = {}
    cases = []
    for src in sources:
        case_id = case_id_from_path(src)
        if case_id in seen:
            rejected.append({"file": os.fspath(src), "reason": f"duplicate case_id {case_id!r} (already taken by "
                                                               f"{seen[case_id]}); rename one of them"})
            continue
        seen[case_id] = os.fspath(src)
        cases.append((case_id, src))

    counts = {"resampled": 0, "unchanged": 0, "rejected": 0}
    for case_id, src in _progress(cases):
        dest = out_dir / f"{case_id}.nii.gz"
        try:
            fp = source_fingerprint(src, spacing=spacing, series_uid=args.series_uid, rules=rules)
        except OSError as err:  # vanished or unlistable since discovery
            rejected.append({"file": os.fspath(src), "reason": f"cannot list the source ({err.strerror or err})"})
            continue
        old = previous.get(case_id)
        if old is not None and old.get("status") == "ok" and old.get(FINGERPRINT_COLUMN) == fp \
                and Path(str(old.get("path"))).is_file():
            rows.append({c: old[c] for c in MANIFEST_COLUMNS} | {FINGERPRINT_COLUMN: fp})
            counts["unchanged"] += 1
        else:
            try:
                rec = resample_file(src, dest, spacing=spacing, series_uid=args.series_uid, rules=rules)
            except ImageReadError as err:
                dest.unlink(missing_ok=True)  # a stale output of an earlier, different source must not linger
                rejected.append({"file": err.path, "reason": err.reason})
                rows.append({"case_id": case_id, "source": os.fspath(Path(src).resolve()), "path": "",
                             "status": "rejected", FINGERPRINT_COLUMN: fp})
                print(f"smart resample: rejected {err}", file=sys.stderr)
            else:
                rows.append({"case_id": case_id, "status": "ok", FINGERPRINT_COLUMN: fp, **asdict(rec)})
                counts["resampled"] += 1
        # rewritten after every case, so a killed batch resumes from where it stopped
        _write_tables(args.manifest, rows, args.rejected, rejected)
    _write_tables(args.manifest, rows, args.rejected, rejected)
    counts["rejected"] = len(rejected)
    ok = counts["resampled"] + counts["unchanged"]
    print(f"smart resample: {counts['resampled']} resampled, {counts['unchanged']} unchanged (skipped), "
          f"{counts['rejected']} rejected -> {args.manifest}", file=sys.stderr)
    return 0 if ok > 0 else 1


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
    column = next((c for c in _LIST_COLUMNS if c in frame.columns), None)
    if column is None:
        return [], [{"file": os.fspath(csv_path),
                     "reason": f"CSV has none of the columns {', '.join(_LIST_COLUMNS)} (found {list(frame.columns)})"}]
    base = csv_path.resolve().parent
    return [p if p.is_absolute() else base / p for p in (Path(str(v)) for v in frame[column].dropna())], []


def source_fingerprint(source: str | os.PathLike, *, spacing, series_uid: str | None, rules: ValidationRules) -> str:
    """Hash of the source's files (name, size, mtime) and the settings that shape the output.

    A DICOM folder's files are those directly inside it (what the series reader sees). Content is not hashed: a
    re-run must stay cheap on thousands of CTs, and a file rewritten in place changes its mtime.
    """
    src = Path(source).resolve()
    files = sorted(f for f in src.iterdir() if f.is_file()) if src.is_dir() else [src]
    stats = []
    for f in files:
        st = f.stat()
        stats.append([f.name, st.st_size, st.st_mtime_ns])
    thresholds = {k: v for k, v in asdict(rules).items() if k != "verify_gzip"}  # checks only, output unchanged
    blob = json.dumps({"source": os.fspath(src), "files": stats, "spacing": spacing, "series_uid": series_uid,
                       "rules": thresholds}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _previous_rows(manifest: Path) -> dict[str, dict]:
    if not Path(manifest).is_file():
        return {}
    try:
        frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except Exception:  # an unreadable old manifest only means nothing can be skipped
        return {}
    if not set(MANIFEST_COLUMNS + [FINGERPRINT_COLUMN]).issubset(frame.columns):
        return {}
    rows = {}
    for rec in frame.to_dict("records"):
        rec["hu_min"] = float(rec["hu_min"]) if rec["hu_min"] else rec["hu_min"]
        rec["hu_max"] = float(rec["hu_max"]) if rec["hu_max"] else rec["hu_max"]
        rows[rec["case_id"]] = rec
    return rows


def _write_tables(manifest: Path, rows: list[dict], rejected_path: Path, rejected: list[dict]) -> None:
    write_csv(manifest, pd.DataFrame(rows, columns=MANIFEST_COLUMNS + [FINGERPRINT_COLUMN]))
    write_csv(rejected_path, pd.DataFrame(rejected, columns=REJECTED_COLUMNS))


def _progress(items: list) -> Iterable:
    from tqdm import tqdm

    return tqdm(items, desc="resample", unit="case", disable=not sys.stderr.isatty())
