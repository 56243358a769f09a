"""``--crop-size`` / ``--spacing`` / ``--min-in-image``, shared by the steps that cut lesion crops (``lidc-nodules``,
``cohort-crops``)."""

from __future__ import annotations

import argparse

from smart.data.crop_window import MIN_IN_IMAGE_FRACTION
from smart.data.lidc import DEFAULT_CROP_SIZE, DEFAULT_CROP_SPACING


def add_crop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE,
                        help=f"crop edge in voxels at --spacing mm (default {DEFAULT_CROP_SIZE})")
    parser.add_argument("--spacing", type=float, default=DEFAULT_CROP_SPACING,
                        help=f"isotropic crop spacing in mm (default {DEFAULT_CROP_SPACING})")
    parser.add_argument("--min-in-image", type=float, default=MIN_IN_IMAGE_FRACTION,
                        help=f"exclude a crop of which less than this fraction lies inside its CT, or whose centre "
                             f"lies outside it (default {MIN_IN_IMAGE_FRACTION}; docs/data_preparation.md)")


def check_crop_arguments(args: argparse.Namespace) -> None:
    """Exit with the bad value named before any image is read."""
    if args.crop_size < 1:
        raise SystemExit(f"--crop-size must be a positive number of voxels, got {args.crop_size}")
    if not args.spacing > 0:
        raise SystemExit(f"--spacing must be > 0 mm, got {args.spacing}")
    if not 0.0 <= args.min_in_image <= 1.0:
        raise SystemExit(f"--min-in-image must be a fraction in [0, 1], got {args.min_in_image}")
