"""Noisy-teacher patch drop (smart.ssl.noisy_teacher, Sec. III-D)."""

from __future__ import annotations

import pytest
import torch

from smart.ssl.noisy_teacher import patch_drop_mask


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
def test_patch_drop_exact_count(ratio):
    grid = (4, 5, 6)  # N = 120, so every ratio here gives an integral count 12·k
    mask = patch_drop_mask(3, grid, ratio, generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (3, *grid)
    expected = round(ratio * 10) * 12
    assert mask.flatten(1).sum(1).tolist() == [expected] * 3


def test_zero_ratio_drops_nothing():
    assert not patch_drop_mask(2, (8, 8, 8), 0.0).any()


def test_paper_ratio_on_paper_patch_grid():
    # 64^3 patch grid at r_t = 0.7: round(0.7 * 262144) = 183501 patches dropped per sample.
    mask = patch_drop_mask(1, (64, 64, 64), 0.7, generator=torch.Generator().manual_seed(1))
    assert int(mask.sum()) == 183501


def test_reproducible_with_generator_and_independent_per_sample():
    a = patch_drop_mask(2, (4, 4, 4), 0.5, generator=torch.Generator().manual_seed(3))
    b = patch_drop_mask(2, (4, 4, 4), 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.2])
def test_rejects_ratio_outside_half_open_interval(ratio):
    with pytest.raises(ValueError, match=r"patch drop ratio must be in \[0, 1\)"):
        patch_drop_mask(1, (2, 2, 2), ratio)
