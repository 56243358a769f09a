"""Cosine schedule with linear warm-up and the teacher-temperature warm-up (smart.ssl.schedules)."""

from __future__ import annotations

import math

import pytest

from smart.ssl.schedules import cosine_schedule, teacher_temperature


def test_values_at_landmarks_with_warmup():
    total, warm, base, final, start = 110, 10, 8e-4, 1e-6, 0.0
    assert cosine_schedule(0, total, base, final, warm, start) == pytest.approx(0.0)
    assert cosine_schedule(5, total, base, final, warm, start) == pytest.approx(4e-4)  # halfway up the ramp
    assert cosine_schedule(10, total, base, final, warm, start) == pytest.approx(base)  # warm-up end = peak
    assert cosine_schedule(60, total, base, final, warm, start) == pytest.approx((base + final) / 2)  # cosine midpoint
    quarter = final + (base - final) * 0.5 * (1 + math.cos(math.pi * 0.25))
    assert cosine_schedule(35, total, base, final, warm, start) == pytest.approx(quarter)
    assert cosine_schedule(110, total, base, final, warm, start) == pytest.approx(final)
    assert cosine_schedule(10_000, total, base, final, warm, start) == pytest.approx(final)  # clamps


def test_without_warmup_starts_at_base_and_is_monotone():
    values = [cosine_schedule(s, 100, 1.0, 0.0) for s in range(101)]
    assert values[0] == 1.0 and values[50] == pytest.approx(0.5) and values[100] == 0.0
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_increasing_schedule_and_nonzero_warmup_start():
    assert cosine_schedule(0, 10, 0.07, 0.07, warmup_steps=4, warmup_start=0.04) == pytest.approx(0.04)
    assert cosine_schedule(2, 10, 0.07, 0.07, warmup_steps=4, warmup_start=0.04) == pytest.approx(0.055)
    assert cosine_schedule(7, 10, 0.07, 0.07, warmup_steps=4, warmup_start=0.04) == pytest.approx(0.07)
    assert cosine_schedule(5, 10, 0.996, 1.0) == pytest.approx(0.998)


def test_warmup_equal_to_total():
    assert cosine_schedule(3, 4, 1.0, 0.0, warmup_steps=4) == pytest.approx(0.75)
    assert cosine_schedule(4, 4, 1.0, 0.0, warmup_steps=4) == 0.0


@pytest.mark.parametrize(
    "args,match",
    [
        ((-1, 10, 1.0, 0.0), "step"),
        ((1.5, 10, 1.0, 0.0), "step"),
        ((0, 0, 1.0, 0.0), "total_steps"),
        ((0, 10, 1.0, 0.0, 11), "warmup_steps"),
        ((0, 10, float("nan"), 0.0), "base"),
    ],
)
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        cosine_schedule(*args)


@pytest.mark.parametrize("step, expected", [(0, 0.04), (5, 0.04 + 0.03 * 5 / 10), (10, 0.07), (99, 0.07)])
def test_teacher_temperature_linear_warmup(step, expected):
    assert teacher_temperature(step, 0.04, 0.07, 10) == pytest.approx(expected, abs=1e-12)
    assert teacher_temperature(step, 0.04, 0.07, 0) == 0.07
