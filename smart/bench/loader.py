"""``smart bench loader``: can the two-view loader (:mod:`smart.data.views`) feed the GPUs?

Writes ``n_cases`` CT-like NIfTI volumes (int16 HU, 2 mm) to a temporary folder, builds the real pretraining
``TwoViewDataset`` + ``StepSampler`` + ``DataLoader`` with ``num_workers`` workers, and measures samples/s after the
cache is filled. The issue's goal is loader samples/s >= 2x the training step's samples/s at the same preset.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch


def _write_cases(folder: Path, n_cases: int, size: tuple[int, int, int], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_cases):
        hu = rng.normal(-400, 300, size=size[::-1]).clip(-1024, 1500).astype(np.int16)  # sitk arrays are (z, y, x)
        img = sitk.GetImageFromArray(hu)
        img.SetSpacing((2.0, 2.0, 2.0))
        path = folder / f"case{i:03d}.nii.gz"
        sitk.WriteImage(img, str(path))
        paths.append(str(path))
    return paths


def run_loader_bench(preset: str = "tiny", num_workers: int = 2, n_cases: int = 8, batches: int = 20,
                     volume: tuple[int, int, int] | None = None, seed: int = 0) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from smart.config import load_config
    from smart.data.views import StepSampler, TwoViewDataset, collate_views

    cfg = load_config("smart", preset, None, [])
    crop = [int(c) for c in cfg["data"]["crop_size"]]
    batch = int(cfg["data"]["batch_size"])
    # A resampled chest CT at 2 mm is ~ 175x175x150; default to 1.5x the crop so random crops have room to move.
    volume = tuple(volume or (int(crop[0] * 1.5),) * 3)
    with tempfile.TemporaryDirectory(prefix="smart-bench-loader-") as tmp:
        paths = _write_cases(Path(tmp), n_cases, volume, seed)
        t0 = time.perf_counter()
        dataset = TwoViewDataset(paths, crop, seed=seed, cache=True, num_workers=max(num_workers, 1))
        cache_s = time.perf_counter() - t0
        sampler = StepSampler(batch, 1, 0, 0, batches + 2)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate_views,
                            num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                            prefetch_factor=4 if num_workers > 0 else None)
        it = iter(loader)
        for _ in range(2):  # worker start-up is a one-off cost, not throughput
            next(it)
        t0 = time.perf_counter()
        n = 0
        for item in it:
            n += item["u"].shape[0]
        elapsed = time.perf_counter() - t0
    return {"preset": preset, "num_workers": num_workers, "n_cases": n_cases, "volume": list(volume), "crop": crop,
            "batch": batch, "cache_fill_s": cache_s, "samples": n, "seconds": elapsed, "samples_per_s": n / elapsed}
