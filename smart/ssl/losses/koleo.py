"""KoLeo — the Kozachenko-Leonenko differential-entropy regulariser on a batch of embeddings.

``L_KoLeo = -(1/n) Σ_i ln(ρ_i + ε)``, where ``ρ_i = min_{j≠i} ‖x̄_i - x̄_j‖₂`` is the distance from the L2-normalised
embedding ``x̄_i`` to its nearest neighbour in the batch. Minimising it spreads the embeddings of *different* images
apart, which is the opposite of the input-independent ("uniform") collapse a DINO teacher falls into when the
image embeddings barely differ (docs/results_study.md, BENCHMARKS.md §8).

Not part of the SMART paper: DINOv2 (Oquab et al., 2023, Sec. 4) adds it to the backbone [CLS] token with weight 0.1,
after Sablayrolles et al. (2019, "Spreading vectors for similarity search"). SMART's ``paper`` config keeps it at weight
0 (the paper recipe); the CPU ``small`` preset turns it on (``loss.koleo``, smart.config). SelfDistillation applies it to
the *bottleneck* of the image-level DINO heads (AITD's [CLS] head, GITD's pooled head), per view and per rank (as
DINOv2, no all-gather), not to the backbone token: on the backbone [CLS] it left the AITD teacher at 0.998·ln K after
80 steps, because the head itself learned to ignore its input (BENCHMARKS.md §8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["koleo_loss"]


def koleo_loss(embeddings: Tensor, eps: float = 1e-8) -> Tensor:
    """KoLeo over the rows of ``embeddings`` ``(n, C)`` (n ≥ 2 images of one view), a scalar.

    Rows are L2-normalised first, so ρ_i ∈ [0, 2] and the loss is bounded below by ``-ln 2``. Computed in float32.

    Raises:
        ValueError: fewer than 2 rows (no nearest neighbour) or not a 2-D tensor.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"KoLeo needs (n >= 2, C) embeddings, got shape {tuple(embeddings.shape)}")
    x = F.normalize(embeddings.float(), dim=-1, eps=eps)
    dist = torch.cdist(x, x)
    # A row is not its own neighbour: push the diagonal past the largest possible distance (2) before the min.
    dist = dist + torch.eye(x.shape[0], device=x.device, dtype=x.dtype) * 4.0
    nearest = dist.min(dim=1).values
    return -torch.log(nearest + eps).mean()
