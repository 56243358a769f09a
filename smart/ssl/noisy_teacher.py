"""Noisy teacher: random patch drop on the teacher's inputs (SMART Sec. III-D, Fig. 2b).

The paper corrupts the teacher's views as ``û = m_u ⊙ u``, ``v̂ = m_v ⊙ v`` where the mask vectors drop patch tokens
at random with ratio ``r_t`` (0.7 in the paper; 0 disables the noisy teacher, the "no NT" ablation). A Swin needs the
full token grid for its windows, so the encoder zeroes dropped patch embeddings instead of removing them
(``docs/ARCHITECTURE.md``, "Patch drop"); this module only draws which patches.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from smart.ssl.masking import check_batch, check_grid, check_ratio, exact_random_mask, round_count

__all__ = ["patch_drop_mask"]


def patch_drop_mask(
    batch: int,
    grid: Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Patch-drop mask for the teacher on the *patch* grid: Bool ``(batch, *grid)``, True = dropped.

    Exactly ``round(ratio·N)`` patches per sample (N = prod(grid)) are chosen uniformly without replacement, so the
    corruption strength is identical for every sample. ``ratio`` is ``r_t`` in ``[0, 1)``: 0 gives an all-False mask
    (no noisy teacher); 1 would blank the whole view and is rejected.
    """
    batch = check_batch(batch)
    dims = check_grid(grid)
    ratio = check_ratio("patch drop ratio", ratio, allow_one=False)
    n = math.prod(dims)
    return exact_random_mask(batch, n, round_count(ratio, n), generator).view(batch, *dims)
