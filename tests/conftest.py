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

import locale  # noqa: E402

import pytest  # noqa: E402

# Fixtures shared across test folders (tests/ is on sys.path via pyproject's pytest `pythonpath`).
pytest_plugins = ["data_fixtures", "downstream_fixtures"]


@pytest.fixture(autouse=True)
def _locale_unchanged():
    """GDCM's DICOM writer (SimpleITK) switches the process to the "C" locale, which silently turns Python's default
    file encoding into ASCII for every later test. Fail the test that did it instead of a random later one."""
    before = locale.setlocale(locale.LC_ALL)
    yield
    after = locale.setlocale(locale.LC_ALL)
    if after != before:
        locale.setlocale(locale.LC_ALL, before)
        pytest.fail(f"the test changed the process locale ({before!r} -> {after!r}); restore it (see tests/conftest.py)")

