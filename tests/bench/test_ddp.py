"""smart.bench.ddp: argument checks and a one- and two-rank gloo run."""

from __future__ import annotations

import pytest

from smart import cli


def test_ddp_bench_rejects_world_sizes_without_baseline(capsys):
    assert cli.main(["bench", "ddp", "--worlds", "2"]) == 2
    assert "must include 1" in capsys.readouterr().err


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
