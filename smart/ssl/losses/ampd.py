"""AMPD — attention guided masked patch token distillation (SMART Sec. III-C, Eq. 5).

``L_AMPD = -Σ_i m_i · Σ_k P_t^Patch(û_i)[k] · log P_s^Patch(ũ_i)[k]``: for the *same* view, the teacher's patch token
distributions (noisy view û) supervise the student's (masked view ũ) at the masked tokens only (m_i = 1).

Which tokens: the paper computes ``P^Patch`` "using stage #3 output of the Swin before the semantic attention layer"
and "before performing patch merging of stage #3 output" (Sec. III-C). With ``loss.ampd_tokens=pre_merge`` (the
Swin default) the caller passes the stage-3 blocks' tokens before MONAI's patch merging (16³ tokens of 8³ voxels at
the paper's 128³ input, ``EncoderOutput.pre_merge_tokens``) and the student's mask-grid mask upsampled ×2 per axis;
``post_merge`` passes the merged mask-grid tokens (8³ of 16³ voxels). This function is the same for both: ``N`` is
whatever grid the tokens and the mask share (:class:`smart.ssl.self_distillation.SelfDistillation`).

Normalisation (the paper's Σ_i leaves it open): per sample the masked-token cross-entropies are averaged,
``Σ_i m_i·CE_i / max(Σ_i m_i, 1)``, then the batch mean is taken — iBOT's choice, which keeps the loss scale
independent of the grid size and mask ratio. A sample without masked tokens contributes 0 to that mean.
"""

from __future__ import annotations

from torch import Tensor

from smart.ssl.losses.distill import cross_entropy

__all__ = ["ampd_loss"]


def ampd_loss(student_logits: Tensor, teacher_probs: Tensor, mask: Tensor, student_temp: float = 0.1) -> Tensor:
    """Eq. 5. ``student_logits`` ``(B, N, K)`` raw patch-head outputs (sharpened here by ``student_temp``);
    ``teacher_probs`` ``(B, N, K)`` from :func:`smart.ssl.losses.distill.teacher_probs`; ``mask`` ``(B, N)`` or
    ``(B, *grid)`` bool, True = masked (flattened row-major like the tokens). Returns a scalar."""
    if student_logits.dim() != 3:
        raise ValueError(f"AMPD: student logits must be (B, N, K), got shape {tuple(student_logits.shape)}")
    batch, n_tokens = student_logits.shape[:2]
    if mask.shape[0] != batch or mask[0].numel() != n_tokens:
        raise ValueError(
            f"AMPD: mask shape {tuple(mask.shape)} does not match {batch} samples x {n_tokens} tokens of the logits"
        )
    weights = mask.reshape(batch, n_tokens).float()
    per_token = cross_entropy(student_logits, teacher_probs, student_temp)  # (B, N)
    per_sample = (per_token * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    return per_sample.mean()
