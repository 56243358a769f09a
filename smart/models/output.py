"""``EncoderOutput``: the one return type of every SMART encoder (docs/ARCHITECTURE.md, "EncoderOutput")."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class EncoderOutput:
    """What an encoder hands to the losses, the heads and the evaluation code.

    Attributes:
        tokens: ``(B, N, C_tok)`` tokens on the mask grid (Swin: stage-``mask_stage`` output; ViT: patch tokens),
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
    """

    tokens: Tensor
    grid: tuple[int, int, int]
    pooled: Tensor
    cls: Tensor | None = None
    attention: Tensor | None = None
    stages: list[Tensor] | None = None
    sa_tokens: Tensor | None = None
