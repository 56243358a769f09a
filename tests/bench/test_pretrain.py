"""smart.bench.pretrain: a tiny SMART-vs-MONAI-SSL step benchmark runs and reports positive times."""

from __future__ import annotations

import pytest
from bench_helpers import positive_times


def test_pretrain_bench_tiny(one_thread):
    from smart.bench.pretrain import ANCHOR, run_pretrain_bench

    out = run_pretrain_bench("tiny", methods=("smart",), repeats=1, warmup=0, device="cpu")
    assert out["preset"] == "tiny" and out["device"] == "cpu"
    assert set(out["results"]) == {ANCHOR, "smart"}
    assert out["results"][ANCHOR]["ratio_vs_" + ANCHOR] == 1.0
    for rec in out["results"].values():
        positive_times(rec)
        assert rec["batch"] == 2 and rec["crop"] == [32, 32, 32]
        assert rec["samples_per_s"] == pytest.approx(rec["batch"] / rec["median_s"])
        assert rec["ratio_vs_" + ANCHOR] > 0 and rec["peak_extra_rss_mb"] >= 0
        assert "mfu" not in rec  # CPU: no MFU
