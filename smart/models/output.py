"""``EncoderOutput``: the one return type of every SMART encoder (docs/ARCHITECTURE.md, "EncoderOutput")."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class EncoderOutput:
    """What an encoder hands to the losses, the heads and the evaluation code.

    Attributes:
        tokens: ``(B, N, C_tok)`` tokens on the mask grid (Swin: stage-``mask_stage`` output, i.e. after that stage's
            patch merging; ViT: patch tokens),
            row-major over ``grid`` with D slowest, i.e. the same order as ``mask.flatten(1)``.
        grid: the mask grid ``(D, H, W)``; ``N = D * H * W``.
        pooled: ``(B, C_last)`` global average of the last stage (Swin stage 4 / ViT patch tokens); GITD (Eq. 4)
            and the "pooled" fine-tuning head use it.
        cls: ``(B, C_cls)`` [CLS] of the semantic-attention block (Swin) or of the ViT; ``None`` without SA.
        attention: ``(B, N)`` SA map of Eq. 1 (head-averaged CLS->patch softmax, renormalised over the N patch
            tokens so that it sums to 1 per sample); ``None`` without SA or when not requested.
        stages: Swin only: MONAI-style layer-normalised maps ``(B, C, D, H, W)`` of stage outputs 0..4 (the SA stage's
            map is its output *before* the SA block).
        sa_tokens: Swin with SA only: ``(B, N, C_cls)`` the SA block's (final-LayerNorm'd) patch tokens. With
            ``sa_placement="inline"`` they are the SA-refined stage output that AMIP reconstructs from, so the SA
            block is trained by every loss; ``None`` without SA.
        pre_merge_tokens: Swin only: ``(B, N_pre, C_pre)`` the mask stage's Swin-block output *before* MONAI's patch
            merging at the end of that stage (layer-normalised like ``stages``), row-major over ``pre_merge_grid``
            with D slowest: twice the mask grid per axis at half the width of ``tokens`` — 16³ x 192 at the paper's
            128³ input, against 8³ x 384 for ``tokens``. AMPD reads them under ``loss.ampd_tokens=pre_merge`` (Sec.
            III-C: "before performing patch merging of stage #3 output"); a mask-grid mask reaches this grid by
            :func:`smart.models.swin.upsample_mask` with factor 2. ``None`` for a backbone without patch merging (ViT).
        pre_merge_grid: the grid ``(D, H, W)`` of ``pre_merge_tokens``; ``None`` with them.
    """

    tokens: Tensor
    grid: tuple[int, int, int]
    pooled: Tensor
    cls: Tensor | None = None
    attention: Tensor | None = None
    stages: list[Tensor] | None = None
    sa_tokens: Tensor | None = None
    pre_merge_tokens: Tensor | None = None
    pre_merge_grid: tuple[int, int, int] | None = None
