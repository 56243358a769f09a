"""Teacher output centring (SMART Sec. IV-C "centering and sharpening", after DINO/SMIT [3], [12]).

The centre ``c`` is a running mean of the teacher's logits, subtracted before the teacher softmax
(:func:`smart.ssl.losses.distill.teacher_probs`) so no single prototype dominates (collapse avoidance):
``c ← m·c + (1-m)·mean(teacher_logits)``. Under DDP the mean is the *global* batch mean (SMIT skipped the
all-reduce, so each rank drifted to its own centre).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["Center"]


class Center(nn.Module):
    """Running centre of teacher logits, buffer ``center`` of shape ``(1, dim)`` (float32, starts at 0).

    Args:
        dim: logit dimension K (the DINO head's ``out_dim``).
        momentum: EMA momentum ``m`` of the centre, in ``[0, 1]`` (0.9 in DINO/iBOT/SMIT).
    """

    center: Tensor

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.dim = int(dim)
        self.momentum = float(momentum)
        self.register_buffer("center", torch.zeros(1, self.dim))

    @torch.no_grad()
    def update(self, teacher_logits: Tensor, apply: Tensor | None = None) -> None:
        """Fold the batch mean of ``teacher_logits`` (``(..., dim)``, mean over all leading dims) into the centre.

        With ``torch.distributed`` initialised, the logit sum and the row count are all-reduced (SUM) together, so the
        batch mean is the exact global mean over all ranks' rows (equal to ``all_reduce(SUM)/world_size`` of the
        per-rank means when ranks have equal batches, and still correct when they do not).

        ``apply`` (0-d bool tensor) keeps the centre unchanged where it is false, decided on the device: the training
        loop skips a non-finite step without reading the flag on the host.
        """
        if teacher_logits.dim() < 1 or teacher_logits.shape[-1] != self.dim:
            raise ValueError(f"teacher_logits must end in dim={self.dim}, got shape {tuple(teacher_logits.shape)}")
        rows = teacher_logits.detach().reshape(-1, self.dim).float()
        if rows.shape[0] == 0:
            shape = tuple(teacher_logits.shape)
            raise ValueError(f"teacher_logits has no rows (shape {shape}); cannot update the centre")
        # One all-reduce carries both the sum and the count: [sum_1 .. sum_K, n_rows].
        stats = torch.cat([rows.sum(dim=0), rows.new_tensor([rows.shape[0]])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats, op=dist.ReduceOp.SUM)
        batch_center = (stats[:-1] / stats[-1]).to(self.center.dtype).unsqueeze(0)
        if apply is None:
            self.center.mul_(self.momentum).add_(batch_center, alpha=1.0 - self.momentum)
        else:
            new = self.center.mul(self.momentum).add_(batch_center, alpha=1.0 - self.momentum)
            self.center.copy_(torch.where(apply, new, self.center))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, momentum={self.momentum}"
