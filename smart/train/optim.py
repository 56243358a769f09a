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


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], optim_cfg: dict[str, Any]) -> torch.optim.AdamW:
    """AdamW over trainable parameters; the learning rate is set every step by :func:`set_lr`."""
    # foreach=False keeps the update arithmetic identical whatever the parameter count/device (exact resume test).
    return torch.optim.AdamW(param_groups(named, float(optim_cfg["weight_decay"])), lr=float(optim_cfg["lr"]),
                             betas=(0.9, 0.999), foreach=False)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def set_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    """Set the weight decay of the decayed group(s) (norms, biases and tokens stay at 0): the DINO schedule."""
    for group in optimizer.param_groups:
        if group.get("decay", True):
            group["weight_decay"] = weight_decay

