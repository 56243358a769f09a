"""The measured memory model: predicted peak GPU memory of one job of a GPU rule group, from the coefficients file.

``peak_bytes = max(fixed_bytes + bytes_per_voxel * crop_voxels * batch, optimizer_bytes)`` per measured step
(``pretrain``, ``finetune``, ``features``, ``attention``, ``segmentation``) and settings variant (``fp32``, ``bf16``,
``bf16+checkpointing``, ...): the forward + backward phase grows with the voxels in flight, the optimiser step's
phase (parameters, gradients, AdamW state and its temporaries) does not.
The coefficients are fitted to peaks of live tensor bytes measured on CPU at the paper width, and checked against a
held-out size (``smart.bench.memory``; re-measure with ``python -m smart bench memory``). ``batch`` is what one
forward holds at once: the per-GPU batch (pretraining: view pairs per GPU) or the fine-tuning micro-batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

COEFFICIENTS_FILE = Path(__file__).with_name("memory_coefficients.json")
GIB = 2**30
# rule group (config `resources.<group>`) -> the measured step its jobs run
GROUP_STEPS = {"pretrain": "pretrain", "finetune": "finetune", "probe": "features", "embed": "features",
               "zeroshot": "attention", "attention_maps": "attention", "segmentation": "segmentation"}


def load_coefficients(path: str | os.PathLike = COEFFICIENTS_FILE) -> dict[str, Any]:
    """The coefficients file as a dict; ``ValueError`` naming the file when it is missing or not the expected JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"memory coefficients {path}: cannot be read ({err}); re-measure with "
                         f"`python -m smart bench memory`") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        raise ValueError(f"memory coefficients {path}: no 'steps' table; re-measure with `python -m smart bench memory`")
    return data


def coefficients_for(step: str, variant: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fitted line of ``step`` under ``variant``; ``ValueError`` naming both when it was not measured."""
    variants = data["steps"].get(step)
    if not variants:
        raise ValueError(f"memory coefficients: step {step!r} was not measured (have {sorted(data['steps'])}); "
                         f"run `python -m smart bench memory --rules {step}`")
    if variant not in variants:
        raise ValueError(f"memory coefficients: step {step!r} has no {variant!r} measurement (have "
                         f"{sorted(variants)}); run `python -m smart bench memory --rules {step}`")
    return variants[variant]


def predict_from(coef: dict[str, Any], voxels_x_batch: float) -> float:
    """Peak bytes of one fitted step (a ``steps.<step>.<variant>`` entry) at ``voxels_x_batch``."""
    return max(float(coef["fixed_bytes"]) + float(coef["bytes_per_voxel"]) * voxels_x_batch,
               float(coef.get("optimizer_bytes", 0.0)))


def _voxels(crop) -> int:
    voxels = 1
    for c in crop:
        voxels *= int(c)
    return voxels


def predicted_peak_bytes(step: str, variant: str, crop: list[int] | tuple[int, ...], batch: int,
                         data: dict[str, Any]) -> float:
    """Predicted peak tensor bytes of one step of ``step`` at ``crop`` (voxels per edge) x ``batch``."""
    return predict_from(coefficients_for(step, variant, data), _voxels(crop) * int(batch))


def largest_batch_that_fits(step: str, variant: str, crop, limit_bytes: float, data: dict[str, Any]) -> int:
    """The largest per-forward batch whose predicted peak is at most ``limit_bytes`` (0 when not even one fits)."""
    coef = coefficients_for(step, variant, data)
    if float(coef.get("optimizer_bytes", 0.0)) > limit_bytes:
        return 0
    room = limit_bytes - float(coef["fixed_bytes"])
    return max(0, int(room // (float(coef["bytes_per_voxel"]) * _voxels(crop))))
