"""Checks shared by the benchmark smoke tests (tests/bench): no timing targets, only structure and positivity."""

import math


def positive_times(rec: dict) -> None:
    """A timing record: at least one repeat and 0 < min <= median <= max < inf (seconds)."""
    assert rec["repeats"] >= 1
    assert 0 < rec["min_s"] <= rec["median_s"] <= rec["max_s"] and math.isfinite(rec["max_s"])
