"""Teacher output centring (SMART Sec. IV-C "centering and sharpening", after DINO/SMIT [3], [12]).

Two ways, chosen by ``loss.centering`` (:data:`CENTERINGS`):

* ``ema`` (the paper's, DINO/iBOT/SMIT) — :class:`Center`: the centre ``c`` is a running mean of the teacher's logits,
  subtracted before the teacher softmax (:func:`smart.ssl.losses.distill.teacher_probs`) so no single prototype
  dominates (collapse avoidance): ``c ← m·c + (1-m)·mean(teacher_logits)``. Under DDP the mean is the *global* batch
  mean (SMIT skipped the all-reduce, so each rank drifted to its own centre).
* ``sinkhorn_knopp`` (DINOv2, Oquab et al. 2023, after SwAV, Caron et al. 2020) — :func:`sinkhorn_knopp`: the
  teacher targets of one batch are the Sinkhorn-Knopp normalisation of ``exp(logits / τ)``, which spreads the batch's
  mass equally over the prototypes within the step instead of through a lagging running mean (not in the paper; a
  CPU-scale remedy, BENCHMARKS.md §8d).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["CENTERINGS", "Center", "sinkhorn_knopp"]

CENTERINGS = ("ema", "sinkhorn_knopp")  # loss.centering


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


@torch.no_grad()
def sinkhorn_knopp(logits: Tensor, temp: float, n_iters: int = 3) -> Tensor:
    """Sinkhorn-Knopp teacher targets (DINOv2's replacement for the EMA centre; SwAV's equipartition): ``(B, K)``
    logits -> ``(B, K)`` float32 targets, each row summing to 1.

    ``Q = exp(logits / temp)`` (computed in the log domain) is normalised as a joint distribution over (image, prototype) and then, ``n_iters``
    times, alternately rescaled so that every prototype holds ``1/K`` of the mass and every image ``1/B`` of it; the
    result is multiplied by ``B`` so each image's row is its target distribution. After the last (image) step the
    rows sum to 1 exactly and each prototype's column sums to ~``B/K`` (exactly so as ``n_iters`` grows). A part of
    the logits that depends on the prototype only (what the EMA centre tracks) or on the image only cancels
    exactly, so what is left is the image-by-prototype interaction: targets that differ between the images of
    the batch. DINOv2 uses 3 iterations. Under ``torch.distributed`` the prototype sums and the image count ``B``
    are all-reduced (SUM), so ``B`` and the marginals are those of the global batch.

    ``ValueError`` for logits that are not ``(B >= 1, K >= 1)``, a temperature that is not finite and > 0, or
    ``n_iters < 1``.
    """
    if logits.dim() != 2 or 0 in logits.shape:
        raise ValueError(f"sinkhorn_knopp needs (B >= 1, K >= 1) logits, got shape {tuple(logits.shape)}")
    temp = float(temp)
    if not (math.isfinite(temp) and temp > 0.0):
        raise ValueError(f"sinkhorn_knopp temperature must be finite and > 0, got {temp!r}")
    if isinstance(n_iters, bool) or int(n_iters) != n_iters or n_iters < 1:
        raise ValueError(f"sinkhorn_knopp n_iters must be an int >= 1, got {n_iters!r}")
    distributed = dist.is_available() and dist.is_initialized()
    # In the log domain: exp(logits / τ) over- or underflows float32 for τ ~ 0.04 and logit gaps of a few units (a
    # whole image's row can underflow to 0, and 0/0), while a log-sum-exp per prototype / image cannot.
    log_q = logits.detach().float() / temp
    n_images = log_q.new_tensor(float(log_q.shape[0]))
    if distributed:
        dist.all_reduce(n_images, op=dist.ReduceOp.SUM)
    log_k, log_b = math.log(log_q.shape[1]), torch.log(n_images)
    # The first normalisation of the joint (÷ its total) is a global constant that the prototype step cancels.
    for _ in range(int(n_iters)):
        log_q = log_q - (_images_logsumexp(log_q, distributed) + log_k)  # every prototype: 1/K of the mass
        log_q = log_q - (torch.logsumexp(log_q, dim=1, keepdim=True) + log_b)  # every image: 1/B (rows are local)
    return torch.exp(log_q + log_b)


def _images_logsumexp(log_q: Tensor, distributed: bool) -> Tensor:
    """``log Σ_images exp(log_q)`` per prototype, ``(1, K)``, over every rank's images when ``distributed``."""
    peak = log_q.max(dim=0, keepdim=True).values
    if distributed:
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    total = torch.exp(log_q - peak).sum(dim=0, keepdim=True)
    if distributed:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return peak + torch.log(total)
