"""`smart bench memory`: a real re-measurement of one step writes the coefficients file the plan reads — three fit
points, a held-out point the fit never saw (within 15 %), FLOPs per voxel — and keeps the other steps' entries."""

from __future__ import annotations

import json

from smart.cli import main
from smart.resources.memory import predict_from


def test_bench_memory_remeasures_one_step_and_keeps_the_rest(tmp_path, capsys):
    out = tmp_path / "coefficients.json"
    out.write_text(json.dumps({"steps": {"pretrain": {"bf16": {"kept": True}}}}))
    # documented: python -m smart bench memory (all steps, into smart/resources/memory_coefficients.json)
    assert main(["bench", "memory", "--rules", "features", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"] == "python -m smart bench memory"
    assert data["steps"]["pretrain"] == {"bf16": {"kept": True}}
    coef = data["steps"]["features"]["fp32"]
    assert [(p["crop"], p["batch"]) for p in coef["fit"]] == [(64, 1), (64, 2), (96, 1)]
    held = coef["held_out"]
    assert (held["crop"], held["batch"], held["voxels_x_batch"]) == (128, 1, 128**3)
    assert held["predicted_bytes"] == predict_from(coef, 128**3)
    assert held["relative_error"] == (held["predicted_bytes"] - held["peak_bytes"]) / held["peak_bytes"]
    assert abs(held["relative_error"]) <= 0.15
    # inference: nothing saved for backward, no optimiser phase; the encoder's parameters are the baseline
    assert coef["saved_bytes_per_voxel"] == 0 and coef["optimizer_bytes"] == 0
    assert all(p["baseline_bytes"] >= 4 * p["parameters"] for p in coef["fit"])
    assert coef["flops_per_voxel"] > 0
    assert "held out 128^3 x 1" in capsys.readouterr().err
