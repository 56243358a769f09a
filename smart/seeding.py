"""Seeding of the global random generators (Python, NumPy, torch), shared by pretraining and downstream training.

The generators seeded here are exactly those ``smart.train.checkpoint.capture_rng_state`` saves for an exact resume.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (``seed mod 2**32``) and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
