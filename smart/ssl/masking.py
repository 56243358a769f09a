"""Student masks on the 3D mask grid (SMART Sec. III-B, Fig. 2c; baselines of Sec. IV).

Every mask is a boolean tensor ``(B, D, H, W)`` with ``True`` = masked, on the mask grid of ``docs/ARCHITECTURE.md``
(flattened row-major, D slowest — the order of ``EncoderOutput.tokens``). Every strategy masks an *exact* number of
tokens per sample, so a batch's mask ratio never drifts with the random draw:

* ``random``         (SMIT): ``round(r·N)`` tokens uniformly without replacement.
* ``blockwise``      (iBOT, lifted to 3D): random boxes until ``round(r·N)`` tokens, then an exact random trim/top-up.
* ``attention_high`` (AttMask / SMART): rank tokens by the teacher's semantic attention (Eq. 1). ``hints="attmask"``
  (AttMask's reading, which Sec. III-B says SMART follows): mask the top ``ceil(r·N)`` and reveal a random
  ``ceil(s·r·N)`` of them as hints. ``hints="top"``: keep the top ``ceil(s·N)`` visible and mask the next
  ``ceil(r·N)`` ranks (the top tokens are then never prediction targets).
* ``attention_low``  (MST): mask the ``ceil(r·N)`` lowest-attention tokens.

Random draws use an optional ``torch.Generator`` so a seeded run is reproducible. The strategies are registered by
name in :data:`MASKING_STRATEGIES` (read by ``smart.config``'s ``masking.strategy`` type and by
``smart.ssl.self_distillation``), each with its ``needs_attention`` / ``uses_hints`` flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import torch
from torch import Tensor

from smart.registry import look_up

__all__ = [
    "MASKING_STRATEGIES",
    "MaskingStrategy",
    "attention_mask",
    "blockwise_mask",
    "ceil_count",
    "HINTS",
    "make_mask",
    "random_mask",
    "round_count",
]

ATTENTION_MODES = ("high", "low")
HINTS = ("attmask", "top")

# Products such as 0.07 * 100 are 7.000000000000001 in floating point; ceil() of that would mask one token too many.
# Rounding the product to this many decimals first makes counts follow the decimal ratio a user wrote.
_COUNT_DECIMALS = 9


def round_count(ratio: float, n: int) -> int:
    """``round(ratio·n)`` (Python's round-half-to-even) after removing floating-point noise from the product."""
    return int(round(round(ratio * n, _COUNT_DECIMALS)))


def ceil_count(ratio: float, n: int) -> int:
    """``ceil(ratio·n)`` after removing floating-point noise from the product (so ``ceil(0.07·100) == 7``)."""
    return int(math.ceil(round(ratio * n, _COUNT_DECIMALS)))


def check_grid(grid: Sequence[int]) -> tuple[int, int, int]:
    """Return ``grid`` as a tuple of three positive ints, or raise ``ValueError`` naming it."""
    try:
        dims = tuple(int(g) for g in grid)
    except TypeError as err:
        raise ValueError(f"grid must be a sequence of 3 positive ints, got {grid!r}") from err
    if len(dims) != 3 or any(d < 1 for d in dims) or any(int(g) != g for g in grid):
        raise ValueError(f"grid must be 3 positive ints (D, H, W), got {grid!r}")
    return dims  # type: ignore[return-value]


def check_batch(batch: int) -> int:
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    return int(batch)


def check_ratio(name: str, ratio: float, *, allow_one: bool = True) -> float:
    """Validate a ratio in ``[0, 1]`` (or ``[0, 1)`` when ``allow_one`` is False)."""
    ratio = float(ratio)
    upper_ok = ratio <= 1.0 if allow_one else ratio < 1.0
    if not (math.isfinite(ratio) and ratio >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {ratio!r}")
    return ratio


def _draw_device(generator: torch.Generator | None) -> torch.device:
    # torch.rand needs the generator's device; without a generator draw on CPU (masks are tiny).
    return generator.device if generator is not None else torch.device("cpu")


def exact_random_mask(
    batch: int, n: int, count: int, generator: torch.Generator | None = None
) -> Tensor:
    """Bool ``(batch, n)`` with exactly ``count`` True per row, chosen uniformly without replacement.

    The positions of the ``count`` largest of n i.i.d. uniform draws are a uniformly random ``count``-subset;
    ``topk`` finds them without a full sort (about 5x faster than ``argsort`` on a 64³ patch grid on CPU).
    """
    if not 0 <= count <= n:
        raise ValueError(f"count must be in [0, {n}], got {count}")
    noise = torch.rand(batch, n, generator=generator, device=_draw_device(generator))
    chosen = noise.topk(count, dim=1, sorted=False).indices
    mask = torch.zeros(batch, n, dtype=torch.bool, device=noise.device)
    return mask.scatter_(1, chosen, True)


def random_mask(
    batch: int,
    grid: Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random masking (SMIT, Sec. IV baselines): exactly ``round(ratio·N)`` tokens per sample, uniform without
    replacement. Returns Bool ``(batch, *grid)``, True = masked, on the generator's device (CPU without one)."""
    batch = check_batch(batch)
    dims = check_grid(grid)
    ratio = check_ratio("ratio", ratio)
    n = math.prod(dims)
    return exact_random_mask(batch, n, round_count(ratio, n), generator).view(batch, *dims)


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    u = torch.rand((), generator=generator, device=_draw_device(generator)).item()
    return low + (high - low) * u


def _randint(generator: torch.Generator | None, low: int, high: int) -> int:
    """Integer uniformly in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator, device=_draw_device(generator)).item())


def _block_shape(
    volume: float, min_aspect: float, dims: tuple[int, int, int], generator: torch.Generator | None
) -> tuple[int, int, int]:
    """Side lengths of a box of about ``volume`` tokens whose H/D and W/D aspect ratios are log-uniform in
    ``[min_aspect, 1/min_aspect]`` (iBOT draws one log-uniform aspect in 2D; 3D needs two)."""
    log_lo, log_hi = math.log(min_aspect), math.log(1.0 / min_aspect)
    a_h = math.exp(_uniform(generator, log_lo, log_hi))
    a_w = math.exp(_uniform(generator, log_lo, log_hi))
    d = (volume / (a_h * a_w)) ** (1.0 / 3.0)
    sides = (d, d * a_h, d * a_w)
    return tuple(min(max(int(round(s)), 1), g) for s, g in zip(sides, dims))  # type: ignore[return-value]


def _blockwise_single(
    dims: tuple[int, int, int],
    count: int,
    min_block: int,
    max_block: int | None,
    min_aspect: float,
    max_attempts: int,
    generator: torch.Generator | None,
) -> Tensor:
    device = _draw_device(generator)
    mask = torch.zeros(dims, dtype=torch.bool, device=device)
    masked = 0
    attempts = 0
    while masked < count and attempts < max_attempts:
        attempts += 1
        remaining = count - masked
        upper = remaining if max_block is None else min(max_block, remaining)
        # A block may not be smaller than min_block, but near the end only ``remaining`` tokens are wanted; the exact
        # trim below removes the overshoot.
        volume = _uniform(generator, min_block, max(min_block, upper))
        bd, bh, bw = _block_shape(volume, min_aspect, dims, generator)
        z = _randint(generator, 0, dims[0] - bd)
        y = _randint(generator, 0, dims[1] - bh)
        x = _randint(generator, 0, dims[2] - bw)
        mask[z : z + bd, y : y + bh, x : x + bw] = True
        masked = int(mask.sum().item())
    flat = mask.view(-1)
    if masked != count:
        # Exact count: drop random surplus tokens, or top up with random unmasked ones when attempts ran out.
        pool = flat.nonzero().squeeze(1) if masked > count else (~flat).nonzero().squeeze(1)
        k = abs(masked - count)
        pick = pool[torch.randperm(pool.numel(), generator=generator, device=device)[:k]]
        flat[pick] = masked < count
    return mask


def blockwise_mask(
    batch: int,
    grid: Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
    *,
    min_block_tokens: int = 4,
    max_block_tokens: int | None = None,
    min_aspect: float = 0.3,
    max_attempts: int = 100,
) -> Tensor:
    """Blockwise masking (iBOT, Sec. IV baselines) on a 3D grid: exactly ``round(ratio·N)`` tokens per sample.

    Per sample, boxes are added at uniformly random positions until at least the target count is masked. Each box's
    volume is uniform in ``[min_block_tokens, min(max_block_tokens, tokens still wanted)]`` (so boxes shrink as the
    target nears) and its H/D, W/D aspect ratios are log-uniform in ``[min_aspect, 1/min_aspect]``; sides are
    clipped to the grid. Overlaps are allowed. The count is then made exact by un-masking random surplus tokens (or,
    after ``max_attempts`` boxes, masking random extra ones) — typically a few tokens, so the mask stays blocky.
    Defaults follow iBOT's 2D generator (min 4 tokens, aspect 0.3).

    Returns Bool ``(batch, *grid)``, True = masked, on the generator's device (CPU without one).
    """
    batch = check_batch(batch)
    dims = check_grid(grid)
    ratio = check_ratio("ratio", ratio)
    if int(min_block_tokens) != min_block_tokens or min_block_tokens < 1:
        raise ValueError(f"min_block_tokens must be a positive int, got {min_block_tokens!r}")
    if max_block_tokens is not None and (
        int(max_block_tokens) != max_block_tokens or max_block_tokens < min_block_tokens
    ):
        raise ValueError(f"max_block_tokens must be None or an int >= min_block_tokens, got {max_block_tokens!r}")
    if not 0.0 < min_aspect <= 1.0:
        raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect!r}")
    if int(max_attempts) != max_attempts or max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive int, got {max_attempts!r}")
    count = round_count(ratio, math.prod(dims))
    samples = [
        _blockwise_single(
            dims, count, int(min_block_tokens), max_block_tokens, float(min_aspect), int(max_attempts), generator
        )
        for _ in range(batch)
    ]
    return torch.stack(samples)


def attention_mask(
    attention: Tensor,
    grid: Sequence[int],
    ratio: float,
    hint_ratio: float = 0.1,
    mode: str = "high",
    check_finite: bool = True,
    hints: str = "top",
    reveal_noise: Tensor | None = None,
) -> Tensor:
    """Attention-guided masking from the teacher's semantic attention map SATT (Eq. 1, Sec. III-B, Fig. 2c).

    ``attention`` is ``(B, N)`` (or ``(B, *grid)``), N = prod(grid). Tokens are ranked by attention with a *stable*
    sort, so ties are broken deterministically by token index (lower index ranks first in both modes).

    * ``mode="high"`` (SMART, AttMask): descending ranks ``[0, ceil(sN))`` are hint tokens that stay visible; ranks
      ``[ceil(sN), ceil(sN)+ceil(rN))`` are masked — so exactly ``ceil(rN)`` tokens are masked, i.e. the ratio is r
      (ARCHITECTURE decision; the paper keeps ``s < r`` hints out of the top ``rN``). Needs
      ``ceil(sN)+ceil(rN) <= N``.
      That is ``hints="top"``. With ``hints="attmask"`` (AttMask) the top ``ceil(rN)`` ranks are the candidates and
      the ``ceil(s·r·N)`` of them with the largest ``reveal_noise`` (``(B, N)`` i.i.d. uniform, one row per sample,
      read at the candidates' token indices) stay visible as hints: exactly ``ceil(rN) - ceil(s·r·N)`` masked,
      every one of them among the top ``ceil(rN)``. Needs ``s < r``.
    * ``mode="low"`` (MST): the ``ceil(rN)`` lowest-attention tokens are masked; ``hint_ratio`` is not used.

    The map is only read (no gradient). Returns Bool ``(B, *grid)``, True = masked, on ``attention``'s device.
    ``check_finite=False`` skips the NaN/Inf check, whose ``bool()`` is a host-device sync on a GPU; the training step
    passes it after ``nan_to_num`` so masking stays on the device.
    """
    dims = check_grid(grid)
    ratio = check_ratio("ratio", ratio)
    hint_ratio = check_ratio("hint_ratio", hint_ratio)
    if mode not in ATTENTION_MODES:
        raise ValueError(f"mode must be one of {ATTENTION_MODES}, got {mode!r}")
    if hints not in HINTS:
        raise ValueError(f"hints must be one of {HINTS}, got {hints!r}")
    n = math.prod(dims)
    if not isinstance(attention, Tensor) or attention.dim() < 2:
        got = getattr(attention, "shape", attention)
        raise ValueError(f"attention must be a tensor (B, N) with N={n}, got {got!r}")
    batch = attention.shape[0]
    scores = attention.detach().reshape(batch, -1)
    if scores.shape[1] != n:
        raise ValueError(f"attention has {scores.shape[1]} tokens per sample but grid {dims} has N={n}")
    if check_finite and not torch.isfinite(scores).all():
        raise ValueError("attention contains NaN or Inf; cannot rank tokens")
    n_mask = ceil_count(ratio, n)
    if mode == "high" and hints == "attmask":
        if not hint_ratio < ratio:
            raise ValueError(f"hints='attmask' needs hint_ratio < ratio (s < r), got s={hint_ratio}, r={ratio}")
        if reveal_noise is None or tuple(reveal_noise.shape) != (batch, n):
            got = None if reveal_noise is None else tuple(reveal_noise.shape)
            raise ValueError(f"hints='attmask' needs reveal_noise of shape {(batch, n)}, got {got}")
        n_hint = ceil_count(hint_ratio * ratio, n)
        top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :n_mask]
        noise = reveal_noise.to(scores.device).gather(1, top)
        keep = noise.topk(n_mask - n_hint, dim=1, largest=False, sorted=False).indices
        chosen = top.gather(1, keep)
    elif mode == "high":
        n_hint = ceil_count(hint_ratio, n)
        if n_hint + n_mask > n:
            raise ValueError(
                f"ceil(hint_ratio*N) + ceil(ratio*N) = {n_hint} + {n_mask} exceeds N={n} "
                f"(hint_ratio={hint_ratio}, ratio={ratio})"
            )
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        chosen = order[:, n_hint : n_hint + n_mask]
    else:
        order = torch.sort(scores, dim=1, descending=False, stable=True).indices
        chosen = order[:, :n_mask]
    mask = torch.zeros(batch, n, dtype=torch.bool, device=scores.device)
    return mask.scatter_(1, chosen, True).view(batch, *dims)


@dataclass(frozen=True)
class MaskingStrategy:
    """One entry of :data:`MASKING_STRATEGIES`.

    ``draw(batch, grid, ratio, hint_ratio, attention, generator, check_finite, hints)`` returns Bool
    ``(batch, *grid)``; ``uses_hints``: ``hint_ratio`` tokens stay visible (``masking.hints``), so ``s < r`` and,
    with ``hints="top"``, ``ratio + hint_ratio`` must not exceed 1; ``attention_rank``: which end of the teacher's
    attention ranking is masked (:func:`attention_mask`'s ``mode``: ``"high"`` the most attended tokens, AttMask and
    SMART; ``"low"`` the least, MST), ``None`` for a strategy that reads no attention. The training step asks these
    properties, never the strategy's name.
    """

    draw: Callable[..., Tensor]
    uses_hints: bool
    attention_rank: str | None = None

    def __post_init__(self) -> None:
        if self.attention_rank is not None and self.attention_rank not in ATTENTION_MODES:
            raise ValueError(f"attention_rank must be one of {ATTENTION_MODES} or None, got {self.attention_rank!r}")

    @property
    def needs_attention(self) -> bool:
        """It ranks the teacher's attention map, so the encoder needs a [CLS]/SA block."""
        return self.attention_rank is not None


def _draw_random(batch, grid, ratio, hint_ratio, attention, generator, check_finite, hints) -> Tensor:
    return random_mask(batch, grid, ratio, generator)


def _draw_blockwise(batch, grid, ratio, hint_ratio, attention, generator, check_finite, hints) -> Tensor:
    return blockwise_mask(batch, grid, ratio, generator)


def _draw_attention(mode, batch, grid, ratio, hint_ratio, attention, generator, check_finite, hints) -> Tensor:
    noise = None
    if mode == "high" and hints == "attmask":
        noise = torch.rand(batch, math.prod(check_grid(grid)), generator=generator, device=_draw_device(generator))
    return attention_mask(attention, grid, ratio, hint_ratio, mode, check_finite, hints=hints, reveal_noise=noise)


def _attention_strategy(rank: str, uses_hints: bool) -> MaskingStrategy:
    return MaskingStrategy(partial(_draw_attention, rank), uses_hints=uses_hints, attention_rank=rank)


MASKING_STRATEGIES: dict[str, MaskingStrategy] = {
    "random": MaskingStrategy(_draw_random, uses_hints=False),          # SMIT
    "blockwise": MaskingStrategy(_draw_blockwise, uses_hints=False),    # iBOT
    "attention_high": _attention_strategy("high", uses_hints=True),     # SMART, AttMask
    "attention_low": _attention_strategy("low", uses_hints=False),      # MST
}


def masking_strategy(name: str) -> MaskingStrategy:
    """The registry entry of ``masking.strategy`` ``name``; ``ValueError`` (MONAI ``look_up_option``) if unknown."""
    return look_up("masking.strategy", name, MASKING_STRATEGIES)


def make_mask(
    strategy: str,
    batch: int,
    grid: Sequence[int],
    ratio: float,
    hint_ratio: float = 0.1,
    attention: Tensor | None = None,
    generator: torch.Generator | None = None,
    check_finite: bool = True,
    hints: str = "top",
) -> Tensor:
    """Draw a mask with the strategy registered as ``strategy`` in :data:`MASKING_STRATEGIES`. Attention strategies
    need ``attention`` ``(batch, N)`` (``check_finite`` as in :func:`attention_mask`); the others ignore it,
    ``hint_ratio`` and ``hints`` (:data:`HINTS`; ``hints="attmask"`` draws the hints' reveal noise from
    ``generator``). Returns Bool ``(batch, *grid)``."""
    spec = masking_strategy(strategy)
    if spec.needs_attention:
        if attention is None:
            raise ValueError(f"masking strategy {strategy!r} needs the teacher's attention map, got attention=None")
        if attention.shape[0] != batch:
            raise ValueError(f"attention batch size {attention.shape[0]} != batch {batch}")
    return spec.draw(batch, grid, ratio, hint_ratio, attention, generator, check_finite, hints)
