"""AITD — attention guided image token distillation (SMART Sec. III-C, Eq. 2-3).

``L_AITD = -Σ_k P_t^[CLS](v̂)[k] · log P_s^[CLS](ũ)[k]``, averaged over the batch: the teacher's SA [CLS] distribution
for the noisy view v̂ supervises the student's [CLS] distribution for the masked *other* view ũ (and vice versa; the
engine symmetrises). Unique to SMART: the [CLS] comes from the semantic attention block.
"""

from __future__ import annotations

from torch import Tensor

from smart.ssl.losses.distill import image_token_distillation

__all__ = ["aitd_loss"]


def aitd_loss(student_logits: Tensor, teacher_probs: Tensor, student_temp: float = 0.1) -> Tensor:
    """Eq. 2. ``student_logits`` ``(B, K)``: raw head outputs ``h_s^[CLS]`` (sharpened here by ``student_temp``, Eq. 3);
    ``teacher_probs`` ``(B, K)``: from :func:`smart.ssl.losses.distill.teacher_probs`. Returns a scalar."""
    return image_token_distillation(student_logits, teacher_probs, student_temp, loss_name="AITD")
