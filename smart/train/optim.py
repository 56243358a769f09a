"""AdamW with DINO/Swin-style parameter groups and the per-step learning-rate setter (Sec. IV-C: AdamW, cosine LR
with warm-up; the schedules themselves are in ``smart.ssl.schedules``)."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

# Learnable tokens and position tables are not weights in the L2 sense: decaying them pulls the mask/CLS token to 0.
_NO_DECAY_NAME_PARTS = ("token", "pos_embed", "relative_position_bias_table", "absolute_pos")


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """Norm weights, biases (all 1-D tensors) and tokens/position tables are excluded from weight decay."""
    return param.ndim <= 1 or name.endswith(".bias") or any(part in name for part in _NO_DECAY_NAME_PARTS)


def param_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    decay, plain = [], []
    for name, param in named:
        if not param.requires_grad:
            continue
        (plain if no_weight_decay(name, param) else decay).append(param)
    # "decay" tags the group whose weight decay follows the schedule (set_weight_decay); the tag is kept in the
    # optimiser state_dict, so a resumed run still knows which group is which.
    groups = [{"params": decay, "weight_decay": weight_decay, "decay": True}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0, "decay": False})
    return groups


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float,
                    device: torch.device | None = None) -> torch.optim.AdamW:
    """AdamW over trainable parameters at ``lr`` and ``weight_decay`` (``optim.lr`` / ``optim.weight_decay``); the
    schedules reset both every step (:func:`set_lr`, :func:`set_weight_decay`).

    On CUDA the fused kernel (one launch for all parameters, and it can skip a step on the device:
    :func:`guarded_step`); elsewhere the single-tensor loop (``foreach=False``), whose arithmetic does not depend on
    the parameter count or layout, so CPU resume stays bit-exact."""
    groups = param_groups(named, float(weight_decay))
    kernel = {"fused": True} if device is not None and device.type == "cuda" else {"foreach": False}
    return torch.optim.AdamW(groups, lr=float(lr), betas=(0.9, 0.999), **kernel)


@torch.no_grad()
def guarded_step(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """``optimizer.step()`` unless the 0-d bool tensor ``skip`` is true, decided on the device (no host sync).

    A fused optimiser takes ``skip`` as its ``found_inf`` (the mechanism ``torch.amp.GradScaler`` uses: the kernel
    leaves parameters and moments alone and the step counter is rolled back). Otherwise the step runs and every
    parameter and optimiser-state tensor it touched is put back where ``skip`` is true: ``torch.where`` with a copy
    taken before the step (state created by this step is put back to its initial zeros). Where ``skip`` is false the
    result is the plain step's, bit for bit.
    """
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = skip.float()  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]
        return
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    saved = [(p, p.detach().clone()) for p in params]
    had_state = {id(p) for p in params if optimizer.state.get(p)}
    saved += [(t, t.detach().clone()) for p in params if id(p) in had_state
              for t in optimizer.state[p].values() if torch.is_tensor(t)]
    optimizer.step()
    for tensor, before in saved:
        tensor.copy_(torch.where(skip.to(tensor.device), before, tensor))
    for p in params:
        if id(p) not in had_state:
            for t in optimizer.state[p].values():
                if torch.is_tensor(t):
                    t.copy_(torch.where(skip.to(t.device), torch.zeros_like(t), t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def set_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    """Set the weight decay of the decayed group(s) (norms, biases and tokens stay at 0): the DINO schedule."""
    for group in optimizer.param_groups:
        if group.get("decay", True):
            group["weight_decay"] = weight_decay

