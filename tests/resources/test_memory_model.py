"""The memory model: the live-tensor counter and saved-tensor hooks against hand-computed byte counts, the two-phase
fit against an exact line, predictions and the largest batch that fits, and the shipped coefficients' held-out error."""

from __future__ import annotations

import pytest
import torch

from smart.bench.memory import LiveBytes, SavedBytes, existing_bytes, fit_line, fit_points
from smart.resources.memory import (COEFFICIENTS_FILE, GROUP_STEPS, largest_batch_that_fits, load_coefficients,
                                    predict_from, predicted_peak_bytes)


def test_live_bytes_counts_peak_of_live_storages_and_frees():
    x = torch.zeros(1000)  # 4,000 bytes, exists before
    with LiveBytes(existing_bytes([x])) as live:
        a = x + 1          # +4,000
        b = torch.ones(500, dtype=torch.float64)  # +4,000
        del a, b           # both freed
        c = x * 2          # +4,000 (peak so far stays 8,000)
        del c
    assert live.baseline == 4000
    assert live.peak == 8000 and live.peak_bytes == 12000
    assert live.current == 0


def test_live_bytes_splits_the_optimizer_phase():
    w = torch.nn.Parameter(torch.ones(256))  # 1,024 bytes
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    with LiveBytes(existing_bytes([w])) as live:
        y = (w * 3).sum()  # 1,024-byte product + 4-byte scalar
        y.backward()       # gradient 1,024 (+ temporaries)
        fb = live.current
        opt.step()         # momentum buffer 1,024
    assert live.forward_backward_peak is not None and live.forward_backward_peak >= 1024 + 1024 + 4
    assert live.optimizer_peak >= 1024 + fb + 1024


def test_saved_bytes_counts_each_storage_once_and_skips_parameters():
    w = torch.nn.Parameter(torch.ones(100))
    x = torch.ones(100, requires_grad=True)
    saved = SavedBytes(exclude=[w])
    with saved.hooks():
        h = x * w          # saves x (400 bytes) and w (excluded)
        z = (h * h).sum()  # saves h twice: counted once (400 bytes)
    z.backward()
    assert saved.bytes == 800


def test_fit_points_recovers_an_exact_line_and_the_optimizer_constant():
    points = [{"voxels_x_batch": v, "forward_backward_peak_bytes": 1000 + 3 * v, "optimizer_peak_bytes": 5000,
               "peak_bytes": max(1000 + 3 * v, 5000), "saved_bytes": 2 * v} for v in (100, 200, 500)]
    model = fit_points(points)
    assert model["fixed_bytes"] == pytest.approx(1000) and model["bytes_per_voxel"] == pytest.approx(3)
    assert model["optimizer_bytes"] == 5000 and model["saved_bytes_per_voxel"] == pytest.approx(2)
    assert predict_from(model, 100) == 5000  # optimiser phase dominates small jobs
    assert predict_from(model, 10_000) == pytest.approx(31_000)
    with pytest.raises(ValueError, match="two different"):
        fit_line([1.0, 1.0], [2.0, 3.0])


def test_prediction_and_largest_batch_from_a_coefficients_table():
    data = {"steps": {"finetune": {"fp32": {"fixed_bytes": 2**30, "bytes_per_voxel": 1000.0, "optimizer_bytes": 0}}}}
    crop = [128, 128, 128]
    assert predicted_peak_bytes("finetune", "fp32", crop, 4, data) == 2**30 + 1000.0 * 128**3 * 4
    limit = 2**30 + 1000.0 * 128**3 * 10.5
    assert largest_batch_that_fits("finetune", "fp32", crop, limit, data) == 10
    with pytest.raises(ValueError, match=r"step 'finetune' has no 'bf16' measurement"):
        predicted_peak_bytes("finetune", "bf16", crop, 1, data)
    with pytest.raises(ValueError, match=r"step 'pretrain' was not measured"):
        predicted_peak_bytes("pretrain", "bf16", crop, 1, data)


def test_missing_coefficients_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"cannot be read .*re-measure with `python -m smart bench memory`"):
        load_coefficients(tmp_path / "none.json")


def test_shipped_coefficients_cover_every_gpu_group_within_15_percent_held_out():
    data = load_coefficients(COEFFICIENTS_FILE)
    assert data["command"] == "python -m smart bench memory"
    for step in set(GROUP_STEPS.values()):
        for variant, coef in data["steps"][step].items():
            held = coef["held_out"]
            fitted = {(p["crop"], p["batch"]) for p in coef["fit"]}
            assert (held["crop"], held["batch"]) not in fitted
            # the stored prediction is the model's own, and within 15 % of the measured peak
            assert held["predicted_bytes"] == pytest.approx(predict_from(coef, held["voxels_x_batch"]))
            assert abs(held["predicted_bytes"] - held["peak_bytes"]) <= 0.15 * held["peak_bytes"], (step, variant)
