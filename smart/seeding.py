"""Seeding of the global random generators (Python, NumPy, torch), shared by pretraining and downstream training, and
the one derivation of per-purpose seeds (:func:`derive_seed`) every loop uses for crops, epochs and ranks.

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


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers via NumPy's SeedSequence (well mixed: nearby steps give unrelated streams).

    Callers pass ``(seed, purpose, index, ...)`` with a module-level purpose constant, so two uses of one run seed
    never share a stream."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])
