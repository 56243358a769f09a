"""Step-indexed schedules (SMART Sec. III-D EMA momentum, Sec. IV-C learning rate, DINO-style teacher temperature).

Every schedule is a pure function of the *global* optimisation step, so a resumed run continues exactly where it
stopped and a schedule anneals across epochs (SMIT indexed its EMA momentum by the in-epoch step, which restarts
every epoch and never reaches its end value). This module is the one home of the schedule functions:
``smart.ssl.stabilisers`` resolves the config's epoch-based settings into them, ``smart.ssl.ema`` and
``smart.train.optim`` only apply the values.
"""

from __future__ import annotations

import math

__all__ = ["cosine_schedule", "momentum_at", "teacher_temperature"]


def cosine_schedule(
    step: int,
    total_steps: int,
    base: float,
    final: float,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
) -> float:
    """Linear warm-up from ``warmup_start`` to ``base`` over ``warmup_steps``, then a half cosine from ``base`` to
    ``final`` reached at ``total_steps``; steps at or beyond ``total_steps`` return ``final``.

    For ``warmup_steps <= step < total_steps`` with ``t = (step - warmup_steps) / (total_steps - warmup_steps)``:
    ``final + (base - final) · (1 + cos(π t)) / 2``. Uses: learning rate (8e-4, 80-epoch warm-up, Sec. IV-C), EMA
    momentum 0.996 → 1 (Sec. III-D, no warm-up), and a teacher temperature warm-up (``base == final``).
    """
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be an int in [0, total_steps={total_steps}], got {warmup_steps!r}")
    for name, value in (("base", base), ("final", final), ("warmup_start", warmup_start)):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if step >= total_steps:
        return float(final)
    if step < warmup_steps:
        return float(warmup_start) + (float(base) - float(warmup_start)) * step / warmup_steps
    t = (step - warmup_steps) / (total_steps - warmup_steps)
    return float(final) + (float(base) - float(final)) * 0.5 * (1.0 + math.cos(math.pi * t))


def teacher_temperature(step: int, warmup_temp: float, final_temp: float, warmup_steps: int) -> float:
    """Linear teacher-temperature warm-up (DINO): ``warmup_temp`` at step 0 to ``final_temp`` at ``warmup_steps``."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return float(final_temp)
    return float(warmup_temp + (final_temp - warmup_temp) * step / warmup_steps)


def momentum_at(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Teacher momentum λ_m at global ``step``: half cosine from ``start`` (step 0) to ``end`` (``total_steps`` and
    beyond), no warm-up."""
    for name, value in (("start", start), ("end", end)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"EMA momentum {name} must be in [0, 1], got {value!r}")
    return cosine_schedule(step, total_steps, start, end)
