"""``--crop-size`` / ``--spacing``, shared by the steps that cut lesion crops (``lidc-nodules``, ``cohort-crops``)."""

from __future__ import annotations

import argparse

from smart.data.lidc import DEFAULT_CROP_SIZE, DEFAULT_CROP_SPACING


def add_crop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE,
                        help=f"crop edge in voxels at --spacing mm (default {DEFAULT_CROP_SIZE})")
    parser.add_argument("--spacing", type=float, default=DEFAULT_CROP_SPACING,
                        help=f"isotropic crop spacing in mm (default {DEFAULT_CROP_SPACING})")


def check_crop_arguments(args: argparse.Namespace) -> None:
    """Exit with the bad value named before any image is read."""
    if args.crop_size < 1:
        raise SystemExit(f"--crop-size must be a positive number of voxels, got {args.crop_size}")
    if not args.spacing > 0:
        raise SystemExit(f"--spacing must be > 0 mm, got {args.spacing}")
