"""``smart resample``: CT files / DICOM series -> ``DIR/{case_id}.nii.gz`` at isotropic spacing + manifest + rejections
(smart.data.resample_batch).

The exit status is 0 when at least one case is resampled (or already was) or, with ``--shards N > 1``, when the shard
completes; 1 when none is; 2 for bad arguments (incl. a bad ``--shard``/``--shards``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from smart.data.validation import DEFAULT_MAX_VOXELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="image files, DICOM series folders, folders to walk, or CSV files listing paths "
                             "(column path/image/source/file; relative to the CSV's folder; optional series_uid column "
                             "chooses each DICOM folder's series). case_id = the path relative to the input (or the "
                             "CSV's folder), parts joined by '__' (docs/data_preparation.md 'Case ids')")
    parser.add_argument("--out-dir", required=True, type=Path, help="where {case_id}.nii.gz are written")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest CSV to write")
    parser.add_argument("--rejected", required=True, type=Path, help="rejections CSV to write (file, reason)")
    parser.add_argument("--spacing", type=float, nargs="+", default=[2.0], metavar="MM",
                        help="target spacing in mm: one value (isotropic, default 2.0) or three (x y z)")
    parser.add_argument("--max-voxels", type=int, default=DEFAULT_MAX_VOXELS,
                        help=f"reject volumes with more voxels than this (default {DEFAULT_MAX_VOXELS})")
    parser.add_argument("--mem-mb", type=float, default=None,
                        help="memory budget of this job (MiB, the rule's mem_mb): a CT whose peak memory, estimated "
                             "from its header, exceeds it is rejected before it is read (default: no check)")
    parser.add_argument("--series-uid", default=None,
                        help="SeriesInstanceUID to read from a single DICOM folder (several folders: a CSV listing's "
                             "series_uid column chooses per folder; default: the CT image series, of several the one "
                             "with the most files; a tie is rejected as ambiguous). Recorded as series_uid and "
                             "series_choice in the manifest")
    parser.add_argument("--no-verify-gzip", dest="verify_gzip", action="store_false",
                        help="skip the CRC check of .gz inputs (ITK reads truncated/corrupt .nii.gz without error; "
                             "only for inputs verified otherwise)")
    parser.add_argument("--force", action="store_true", help="resample every case even if unchanged")
    parser.add_argument("--shard", type=int, default=0, help="this job's shard, 0..--shards-1 (default 0)")
    parser.add_argument("--shards", type=int, default=1,
                        help="number of shards: this job resamples only the cases whose id hashes to --shard "
                             "(smart.data.shards); merge the shard manifests with `smart resample-merge`")


def main(args: argparse.Namespace) -> int:
    from smart.data.resample_batch import resample_batch
    from smart.data.validation import ValidationRules

    if len(args.spacing) not in (1, 3) or not all(math.isfinite(v) and v > 0 for v in args.spacing):
        print(f"smart resample: --spacing takes 1 or 3 positive values (mm), got {args.spacing}", file=sys.stderr)
        return 2
    spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    try:
        rules = ValidationRules(max_voxels=args.max_voxels, verify_gzip=args.verify_gzip)
    except ValueError as err:
        print(f"smart resample: {err}", file=sys.stderr)
        return 2
    if args.mem_mb is not None and not args.mem_mb > 0:
        print(f"smart resample: --mem-mb must be > 0 MiB, got {args.mem_mb}", file=sys.stderr)
        return 2
    try:
        counts = resample_batch(args.input, args.out_dir, args.manifest, args.rejected, spacing=spacing, rules=rules,
                                series_uid=args.series_uid, force=args.force, shard=args.shard, shards=args.shards,
                                mem_mb=args.mem_mb)
    except ValueError as err:
        print(f"smart resample: {err}", file=sys.stderr)
        return 2
    part = f" (shard {args.shard} of {args.shards}: {counts['cases']} case(s))" if args.shards > 1 else ""
    print(f"smart resample: {counts['resampled']} resampled, {counts['unchanged']} unchanged (skipped), "
          f"{counts['rejected']} rejected -> {args.manifest}{part}", file=sys.stderr)
    # a shard may own no case, or only rejected ones; `smart resample-merge` fails if the union has no usable CT
    return 0 if counts["resampled"] + counts["unchanged"] > 0 or args.shards > 1 else 1
