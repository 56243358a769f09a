"""Peak memory of ``smart resample`` on DICOM series of growing depth: the factor of
:mod:`smart.data.resample_memory` (docs/data_preparation.md "Resampling knows its memory").

Each series (``rows x cols`` pixels, ``depth`` slices, written with
:func:`smart.data.synthetic.ct_dicom.write_ct_series` into ``work_dir``) is resampled by a fresh ``python -m smart resample`` subprocess, which reports its own peak resident
set (``getrusage(RUSAGE_SELF).ru_maxrss``) when it exits; a line ``peak = base + bytes_per_voxel x voxels`` is fitted
through the points by least squares. The series are deleted after their run.

    python -m smart.bench.resample_memory --slices 300 1000 1500 --work-dir /tmp/smart-resample-memory
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["measure_peak_mb", "fit_line", "main"]

# Runs `python -m smart resample ARGS` in this process and prints the peak RSS in KiB (Linux ru_maxrss unit).
_CHILD = ("import resource, runpy, sys\n"
          "sys.argv = ['smart'] + sys.argv[1:]\n"
          "try:\n    runpy.run_module('smart', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
          "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")


def measure_peak_mb(depth: int, work_dir: Path, rows: int = 512, cols: int = 512) -> dict:
    """Write one ``depth``-slice series under ``work_dir``, resample it to 2 mm in a subprocess, delete it; return
    ``{"slices", "voxels", "peak_mb"}`` (MiB)."""
    from smart.bench.resample import synthetic_ct
    from smart.data.synthetic.ct_dicom import write_ct_series

    import SimpleITK as sitk

    case = work_dir / f"ct_{depth}"
    try:
        hu = sitk.GetArrayFromImage(synthetic_ct((cols, rows, depth), (0.7, 0.7, 1.0)))
        write_ct_series(case / "series", np.clip(hu, -1024, None), (0.7, 0.7, 1.0), (0.0, 0.0, 0.0),
                        f"MEM{depth}", "ct")
        del hu
        out = case / "out"
        cmd = [sys.executable, "-c", _CHILD, "resample", "--input", str(case / "series"), "--out-dir", str(out),
               "--manifest", str(out / "manifest.csv"), "--rejected", str(out / "rejected.csv")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        peak = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("PEAK_KIB")]
        if done.returncode != 0 or not peak or not any(out.glob("*.nii.gz")):
            raise RuntimeError(f"resample of {depth} slices failed: {done.stderr.strip()[-500:]}")
        return {"slices": depth, "voxels": rows * cols * depth, "peak_mb": round(int(peak[0]) / 1024.0, 1)}
    finally:
        shutil.rmtree(case, ignore_errors=True)


def fit_line(voxels: Sequence[int], peak_mb: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(base_mb, bytes_per_voxel)`` of ``peak_mb = base_mb + bytes_per_voxel * voxels / 2**20``."""
    slope, base = np.polyfit(np.asarray(voxels, float) / 2**20, np.asarray(peak_mb, float), 1)
    return float(base), float(slope)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smart.bench.resample_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[300, 1000, 1500])
    parser.add_argument("--size", type=int, default=512, help="rows = columns of every slice (default 512)")
    parser.add_argument("--work-dir", type=Path, required=True, help="scratch folder (series are deleted after use)")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    points = [measure_peak_mb(d, args.work_dir, args.size, args.size) for d in args.slices]
    for p in points:
        print(f"{p['slices']:5d} slices x {args.size}^2: peak RSS {p['peak_mb']:8.1f} MiB", flush=True)
    result = {"points": points, "load_average": os.getloadavg()[0]}
    if len(points) >= 2:
        base, per_voxel = fit_line([p["voxels"] for p in points], [p["peak_mb"] for p in points])
        result |= {"base_mb": round(base, 1), "bytes_per_voxel": round(per_voxel, 3)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
