"""Side-by-side timing of one overlapping-view draw (``smart.data.views.near_views``, config ``data.view_offset``):
the implementation of a given commit (``--before``, read with ``git show``) against the working tree's, on the same
memory-mapped CT, round-robin in one process, per-sample wall time (median over ``--repeats`` seeds each). Checks
that both draw identical views for every seed. BENCHMARKS.md §4c.

    python scripts/bench_near_views.py --before 27aaef1 --volume 180 180 190 --crop 64 128 --repeats 15
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def module_at(commit: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True, capture_output=True,
                            text=True).stdout
    module = types.ModuleType(name)
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


def chest_phantom(shape_zyx: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """int16 HU: air around an elliptic body with two darker lungs (about a chest CT's body fraction)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape_zyx], indexing="ij")
    hu = np.full(shape_zyx, -1000.0, np.float32)
    hu[(y / 0.7) ** 2 + (x / 0.9) ** 2 < 1] = 40.0
    for side in (-0.4, 0.4):
        hu[((x - side) / 0.3) ** 2 + (y / 0.5) ** 2 + (z / 0.8) ** 2 < 1] = -850.0
    hu += rng.normal(0, 20, shape_zyx).astype(np.float32)
    return hu.astype(np.int16)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="commit whose smart/data/views.py is the baseline")
    p.add_argument("--volume", type=int, nargs=3, default=[180, 180, 190], help="CT size x y z (2 mm chest: ~180^2x190)")
    p.add_argument("--crop", type=int, nargs="+", default=[64, 128], help="cubic crop edges to time")
    p.add_argument("--offset", type=int, default=16, help="data.view_offset")
    p.add_argument("--repeats", type=int, default=15, help="timed draws per contender and crop (median)")
    args = p.parse_args()

    import nibabel as nib

    from smart.data import views as after
    from smart.data.body_index import ensure_body_index
    from smart.data.volume_store import open_stored

    before = module_at(args.before, "smart/data/views.py", "views_before")
    with tempfile.TemporaryDirectory(prefix="smart-near-views-") as tmp:
        path = Path(tmp) / "ct.nii"
        x, y, z = args.volume
        nib.save(nib.Nifti1Image(chest_phantom((z, y, x)).transpose(2, 1, 0), np.diag([2.0, 2.0, 2.0, 1.0])), path)
        open_stored(path)
        print(f"CT {x}x{y}x{z} (x y z) int16, memory-mapped store; view_offset {args.offset}; "
              f"median of {args.repeats} draws each, round-robin")
        for edge in args.crop:
            crop = (edge,) * 3
            t0 = time.perf_counter()
            ensure_body_index(path, crop)
            build = time.perf_counter() - t0
            times: dict[str, list[float]] = {"before": [], "after": []}
            for seed in range(args.repeats):
                results = {}
                for name in ("before", "after"):  # same seed, back to back: identical views expected
                    t0 = time.perf_counter()
                    if name == "before":
                        results[name] = before.near_views(open_stored(path), crop, args.offset, seed)
                    else:  # what TwoViewDataset does per sample: map the store and the index, draw
                        body = after.open_body_index(path, crop)
                        results[name] = after.near_views(open_stored(path), crop, args.offset, seed, body=body)
                    times[name].append(time.perf_counter() - t0)
                if not all(torch.equal(a, b) for a, b in zip(results["before"], results["after"])):
                    print(f"crop {edge}: seed {seed} draws different views", file=sys.stderr)
                    return 1
            med = {k: float(np.median(v)) for k, v in times.items()}
            print(f"crop {edge}^3: before {med['before'] * 1e3:.1f} ms/sample, after {med['after'] * 1e3:.1f} "
                  f"ms/sample, ratio {med['before'] / med['after']:.1f}x; index build once per CT {build * 1e3:.0f} ms, "
                  f"{ensure_body_index(path, crop).stat().st_size / 1e3:.0f} kB; views identical for all seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
