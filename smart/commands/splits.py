"""``smart splits``: patient-grouped held-out test set + stratified CV folds of a classification cohort -> splits.json.

Splits are written once and shared by every run (nnU-Net practice): an existing splits file with different content
is never replaced silently — pass ``--force`` to do it on purpose. Re-running with the same inputs is a no-op.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from smart.atomic import write_json
from smart.data.splits import make_splits


def parse_test_size(text: str) -> int | float:
    """``"1000"`` -> 1000 samples; ``"0.2"`` -> a fraction of the labelled samples."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--test-size must be a count or a fraction, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", required=True, type=Path, help="cohort CSV (sample_id, patient_id, label, ...)")
    parser.add_argument("--out", required=True, type=Path, help="splits.json to write")
    parser.add_argument("--test-size", type=parse_test_size, default=0.2,
                        help="held-out test samples: a count (LIDC paper: 1000) or a fraction (default 0.2)")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds on the rest (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--group-column", default="patient_id", help="no two parts share a value (default patient_id)")
    parser.add_argument("--label-column", default="label", help="stratify by this column (default label)")
    parser.add_argument("--force", action="store_true", help="replace an existing splits file with different content")


def main(args: argparse.Namespace) -> int:
    if not args.cohort.is_file():
        print(f"smart splits: cohort CSV not found: {args.cohort}", file=sys.stderr)
        return 2
    from smart.inputs import InputFileError, read_csv

    try:
        frame = read_csv(args.cohort, "cohort CSV", dtype={"sample_id": str, args.group_column: str})
    except InputFileError as err:
        print(f"smart splits: error: {err}", file=sys.stderr)
        return 2
    try:
        splits = make_splits(frame, args.test_size, n_folds=args.folds, seed=args.seed,
                             group_column=args.group_column, label_column=args.label_column)
    except ValueError as err:
        print(f"smart splits: {args.cohort}: {err}", file=sys.stderr)
        return 2
    if args.out.exists():
        try:
            existing = json.loads(args.out.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            existing = None
        if existing == json.loads(json.dumps(splits)):
            print(f"{args.out} already holds these splits; left unchanged")
            return 0
        if not args.force:
            print(f"smart splits: {args.out} exists with different splits; splits are shared between runs, so it is "
                  f"not replaced (use --force to replace it)", file=sys.stderr)
            return 3
    write_json(args.out, splits)
    c = splits["counts"]
    folds = ", ".join(f"{f['n']} ({f['by_label']})" for f in c["folds"])
    print(f"wrote {args.out}: test {c['test']['n']} ({c['test']['by_label']}, {c['test']['patients']} patients); "
          f"folds {folds}; unlabelled rows left out: {c['unlabelled']}")
    return 0
