"""Sharpened / centred token distributions and their cross-entropy, shared by the distillation losses
(SMART Sec. III-C: AITD Eq. 2-3, GITD Eq. 4, AMPD Eq. 5; centring and sharpening per Sec. IV-C).

* teacher: ``P_t = softmax((h_t - c) / τ_t)`` — centred by the running centre ``c`` and sharpened by ``τ_t``;
  computed without gradient (the teacher is updated by EMA only, Sec. III-D).
* student: ``log P_s = log_softmax(h_s / τ_s)`` (Eq. 3).
* cross-entropy per token / image: ``-Σ_k P_t[k] · log P_s[k]``.

All three are computed in float32 (bf16 autocast would otherwise lose the small probabilities the loss relies on).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cross_entropy", "image_token_distillation", "student_log_probs", "teacher_probs"]


def _check_temp(name: str, temp: float) -> float:
    temp = float(temp)
    if not (math.isfinite(temp) and temp > 0.0):
        raise ValueError(f"{name} must be a finite temperature > 0, got {temp!r}")
    return temp


@torch.no_grad()
def teacher_probs(logits: Tensor, center: Tensor | float, temp: float) -> Tensor:
    """``softmax((logits - center) / temp)`` over the last dim, float32, detached. ``center`` broadcasts
    (``Center.center`` is ``(1, K)``; pass 0 for no centring)."""
    temp = _check_temp("teacher temperature", temp)
    if isinstance(center, Tensor) and center.dim() > 0 and center.shape[-1] != logits.shape[-1]:
        raise ValueError(f"center last dim {center.shape[-1]} != logits last dim {logits.shape[-1]}")
    return F.softmax((logits.detach().float() - center) / temp, dim=-1)


def student_log_probs(logits: Tensor, temp: float) -> Tensor:
    """``log_softmax(logits / temp)`` over the last dim (Eq. 3, in log space for stability), float32."""
    temp = _check_temp("student temperature", temp)
    return F.log_softmax(logits.float() / temp, dim=-1)


def cross_entropy(student_logits: Tensor, teacher_probs: Tensor, student_temp: float) -> Tensor:
    """Per-token cross-entropy ``-Σ_k P_t[k] log P_s[k]`` over the last dim -> shape ``student_logits.shape[:-1]``.

    ``teacher_probs`` is detached here as well, so a caller that forgot ``no_grad`` still cannot push gradient into
    the teacher."""
    if student_logits.shape != teacher_probs.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher probs {tuple(teacher_probs.shape)} "
            "differ in shape"
        )
    return -(teacher_probs.detach().float() * student_log_probs(student_logits, student_temp)).sum(dim=-1)


def image_token_distillation(
    student_logits: Tensor, teacher_probs: Tensor, student_temp: float, *, loss_name: str
) -> Tensor:
    """Cross-entropy between one teacher and one student distribution per image, mean over the batch — the shared
    form of AITD (Eq. 2, SA [CLS] token) and GITD (Eq. 4, stage-4 pooled token). Inputs ``(B, K)``."""
    if student_logits.dim() != 2:
        raise ValueError(f"{loss_name}: student logits must be (B, K), got shape {tuple(student_logits.shape)}")
    if student_logits.shape[0] == 0:
        raise ValueError(f"{loss_name}: empty batch")
    return cross_entropy(student_logits, teacher_probs, student_temp).mean()
