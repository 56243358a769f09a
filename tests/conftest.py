"""Test-wide settings: deterministic, CPU-only, quiet and bounded on a 2-core CI machine."""

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "smart-numba-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402

# One intra-op thread: tests also start subprocesses (Snakemake jobs, DDP ranks); oversubscribing 2 cores made torch
# steps 5-40x slower here (BENCHMARKS.md).
torch.set_num_threads(1)
