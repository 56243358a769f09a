"""GITD — global image token distillation (SMART Sec. III-C, Eq. 4).

``L_GITD = -Σ_k P_t^[g](v̂)[k] · log P_s^[g](ũ)[k]``, averaged over the batch, where ``[g]`` is the average-pooled
stage-4 output. Unlike SMIT, both the teacher (noisy v̂) and the student (masked ũ) see corrupted views.
"""

from __future__ import annotations

from torch import Tensor

from smart.ssl.losses.distill import image_token_distillation

__all__ = ["gitd_loss"]


def gitd_loss(student_logits: Tensor, teacher_probs: Tensor, student_temp: float = 0.1) -> Tensor:
    """Eq. 4. ``student_logits`` ``(B, K)``: raw head outputs ``h_s^[g]`` (sharpened here by ``student_temp``);
    ``teacher_probs`` ``(B, K)``: from :func:`smart.ssl.losses.distill.teacher_probs`. Returns a scalar."""
    return image_token_distillation(student_logits, teacher_probs, student_temp, loss_name="GITD")
