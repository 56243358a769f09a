"""AMIP — attention guided masked image prediction (SMART Sec. III-C, Eq. 6).

``L_AMIP = E ‖ m^att ⊙ (h_s^Pred(f_s(ũ)) - u) ‖_1``: the student's linear prediction head reconstructs the voxels of
the view from the masked input ũ; the L1 error counts only voxels covered by masked tokens (``m^att`` upsampled from
the mask grid to voxels, :func:`smart.models.swin.upsample_mask`). The expectation is the mean over those voxels of
the whole batch: ``Σ |pred - target| · m / max(Σ m, 1)`` (0 when nothing is masked).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["amip_loss"]


def amip_loss(pred: Tensor, target: Tensor, voxel_mask: Tensor) -> Tensor:
    """Eq. 6. ``pred`` and ``target`` ``(B, C, D, H, W)`` (target = the unmasked view, no gradient);
    ``voxel_mask`` bool broadcastable to them — ``(B, 1, D, H, W)``, or ``(B, D, H, W)`` which is read as one channel.
    Each masked element of the broadcast mask counts once in the denominator. Returns a scalar."""
    if pred.shape != target.shape:
        raise ValueError(f"AMIP: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if voxel_mask.dim() == pred.dim() - 1:
        voxel_mask = voxel_mask.unsqueeze(1)
    try:
        weights = voxel_mask.float().expand_as(pred)
    except RuntimeError as err:
        raise ValueError(
            f"AMIP: voxel mask shape {tuple(voxel_mask.shape)} does not broadcast to "
            f"prediction shape {tuple(pred.shape)}"
        ) from err
    error = (pred.float() - target.detach().float()).abs()
    return (error * weights).sum() / weights.sum().clamp(min=1.0)
