"""Every ``smart bench`` entry point in its smallest mode: the JSON it returns is complete and sane.

No timing assertions (speed targets live in BENCHMARKS.md); only structure, positivity, exact counts and the
anchor's ratio of exactly 1.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from smart import cli


@pytest.fixture
def one_thread():
    # On an oversubscribed 2-core box two OpenMP threads spin-wait each other (10x slower): keep the smoke fast.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _positive_times(rec: dict) -> None:
    assert rec["repeats"] >= 1
    assert 0 < rec["min_s"] <= rec["median_s"] <= rec["max_s"] and math.isfinite(rec["max_s"])


def test_pretrain_bench_tiny(one_thread):
    from smart.bench.pretrain import ANCHOR, run_pretrain_bench

    out = run_pretrain_bench("tiny", methods=("smart",), repeats=1, warmup=0, device="cpu")
    assert out["preset"] == "tiny" and out["device"] == "cpu"
    assert set(out["results"]) == {ANCHOR, "smart"}
    assert out["results"][ANCHOR]["ratio_vs_" + ANCHOR] == 1.0
    for rec in out["results"].values():
        _positive_times(rec)
        assert rec["batch"] == 2 and rec["crop"] == [32, 32, 32]
        assert rec["samples_per_s"] == pytest.approx(rec["batch"] / rec["median_s"])
        assert rec["ratio_vs_" + ANCHOR] > 0 and rec["peak_extra_rss_mb"] >= 0
        assert "mfu" not in rec  # CPU: no MFU


def test_attention_bench_smoke_via_cli(one_thread, tmp_path):
    out_path = tmp_path / "attention.json"
    assert cli.main(["bench", "attention", "--smoke", "--repeats", "2", "--warmup", "0", "--threads", "1",
                     "--out", str(out_path)]) == 0
    out = json.loads(out_path.read_text())
    assert out["command"].startswith("python -m smart bench attention") and out["date"]
    assert out["threads"] == 1 and len(out["load_avg"]) == 3 and out["device"] == "cpu"
    assert "encoder" not in out
    (case,) = out["window_attention"].values()
    assert case["windows"] == 8 and case["window"] == 2
    res = case["results"]
    assert set(res) == {"monai_explicit", "fused_sdpa"}
    assert res["monai_explicit"]["ratio_vs_monai_explicit"] == 1.0
    for rec in res.values():
        _positive_times(rec)
        assert rec["repeats"] == 2


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


def test_loader_bench_tiny_no_workers(one_thread):
    from smart.bench.loader import run_loader_bench

    out = run_loader_bench("tiny", num_workers=0, n_cases=2, batches=3, volume=(40, 40, 40))
    assert out["batch"] == 2 and out["crop"] == [32, 32, 32] and out["volume"] == [40, 40, 40]
    assert out["samples"] == 3 * 2  # batches after the 2 warm-up batches, batch 2 each
    assert out["seconds"] > 0 and out["cache_fill_s"] > 0
    assert out["samples_per_s"] == pytest.approx(out["samples"] / out["seconds"])


def test_ddp_bench_rejects_world_sizes_without_baseline(capsys):
    assert cli.main(["bench", "ddp", "--worlds", "2"]) == 2
    assert "must include 1" in capsys.readouterr().err


def test_bench_rejects_bad_thread_count(capsys):
    assert cli.main(["bench", "attention", "--smoke", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_bench_one_and_two_gloo_ranks():
    from smart.bench.ddp import run_ddp_bench

    out = run_ddp_bench("smart", "tiny", worlds=(1, 2), steps=1, warmup=0, rounds=1, threads=1)
    assert out["device"] == "cpu" and out["threads_per_rank"] == 1
    one, two = out["results"]["1"], out["results"]["2"]
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["backend"] == two["backend"] == "gloo"
    assert one["speedup_vs_1"] == 1.0 and one["scaling_efficiency"] == 1.0
    for rec in (one, two):
        assert rec["batch_per_rank"] == 2 and rec["steps"] == 1 and rec["step_s"] > 0
        assert rec["samples_per_s"] == pytest.approx(rec["world_size"] * rec["batch_per_rank"] / rec["step_s"])
    assert two["scaling_efficiency"] == pytest.approx(two["samples_per_s"] / (2 * one["samples_per_s"]))
