"""``smart bench loader``: can the two-view loader (:mod:`smart.data.views`) feed the GPUs, in bounded memory?

Writes ``n_cases`` CT-like NIfTI volumes (int16 HU, 2 mm; uncompressed, so writing 1,000 of them is quick) to a
temporary folder, fills the memory-mapped store (:mod:`smart.data.volume_store`, and with the preset's
``data.view_offset`` the body index, :mod:`smart.data.body_index`; timed separately: a one-off per CT), then runs the real pretraining ``TwoViewDataset`` + ``StepSampler`` + ``DataLoader`` with ``num_workers`` workers
(one rank) and measures samples/s and the peak resident memory of the rank's processes (the main process and each
worker, sampled from ``/proc``). Peak RSS must not grow with ``n_cases``; samples/s is compared with the rate one rank
must sustain for the paper preset to finish in the pretraining job's time limit (:func:`paper_rank_rate`).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The paper preset's job limit (config/paper.yaml pretrain.resources.runtime, minutes): the whole schedule must fit.
PAPER_RUNTIME_MIN = 4320


def paper_rank_rate(runtime_min: float = PAPER_RUNTIME_MIN) -> float:
    """Samples/s one rank must load for the paper schedule (``train.steps`` x per-GPU batch) to fit ``runtime_min``."""
    from smart.config import PAPER_BATCH_PER_GPU, load_config

    steps = int(load_config("smart", "paper", None, [])["train"]["steps"])
    return steps * PAPER_BATCH_PER_GPU / (runtime_min * 60.0)


def _write_cases(folder: Path, n_cases: int, size: tuple[int, int, int], seed: int) -> list[str]:
    import nibabel as nib

    rng = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    paths = []
    for i in range(n_cases):
        hu = rng.integers(-1024, 1500, size=size, dtype=np.int16)  # nibabel order (x, y, z)
        path = folder / f"case{i:04d}.nii"
        nib.save(nib.Nifti1Image(hu, affine), path)
        paths.append(str(path))
    return paths


def _rss_and_ppid(pid: int) -> tuple[int, int]:
    """Resident bytes and parent pid of ``pid`` from ``/proc`` ((0, -1) once it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, -1
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), int(fields[1])  # rss (pages), ppid


class _TreeRSS:
    """Peak RSS (bytes) of this process and of each of its child processes, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.main_peak = 0
        self.child_peaks: dict[int, int] = {}
        self.total_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        total = main = _rss_and_ppid(me)[0]
        self.main_peak = max(self.main_peak, main)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            rss, ppid = _rss_and_ppid(int(entry))
            if ppid == me:  # DataLoader workers are direct children
                self.child_peaks[int(entry)] = max(self.child_peaks.get(int(entry), 0), rss)
                total += rss
        self.total_peak = max(self.total_peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> "_TreeRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_loader_bench(preset: str = "tiny", num_workers: int = 2, n_cases: int = 8, batches: int = 20,
                     volume: tuple[int, int, int] | None = None, seed: int = 0,
                     workdir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Loader samples/s and peak RSS of one rank's processes; ``volume`` in ITK order (x, y, z)."""
    from torch.utils.data import DataLoader

    from smart.config import load_config
    from smart.data.views import StepSampler, TwoViewDataset, collate_views
    from smart.data.body_index import ensure_body_index
    from smart.data.volume_store import ensure_stored

    if n_cases < 1 or batches < 1 or num_workers < 0:
        raise ValueError(f"n_cases and batches must be >= 1 and num_workers >= 0, got {n_cases}, {batches}, "
                         f"{num_workers}")
    cfg = load_config("smart", preset, None, [])
    crop = [int(c) for c in cfg["data"]["crop_size"]]
    batch = int(cfg["data"]["batch_size"])
    # A resampled chest CT at 2 mm is ~ 179x179x188; default to 1.5x the crop so random crops have room to move.
    volume = tuple(volume or (int(crop[0] * 1.5),) * 3)
    with tempfile.TemporaryDirectory(prefix="smart-bench-loader-", dir=workdir) as tmp:
        t0 = time.perf_counter()
        paths = _write_cases(Path(tmp), n_cases, volume, seed)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        view_offset = cfg["data"]["view_offset"]  # the preset's views: overlapping ones need each CT's body index
        for p in paths:
            ensure_stored(p)
            if view_offset is not None:
                ensure_body_index(p, crop)
        store_s = time.perf_counter() - t0
        dataset = TwoViewDataset(paths, crop, seed=seed, cache=True, view_offset=view_offset)
        sampler = StepSampler(batch, 1, 0, 0, batches + 2)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate_views,
                            num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                            prefetch_factor=4 if num_workers > 0 else None)
        with _TreeRSS() as rss:
            it = iter(loader)
            for _ in range(2):  # worker start-up is a one-off cost, not throughput
                next(it)
            t0 = time.perf_counter()
            n = 0
            for item in it:
                n += item["u"].shape[0]
            elapsed = time.perf_counter() - t0
            del it
    need = paper_rank_rate()
    return {"preset": preset, "num_workers": num_workers, "n_cases": n_cases, "volume": list(volume), "crop": crop,
            "batch": batch, "view_offset": view_offset, "write_s": write_s, "cache_fill_s": store_s, "samples": n, "seconds": elapsed,
            "samples_per_s": n / elapsed,
            "peak_rss_mb": {"main": rss.main_peak / 2**20,
                            "worker_max": max(rss.child_peaks.values(), default=0) / 2**20,
                            "rank_total": rss.total_peak / 2**20},
            "paper_rank_samples_per_s_needed": need, "vs_paper_rank_rate": (n / elapsed) / need}
