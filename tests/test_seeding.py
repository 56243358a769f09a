"""seed_everything seeds Python's, NumPy's and torch's global generators (smart.seeding)."""

from __future__ import annotations

import random

import numpy as np
import torch

from smart.seeding import seed_everything


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_same_seed_same_draws_in_all_three_generators():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert all(a != b for a, b in zip(_draws(), first))


def test_seed_beyond_numpy_range_wraps_like_numpy():
    seed_everything(2**32 + 5)
    py, np_draw, _ = _draws()
    random.seed(2**32 + 5)
    np.random.seed(5)
    assert (random.random(), float(np.random.rand())) == (py, np_draw)
