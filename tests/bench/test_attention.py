"""smart.bench.attention through ``smart bench attention``: a tiny run writes its JSON."""

from __future__ import annotations

import json

from bench_helpers import positive_times

from smart import cli


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
        positive_times(rec)
        assert rec["repeats"] == 2
