"""``smart import-masks``: RTSTRUCT ROIs / SEG segments of a DICOM tree -> NIfTI masks on the referenced CT grids,
``masks.csv`` (one row per case and rater), ``raters.csv`` (one row per case) and ``rejected.csv``
(:mod:`smart.data.mask_import`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dicom-root", required=True, type=Path,
                        help="folder holding the CT series and the RTSTRUCT/SEG files (walked recursively)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--roi", default=None, help="ROI name / segment label, exact")
    which.add_argument("--roi-pattern", default=None,
                       help="regular expression a ROI name / segment label must match in full (case-insensitive); "
                            "several matches in one file are rejected as ambiguous")
    parser.add_argument("--rater-tag", default="SeriesDescription",
                        help="DICOM keyword of the RTSTRUCT/SEG that names the rater (default SeriesDescription; "
                             "e.g. ContentCreatorName, StructureSetLabel); the file name when empty")
    parser.add_argument("--out-dir", required=True, type=Path,
                        help="writes masks/{case_id}/{rater}.nii.gz, masks.csv, raters.csv, rejected.csv")


def main(args: argparse.Namespace) -> int:
    from smart.atomic import write_csv
    from smart.data.mask_import import import_masks

    masks, raters, rejected = import_masks(args.dicom_root, args.out_dir, roi=args.roi, roi_pattern=args.roi_pattern,
                                           rater_tag=args.rater_tag)
    write_csv(args.out_dir / "rejected.csv", rejected)
    write_csv(args.out_dir / "masks.csv", masks)
    write_csv(args.out_dir / "raters.csv", raters)
    for _, row in rejected.iterrows():
        print(f"smart import-masks: rejected {row['file']}: {row['reason']}", file=sys.stderr)
    print(f"smart import-masks: {len(masks)} masks of {len(raters)} cases, {len(rejected)} rejected -> "
          f"{args.out_dir / 'raters.csv'}", file=sys.stderr)
    return 0 if len(masks) else 1
