"""smart.bench.loader: a tiny loader benchmark without workers."""

from __future__ import annotations

import pytest


def test_loader_bench_tiny_no_workers(one_thread):
    from smart.bench.loader import run_loader_bench

    out = run_loader_bench("tiny", num_workers=0, n_cases=2, batches=3, volume=(40, 40, 40))
    assert out["batch"] == 2 and out["crop"] == [32, 32, 32] and out["volume"] == [40, 40, 40]
    assert out["samples"] == 3 * 2  # batches after the 2 warm-up batches, batch 2 each
    assert out["seconds"] > 0 and out["cache_fill_s"] > 0
    assert out["samples_per_s"] == pytest.approx(out["samples"] / out["seconds"])
