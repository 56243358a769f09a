"""Masks on the 3D mask grid (smart.ssl.masking): exact counts, hint/rank positions, ties, blockiness, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from smart.ssl import masking

GRIDS = [(2, 3, 4), (4, 4, 4), (8, 8, 8)]
RATIOS = [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _expected_round(ratio: float, n: int) -> int:
    # Independent of the library helper: exact decimal arithmetic, half-to-even like Python's round().
    from decimal import ROUND_HALF_EVEN, Decimal

    return int((Decimal(str(ratio)) * n).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _expected_ceil(ratio: float, n: int) -> int:
    from fractions import Fraction

    return math.ceil(Fraction(str(ratio)) * n)


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("fn", [masking.random_mask, masking.blockwise_mask])
def test_random_strategies_mask_exact_count(fn, grid, ratio):
    mask = fn(3, grid, ratio, generator=_gen(1))
    assert mask.dtype == torch.bool and mask.shape == (3, *grid)
    n = math.prod(grid)
    assert mask.flatten(1).sum(1).tolist() == [_expected_round(ratio, n)] * 3


def test_counts_ignore_float_noise():
    # In binary floating point 0.07 * 100 == 7.000000000000001 and 0.35 * 90 == 31.499999999999996.
    assert masking.ceil_count(0.07, 100) == 7
    assert masking.ceil_count(0.28, 25) == 7
    assert masking.round_count(0.35, 90) == 32  # 31.5 -> half-to-even gives 32
    assert masking.round_count(0.25, 10) == 2  # 2.5 -> half-to-even gives 2
    for k in range(1, 100):
        for n in (25, 90, 100, 300, 512):
            assert masking.ceil_count(k / 100, n) == _expected_ceil(k / 100, n)
            assert masking.round_count(k / 100, n) == _expected_round(k / 100, n)


def test_random_mask_reproducible_and_varies_across_samples():
    a = masking.random_mask(4, (4, 4, 4), 0.5, generator=_gen(7))
    b = masking.random_mask(4, (4, 4, 4), 0.5, generator=_gen(7))
    c = masking.random_mask(4, (4, 4, 4), 0.5, generator=_gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])


def test_random_mask_is_uniform_over_positions():
    # Each of N=8 positions is masked with probability k/N = 0.5; 4000 draws -> std of the frequency ~ 0.008.
    mask = masking.random_mask(4000, (2, 2, 2), 0.5, generator=_gen(3))
    freq = mask.flatten(1).float().mean(0)
    assert torch.all((freq - 0.5).abs() < 0.04), freq


def test_blockwise_single_block_is_a_box():
    # Target 27 tokens and block volume fixed at 27 with aspect 1: one 3x3x3 cube, no trimming.
    grid = (8, 8, 8)
    mask = masking.blockwise_mask(
        5, grid, 27 / 512, generator=_gen(0), min_block_tokens=27, max_block_tokens=27, min_aspect=1.0
    )
    for sample in mask:
        idx = sample.nonzero()
        extent = (idx.max(0).values - idx.min(0).values + 1).tolist()
        assert extent == [3, 3, 3]
        assert int(sample.sum()) == 27


def _components(mask: torch.Tensor) -> float:
    return float(np.mean([ndimage.label(m.numpy())[1] for m in mask]))


def test_blockwise_is_blockier_than_random():
    grid, ratio = (8, 8, 8), 0.4
    block = masking.blockwise_mask(8, grid, ratio, generator=_gen(5))
    rand = masking.random_mask(8, grid, ratio, generator=_gen(5))
    # 6-connected components: random masks at 40% break into dozens of pieces, block masks into a handful.
    assert _components(block) * 3 < _components(rand), (_components(block), _components(rand))
    # Fraction of masked tokens whose +x neighbour is also masked: ~ratio for random, far higher for blocks.
    def neighbour_rate(m):
        pairs = m[..., :-1] & m[..., 1:]
        return pairs.sum().item() / m[..., :-1].sum().item()
    assert neighbour_rate(block) > neighbour_rate(rand) + 0.2


def test_blockwise_reproducible():
    a = masking.blockwise_mask(2, (4, 6, 8), 0.3, generator=_gen(11))
    b = masking.blockwise_mask(2, (4, 6, 8), 0.3, generator=_gen(11))
    assert torch.equal(a, b)


def _by_hand_high(att: np.ndarray, ratio: float, hint: float) -> np.ndarray:
    n = att.shape[0]
    n_hint, n_mask = _expected_ceil(hint, n), _expected_ceil(ratio, n)
    # Descending by value, ties by lower index first.
    order = sorted(range(n), key=lambda i: (-att[i], i))
    out = np.zeros(n, dtype=bool)
    out[order[n_hint : n_hint + n_mask]] = True
    return out


@pytest.mark.parametrize("ratio,hint", [(0.7, 0.1), (0.5, 0.2), (0.3, 0.0), (0.75, 0.25)])
def test_attention_high_hints_visible_and_next_ranks_masked(ratio, hint):
    grid = (4, 4, 4)
    n = 64
    att = torch.rand(3, n, generator=_gen(2)).softmax(-1)
    mask = masking.attention_mask(att, grid, ratio, hint_ratio=hint, mode="high")
    assert mask.shape == (3, *grid)
    flat = mask.flatten(1)
    n_hint, n_mask = _expected_ceil(hint, n), _expected_ceil(ratio, n)
    for b in range(3):
        assert int(flat[b].sum()) == n_mask
        top = att[b].topk(n_hint).indices
        assert not flat[b, top].any(), "a hint token was masked"
        # Every masked token ranks below every hint and above every other visible token.
        masked_vals = att[b][flat[b]]
        rest = att[b][~flat[b]]
        others = rest[rest < masked_vals.min()]
        assert others.numel() == n - n_hint - n_mask
        assert np.array_equal(flat[b].numpy(), _by_hand_high(att[b].numpy(), ratio, hint))


def test_attention_low_masks_lowest():
    n = 27
    att = torch.rand(2, n, generator=_gen(4))
    mask = masking.attention_mask(att, (3, 3, 3), 0.4, hint_ratio=0.5, mode="low").flatten(1)
    k = _expected_ceil(0.4, n)
    for b in range(2):
        expected = set(att[b].argsort()[:k].tolist())
        assert set(mask[b].nonzero().squeeze(1).tolist()) == expected


def test_attention_ties_are_deterministic_by_index():
    att = torch.ones(1, 8)
    high = masking.attention_mask(att, (2, 2, 2), 0.5, hint_ratio=0.25, mode="high").flatten(1)[0]
    assert high.tolist() == [False, False, True, True, True, True, False, False]
    low = masking.attention_mask(att, (2, 2, 2), 0.25, mode="low").flatten(1)[0]
    assert low.tolist() == [True, True] + [False] * 6
    # Partial ties: values [3, 1, 3, 1, 2, 2, 0, 0]; descending stable order = 0, 2, 4, 5, 1, 3, 6, 7.
    att = torch.tensor([[3.0, 1, 3, 1, 2, 2, 0, 0]])
    high = masking.attention_mask(att, (2, 2, 2), 0.375, hint_ratio=0.125, mode="high").flatten(1)[0]
    assert high.nonzero().squeeze(1).tolist() == [2, 4, 5]


def test_attention_accepts_grid_shaped_map_and_keeps_device_and_no_grad():
    att = torch.rand(2, 2, 2, 2, requires_grad=True)
    mask = masking.attention_mask(att, (2, 2, 2), 0.5, hint_ratio=0.0)
    assert mask.shape == (2, 2, 2, 2) and not mask.requires_grad and mask.device == att.device


def test_attention_errors():
    att = torch.rand(2, 10)
    with pytest.raises(ValueError, match="exceeds N"):
        masking.attention_mask(att, (1, 2, 5), 0.7, hint_ratio=0.4)
    with pytest.raises(ValueError, match="tokens per sample"):
        masking.attention_mask(att, (2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="mode"):
        masking.attention_mask(att, (1, 2, 5), 0.5, mode="middle")
    with pytest.raises(ValueError, match="NaN"):
        masking.attention_mask(torch.full((1, 8), float("nan")), (2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="hint_ratio"):
        masking.attention_mask(att, (1, 2, 5), 0.5, hint_ratio=-0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch=0, grid=(2, 2, 2), ratio=0.5), "batch"),
        (dict(batch=1, grid=(2, 2), ratio=0.5), "grid"),
        (dict(batch=1, grid=(2, 0, 2), ratio=0.5), "grid"),
        (dict(batch=1, grid=(2, 2, 2), ratio=1.5), "ratio"),
        (dict(batch=1, grid=(2, 2, 2), ratio=float("nan")), "ratio"),
    ],
)
def test_random_mask_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        masking.random_mask(**kwargs)


def test_blockwise_bad_arguments():
    with pytest.raises(ValueError, match="min_aspect"):
        masking.blockwise_mask(1, (4, 4, 4), 0.5, min_aspect=0.0)
    with pytest.raises(ValueError, match="max_block_tokens"):
        masking.blockwise_mask(1, (4, 4, 4), 0.5, min_block_tokens=8, max_block_tokens=4)


def test_registry_flags():
    # needs_attention: the strategy ranks the teacher's map; uses_hints: hint tokens stay visible (Sec. III-B)
    # attention_rank: which end of the attention ranking is masked (attention_mask's mode)
    flags = {name: (s.needs_attention, s.uses_hints, s.attention_rank) for name, s in masking.MASKING_STRATEGIES.items()}
    assert flags == {"random": (False, False, None), "blockwise": (False, False, None),
                     "attention_high": (True, True, "high"), "attention_low": (True, False, "low")}
    with pytest.raises(ValueError, match="attention_rank must be one of"):
        masking.MaskingStrategy(masking.MASKING_STRATEGIES["random"].draw, uses_hints=False, attention_rank="top")
    assert masking.masking_strategy("random") is masking.MASKING_STRATEGIES["random"]


def test_make_mask_dispatch():
    grid, n = (4, 4, 4), 64
    att = torch.rand(2, n, generator=_gen(9))
    assert torch.equal(
        masking.make_mask("attention_high", 2, grid, 0.7, 0.1, attention=att),
        masking.attention_mask(att, grid, 0.7, 0.1, "high"),
    )
    assert torch.equal(
        masking.make_mask("attention_low", 2, grid, 0.7, 0.1, attention=att),
        masking.attention_mask(att, grid, 0.7, 0.1, "low"),
    )
    assert torch.equal(
        masking.make_mask("random", 2, grid, 0.7, 0.1, generator=_gen(1)),
        masking.random_mask(2, grid, 0.7, generator=_gen(1)),
    )
    assert torch.equal(
        masking.make_mask("blockwise", 2, grid, 0.7, 0.1, generator=_gen(1)),
        masking.blockwise_mask(2, grid, 0.7, generator=_gen(1)),
    )
    with pytest.raises(ValueError, match="needs the teacher's attention"):
        masking.make_mask("attention_high", 2, grid, 0.7, 0.1)
    with pytest.raises(ValueError, match="^masking.strategy: .*'semantic'"):
        masking.make_mask("semantic", 2, grid, 0.7, 0.1)
    with pytest.raises(ValueError, match="batch"):
        masking.make_mask("attention_low", 3, grid, 0.7, 0.1, attention=att)


def test_attention_mask_unchecked_path_equals_per_sample_ranking():
    # The training step ranks the whole batch at once (no host sync); it must equal ranking each sample alone.
    att = torch.rand(5, 64, generator=torch.Generator().manual_seed(3))
    batched = masking.attention_mask(att, (4, 4, 4), 0.5, 0.1, "high", check_finite=False)
    alone = torch.cat([masking.attention_mask(att[i:i + 1], (4, 4, 4), 0.5, 0.1, "high") for i in range(5)])
    assert torch.equal(batched, alone)


@pytest.mark.parametrize("grid,ratio,hint", [((4, 4, 4), 0.7, 0.1), ((2, 2, 2), 0.7, 0.1), ((3, 4, 5), 0.5, 0.3),
                                             ((4, 4, 4), 0.75, 0.0)])
def test_attmask_hints_reveal_a_random_share_of_the_top_tokens(grid, ratio, hint):
    """AttMask: the ceil(rN) most attended tokens are candidates; ceil(s*r*N) of them, chosen by the reveal noise,
    stay visible. Counts written out by hand; the revealed ones are exactly the candidates with the largest noise."""
    n = int(np.prod(grid))
    g = torch.Generator().manual_seed(2)
    att = torch.rand(3, n, generator=g)
    noise = torch.rand(3, n, generator=g)
    mask = masking.attention_mask(att, grid, ratio, hint, "high", hints="attmask", reveal_noise=noise).flatten(1)
    n_top = math.ceil(round(ratio * n, 9))
    n_hint = math.ceil(round(hint * ratio * n, 9))
    assert mask.sum(1).tolist() == [n_top - n_hint] * 3
    for b in range(3):
        top = att[b].argsort(descending=True)[:n_top]
        rest = att[b].argsort(descending=True)[n_top:]
        assert not mask[b, rest].any()
        revealed = top[noise[b, top].argsort(descending=True)[:n_hint]]
        assert not mask[b, revealed].any()
        assert int(mask[b, top].sum()) == n_top - n_hint
    with pytest.raises(ValueError, match="hint_ratio < ratio"):
        masking.attention_mask(att, grid, 0.2, 0.2, "high", hints="attmask", reveal_noise=noise)
    with pytest.raises(ValueError, match="needs reveal_noise of shape"):
        masking.attention_mask(att, grid, ratio, hint, "high", hints="attmask")
    seeded = masking.make_mask("attention_high", 3, grid, ratio, hint, attention=att,
                               generator=torch.Generator().manual_seed(5), hints="attmask")
    assert seeded.flatten(1).sum(1).tolist() == [n_top - n_hint] * 3
