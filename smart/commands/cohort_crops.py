"""``smart cohort-crops``: lesion-centred crops + a classification cohort (``cohort.csv``) from full CTs with a tumour
mask or a world-mm centre per lesion (treatment-response cohort, paper Sec. IV-A Task 3). See
:mod:`smart.data.lesion_crops` for the input table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from smart.atomic import write_csv, write_json
from smart.data.blank import blank_note, blank_summary
from smart.commands._crop_options import add_crop_arguments, check_crop_arguments
from smart.provenance import provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", required=True, type=Path,
                        help="CSV: sample_id, patient_id, image (full CT), label, and mask or center_x/y/z (mm)")
    parser.add_argument("--out-dir", required=True, type=Path,
                        help="writes crops/*.nii.gz, cohort.csv, rejected.csv, cohort.summary.json")
    add_crop_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from smart.data.lesion_crops import cut_lesion_crops, read_lesion_table

    check_crop_arguments(args)
    started = time.perf_counter()
    try:
        table = read_lesion_table(args.cohort)
    except (FileNotFoundError, ValueError) as err:
        print(f"smart cohort-crops: {err}", file=sys.stderr)
        return 2
    cohort, rejected = cut_lesion_crops(table, args.cohort.parent, args.out_dir, crop_size=args.crop_size,
                                        spacing=args.spacing, min_in_image=args.min_in_image)
    write_csv(args.out_dir / "rejected.csv", rejected)
    write_csv(args.out_dir / "cohort.csv", cohort)
    blank = blank_summary(cohort)
    write_json(args.out_dir / "cohort.summary.json",
               {"input": str(args.cohort), "rows": len(table), "crops": len(cohort), "rejected": len(rejected),
                "rejected_no_image": int(rejected["reason"].str.startswith("no image:").sum()), "blank_crops": blank,
                "crop_size": args.crop_size, "spacing": args.spacing, "min_in_image": args.min_in_image,
                "seconds": round(time.perf_counter() - started, 2), "provenance": provenance()})
    if blank["count"]:
        print("note: " + blank_note(str(args.out_dir / "cohort.csv"), blank["indices"], len(cohort), "crops"),
              file=sys.stderr)
    for _, r in rejected.iterrows():
        print(f"rejected {r['sample_id']}: {r['file']}: {r['reason']}", file=sys.stderr)
    print(f"wrote {args.out_dir / 'cohort.csv'}: {len(cohort)} crops ({args.crop_size}^3 at {args.spacing:g} mm), "
          f"{len(rejected)} rejected of {len(table)} rows")
    return 0 if len(cohort) else 1
