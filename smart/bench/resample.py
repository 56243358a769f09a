"""Resampling benchmark: raw SimpleITK ``Resample`` vs SMART's path vs MONAI ``Spacingd`` on one synthetic CT.

All methods run in one process on the same int16 volume, interleaved round-robin over ``repeats`` so drift in machine
load hits each alike; the result reports medians and minima, ratios to raw SimpleITK, and the peak resident-memory increase of
each call (sampled from ``/proc/self/statm`` by a background thread, so it sees transient buffers that a before/after
difference would miss). ``smart bench resample`` (``smart/commands/bench.py``) calls :func:`run_resample_bench`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from smart.bench.timing import PeakRSS
from smart.data.resample import AIR_HU, resample_file, resample_image, target_size
from smart.data.validation import ValidationRules

__all__ = ["run_resample_bench", "synthetic_ct"]



def synthetic_ct(size: Sequence[int], spacing: Sequence[float], seed: int = 0) -> sitk.Image:
    """int16 chest-like volume (ITK order ``size`` = x, y, z): air, a body ellipse at 40 HU, lungs at -800 HU, noise.

    Noise matters: a piecewise-constant phantom would compress and resample unrealistically fast.
    """
    nx, ny, nz = (int(s) for s in size)
    y, x = np.ogrid[-1:1:ny * 1j, -1:1:nx * 1j]
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 <= 1
    lungs = (((x + 0.4) / 0.3) ** 2 + (y / 0.45) ** 2 <= 1) | (((x - 0.4) / 0.3) ** 2 + (y / 0.45) ** 2 <= 1)
    plane = np.where(body, np.int16(40), np.int16(-1000))
    plane[lungs] = -800
    rng = np.random.default_rng(seed)
    vol = np.empty((nz, ny, nx), np.int16)
    for k in range(nz):  # slice by slice keeps the float noise buffer small
        vol[k] = plane + rng.normal(0.0, 15.0, (ny, nx)).astype(np.int16)
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img


def run_resample_bench(size: Sequence[int] = (512, 512, 300), spacing: Sequence[float] = (0.7, 0.7, 1.25),
                       repeats: int = 3, target_spacing: float = 2.0, include_monai: bool = True,
                       workdir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """Time CT resampling to ``target_spacing`` mm; return medians (s), ratios and peak RSS increases (MB).

    Methods:
        ``sitk_resample``: ``sitk.Resample`` to int16, in memory — the floor.
        ``smart_resample_image``: :func:`smart.data.resample.resample_image`, in memory (float interpolation +
            rounding, the only difference from the floor).
        ``sitk_pipeline``: ``ReadImage`` (.nii.gz) -> ``Resample`` -> ``WriteImage`` (.nii.gz), no checks.
        ``smart_pipeline``: :func:`smart.data.resample.resample_file` on the same file — read with header, gzip and
            intensity validation, resample, atomic write.
        ``smart_pipeline_no_gzip_check``: the same with ``ValidationRules(verify_gzip=False)``: what the parallel
            CRC pass costs on this machine (nothing when a core is idle, since SimpleITK releases the GIL).
        ``monai_spacingd``: ``monai.transforms.Spacingd(dtype=float32, mode="bilinear")`` on a MetaTensor, in memory.
    """
    if len(size) != 3 or any(int(s) < 2 for s in size):
        raise ValueError(f"size must be three integers >= 2 (x, y, z), got {size!r}")
    if len(spacing) != 3 or any(not (float(s) > 0) for s in spacing):
        raise ValueError(f"spacing must be three positive numbers (mm), got {spacing!r}")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    img = synthetic_ct(size, spacing, seed)
    new_spacing = (float(target_spacing),) * 3
    new_size = [int(n) for n in target_size(img.GetSize(), img.GetSpacing(), new_spacing)]

    with tempfile.TemporaryDirectory(prefix="smart-bench-resample-", dir=workdir) as tmp:
        src = Path(tmp) / "ct.nii.gz"
        sitk.WriteImage(img, os.fspath(src), useCompression=True)

        unverified = ValidationRules(verify_gzip=False)

        def raw_resample(image):
            return sitk.Resample(image, new_size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                                 new_spacing, image.GetDirection(), float(AIR_HU), sitk.sitkInt16)

        def raw_pipeline():
            sitk.WriteImage(raw_resample(sitk.ReadImage(os.fspath(src))), os.fspath(Path(tmp) / "raw.nii.gz"),
                            useCompression=True)

        methods: dict[str, Callable[[], object]] = {
            "sitk_resample": lambda: raw_resample(img),
            "smart_resample_image": lambda: resample_image(img, target_spacing),
            "sitk_pipeline": raw_pipeline,
            "smart_pipeline": lambda: resample_file(src, Path(tmp) / "smart.nii.gz", spacing=target_spacing),
            "smart_pipeline_no_gzip_check": lambda: resample_file(src, Path(tmp) / "smart_nv.nii.gz",
                                                                  spacing=target_spacing, rules=unverified),
        }
        if include_monai:
            methods["monai_spacingd"] = _monai_spacingd(img, target_spacing)

        times: dict[str, list[float]] = {name: [] for name in methods}
        rss: dict[str, int] = {name: 0 for name in methods}
        for _ in range(int(repeats)):
            for name, fn in methods.items():
                with PeakRSS() as mem:
                    start = time.perf_counter()
                    result = fn()
                    times[name].append(time.perf_counter() - start)
                del result
                rss[name] = max(rss[name], mem.peak - mem.start)
        check = sitk.GetArrayFromImage(sitk.ReadImage(os.fspath(Path(tmp) / "smart.nii.gz")))
        raw = sitk.GetArrayFromImage(sitk.ReadImage(os.fspath(Path(tmp) / "raw.nii.gz")))
        # the two paths differ only in rounding vs truncation of the interpolated value: at most 1 HU apart
        max_hu_difference = int(np.max(np.abs(check.astype(np.int32) - raw.astype(np.int32))))

    median = {name: statistics.median(ts) for name, ts in times.items()}
    best = {name: min(ts) for name, ts in times.items()}
    pairs = [("smart_resample_image", "sitk_resample"), ("smart_pipeline", "sitk_pipeline"),
             ("smart_pipeline_no_gzip_check", "sitk_pipeline")] + \
        ([("monai_spacingd", "sitk_resample")] if include_monai else [])
    ratios = {f"{a}/{b}": median[a] / median[b] for a, b in pairs}
    # on a shared machine the fastest repeat is the least disturbed one; both are reported
    ratios_best = {f"{a}/{b}": best[a] / best[b] for a, b in pairs}
    return {
        "input": {"size": [int(s) for s in size], "spacing": [float(s) for s in spacing], "dtype": "int16"},
        "output": {"size": new_size, "spacing": list(new_spacing)},
        "repeats": int(repeats),
        "median_s": median,
        "min_s": best,
        "times_s": times,
        "ratios": ratios,
        "ratios_min": ratios_best,
        "peak_rss_increase_mb": {name: b / 2**20 for name, b in rss.items()},
        "smart_vs_raw_max_hu_difference": max_hu_difference,
        "threads": {"sitk": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), "cpus": os.cpu_count()},
    }


def _monai_spacingd(img: sitk.Image, target_spacing: float) -> Callable[[], object]:
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Spacingd

    # MONAI wants channel-first (C, x, y, z) with the voxel-to-world affine
    volume = np.ascontiguousarray(sitk.GetArrayViewFromImage(img).transpose(2, 1, 0))[None]
    affine = torch.diag(torch.tensor([*img.GetSpacing(), 1.0], dtype=torch.float64))
    data = MetaTensor(torch.from_numpy(volume), affine=affine)
    spacingd = Spacingd(keys="image", pixdim=(float(target_spacing),) * 3, mode="bilinear", dtype=torch.float32)
    return lambda: spacingd({"image": data})
