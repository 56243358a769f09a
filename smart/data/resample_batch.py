"""A batch of CT sources -> ``DIR/{case_id}.nii.gz`` at isotropic spacing + an incremental manifest + rejections.

One job handles the whole batch or one shard of it (docs/data_resample.md "Shards"); ``smart resample`` calls
:func:`resample_batch`. A bad source is listed in the rejections and the batch goes on. Each manifest row carries a
fingerprint of its source and settings, so a re-run skips the cases that are unchanged since it was last written.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import pandas as pd

from smart.atomic import write_csv
from smart.data.discovery import assign_case_ids, discover_inputs
from smart.data.resample import resample_file
from smart.data.resample_memory import check_memory
from smart.data.shards import check_shard, journal_path, shard_of
from smart.data.validation import ImageReadError, ValidationRules

MANIFEST_COLUMNS = ["case_id", "source", "path", "status", "orig_spacing", "orig_size", "new_spacing", "new_size",
                    "hu_min", "hu_max", "series_uid", "geometry", "orientation", "series_choice"]
# Extra column after the contract ones: identifies source + settings, so a re-run can skip unchanged cases.
FINGERPRINT_COLUMN = "fingerprint"
REJECTED_COLUMNS = ["file", "reason"]


def resample_batch(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, manifest: str | os.PathLike,
                   rejected_path: str | os.PathLike, *, spacing: float | tuple[float, float, float],
                   rules: ValidationRules, series_uid: str | None = None, force: bool = False,
                   progress: bool = True, shard: int = 0, shards: int = 1,
                   mem_mb: float | None = None) -> dict[str, int]:
    """Resample every case of ``inputs`` (see ``smart.data.discovery.discover_inputs``) to
    ``out_dir/{case_id}.nii.gz`` at ``spacing`` mm, writing ``manifest`` (``MANIFEST_COLUMNS`` + fingerprint) and
    ``rejected_path`` (``REJECTED_COLUMNS``).

    With ``mem_mb``, a CT whose peak memory estimated from its header exceeds it is rejected before it is read
    (:func:`smart.data.resample_memory.check_memory`).

    With ``shards > 1`` only the cases whose id hashes to ``shard`` are handled (:mod:`smart.data.shards`);
    input-level rejections (missing paths, empty folders) are reported by shard 0 only.

    A case whose manifest row is ``ok`` with the same :func:`source_fingerprint` and an existing output is kept as is
    (unless ``force``). Each finished case is recorded in the manifest's journal (``<manifest>.journal.csv``,
    rewritten atomically after every case and kept afterwards); both tables are written at the end. The journal is
    not a declared output, so when Snakemake deletes a job's outputs (a killed job, a forced rerun, or a rerun because
    CTs were added) the rerun still skips every finished case. A bad source is a ``rejected`` row (its stale output removed), never an exception. Returns the counts
    ``{"resampled", "unchanged", "rejected", "cases"}``. Raises ``ValueError`` for a bad shard.
    """
    check_shard(shard, shards)
    out_dir, manifest, rejected_path = Path(out_dir), Path(manifest), Path(rejected_path)
    sources, rejected = discover_inputs(inputs, exclude=out_dir)
    cases, duplicates = assign_case_ids(sources)
    if shards > 1:
        rejected = rejected if shard == 0 else []
        cases = [(case_id, src) for case_id, src in cases if shard_of(case_id, shards) == shard]
        duplicates = [d for d in duplicates if shard_of(d["case_id"], shards) == shard]
    rejected += [{"file": d["file"], "reason": d["reason"]} for d in duplicates]
    journal = journal_path(manifest)
    previous = {} if force else {**_previous_rows(manifest), **_previous_rows(journal)}

    rows: list[dict] = []
    counts = {"resampled": 0, "unchanged": 0, "rejected": 0}
    for case_id, source in _progress(cases, progress):
        src, uid = source.path, source.series_uid or series_uid  # a listing's per-folder choice wins
        dest = out_dir / f"{case_id}.nii.gz"
        try:
            fp = source_fingerprint(src, spacing=spacing, series_uid=uid, rules=rules)
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
                if mem_mb is not None:
                    check_memory(src, mem_mb, uid)
                rec = resample_file(src, dest, spacing=spacing, series_uid=uid, rules=rules)
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
        _write_tables(journal, rows, None, rejected)
    _write_tables(journal, rows, None, rejected)
    _write_tables(manifest, rows, rejected_path, rejected)
    counts["rejected"] = len(rejected)
    counts["cases"] = len(cases)
    return counts


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
    if "series_choice" not in frame.columns:  # manifests written before the column existed
        frame["series_choice"] = ""
    if not set(MANIFEST_COLUMNS + [FINGERPRINT_COLUMN]).issubset(frame.columns):
        return {}
    rows = {}
    for rec in frame.to_dict("records"):
        rec["hu_min"] = float(rec["hu_min"]) if rec["hu_min"] else rec["hu_min"]
        rec["hu_max"] = float(rec["hu_max"]) if rec["hu_max"] else rec["hu_max"]
        rows[rec["case_id"]] = rec
    return rows


def _write_tables(manifest: Path, rows: list[dict], rejected_path: Path | None, rejected: list[dict]) -> None:
    write_csv(manifest, pd.DataFrame(rows, columns=MANIFEST_COLUMNS + [FINGERPRINT_COLUMN]))
    if rejected_path is not None:
        write_csv(rejected_path, pd.DataFrame(rejected, columns=REJECTED_COLUMNS))


def _progress(items: list, enabled: bool) -> Iterable:
    from smart.progress import track

    return track(items, "resample", unit="case", enabled=enabled)
