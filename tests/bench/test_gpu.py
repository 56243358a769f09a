"""`smart bench gpu --device cpu --preset tiny`: the GPU acceptance run's CI smoke test — a real run on tiny sizes that
writes gpu.json and gpu.md; their content is checked against each other and against what the run must contain."""

from __future__ import annotations

import json
import re

from smart.cli import main


def test_gpu_bench_smoke_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "gpu"
    # documented: python -m smart bench gpu --out DIR (on a GPU node); CI: --device cpu --preset tiny
    assert main(["bench", "gpu", "--device", "cpu", "--preset", "tiny", "--repeats", "1", "--warmup", "0",
                 "--loss-steps", "3", "--out", str(out)]) == 0
    result = json.loads((out / "gpu.json").read_text())
    md = (out / "gpu.md").read_text()
    assert result["device"] == "cpu" and result["card"] is None and result["preset"] == "tiny"
    assert result["command"] == ("python -m smart bench gpu --preset tiny --device cpu --repeats 1 --warmup 0 "
                                 f"--loss-steps 3 --out {out}")
    steps = result["steps"]
    assert set(steps) == {"smart", "monai_ssl"}
    for rec in steps.values():
        assert rec["repeats"] == 1 and rec["batch"] == 2 and rec["crop"] == [32, 32, 32]
        assert rec["model_flops_per_step"] > 0 and rec["mfu"] is None  # no card on a CPU: no MFU
        assert rec["achieved_tflops"] == rec["model_flops_per_step"] / rec["median_s"] / 1e12
    assert steps["smart"]["ratio_vs_monai_ssl"] == steps["smart"]["median_s"] / steps["monai_ssl"]["median_s"]
    mem = {r["step"]: r for r in result["memory"]}
    assert set(mem) == {"pretrain", "finetune"}
    assert mem["pretrain"]["precision"] == "fp32" and mem["finetune"]["precision"] == "fp32+checkpointing"
    assert all(r["measured_gib"] > 0 and r["predicted_gib"] is None for r in mem.values())  # tiny != paper width
    la = result["loss_agreement"]
    assert la["steps"] == 3 and len(la["fp32"]) == len(la["bf16"]) == 3
    assert la["max_relative_difference"] == max(abs(a - b) / abs(a) for a, b in zip(la["fp32"], la["bf16"]))
    assert result["loader"]["num_workers"] == 0  # the tiny preset's data.num_workers
    assert result["loader"]["loader_vs_step"] == result["loader"]["samples_per_s"] / steps["smart"]["samples_per_s"]
    # the markdown section carries the same figures
    assert md.startswith("### GPU acceptance: ")
    assert f"`{result['command']}`" in md
    assert f"| {steps['smart']['median_s']:.3f} | {steps['monai_ssl']['median_s']:.3f} |" in md
    assert re.search(r"\| MFU \(card bf16 peak n/a TFLOP/s\) \| n/a \| n/a \|", md)
    assert f"| pretrain | 32^3 x 2 | fp32 | {mem['pretrain']['measured_gib']:.3f} (LiveBytes (CPU)) | n/a | n/a |" in md
    assert f"largest relative difference {la['max_relative_difference']:.4f}" in md
    assert "wrote" in capsys.readouterr().out


def test_gpu_bench_needs_out(capsys):
    assert main(["bench", "gpu", "--device", "cpu", "--preset", "tiny"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
