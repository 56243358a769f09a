"""smart.bench.resample: a small synthetic CT through every resampling route."""

from __future__ import annotations

import math


def test_resample_bench_small():
    from smart.bench.resample import run_resample_bench

    out = run_resample_bench(size=(24, 24, 10), spacing=(0.8, 0.8, 2.5), repeats=1, include_monai=False)
    assert out["output"]["spacing"] == [2.0, 2.0, 2.0]
    assert out["output"]["size"] == [10, 10, 13]  # 24*.8/2 = 9.6 -> 10, 10*2.5/2 = 12.5 -> 13
    assert set(out["median_s"]) == {"sitk_resample", "smart_resample_image", "sitk_pipeline", "smart_pipeline",
                                    "smart_pipeline_no_gzip_check"}
    assert all(t > 0 for t in out["median_s"].values())
    assert set(out["ratios"]) == {"smart_resample_image/sitk_resample", "smart_pipeline/sitk_pipeline",
                                  "smart_pipeline_no_gzip_check/sitk_pipeline"}
    assert all(r > 0 and math.isfinite(r) for r in out["ratios"].values())
    assert 0 <= out["smart_vs_raw_max_hu_difference"] <= 1
