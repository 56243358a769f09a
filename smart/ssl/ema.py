"""EMA teacher (SMART Sec. III-D): ``θ_t = λ_m θ_t + (1 - λ_m) θ_s`` with λ_m on a cosine schedule 0.996 → 1.

λ_m is indexed by the *global* step (see :mod:`smart.ssl.schedules`): SMIT's in-epoch index restarted the schedule
every epoch, so its momentum never annealed towards 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from smart.ssl.schedules import momentum_at  # the schedule lives with the others; re-exported here

__all__ = ["ema_update_", "momentum_at"]


def _paired(
    teacher_items: dict, student_items: dict, kind: str, strict: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Match teacher and student tensors by name, raising on a shape difference, on a teacher tensor without a student
    counterpart, and (``strict``) on a student-only tensor. A wrapped student (DDP's ``module.`` prefix) must be
    unwrapped by the caller."""
    missing = teacher_items.keys() - student_items.keys()
    if missing or (strict and teacher_items.keys() != student_items.keys()):
        only_t = sorted(teacher_items.keys() - student_items.keys())[:5]
        only_s = sorted(student_items.keys() - teacher_items.keys())[:5]
        raise ValueError(f"teacher and student {kind} names differ: teacher-only {only_t}, student-only {only_s}")
    names = list(teacher_items)
    for name in names:
        if teacher_items[name].shape != student_items[name].shape:
            raise ValueError(
                f"{kind} {name!r}: teacher shape {tuple(teacher_items[name].shape)} != "
                f"student shape {tuple(student_items[name].shape)}"
            )
    return [teacher_items[n] for n in names], [student_items[n] for n in names]


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, momentum: float, *, strict: bool = True,
                apply: torch.Tensor | None = None) -> None:
    """In place: every teacher parameter ``θ_t ← m·θ_t + (1-m)·θ_s``; every buffer copied from the student.

    Parameters are matched by name. ``strict=False`` lets the student hold extra, student-only tensors (e.g. the AMIP
    prediction head, Sec. III-C) that are skipped; every teacher tensor still needs a student counterpart.

    The update is two fused ``torch._foreach_*`` calls over all parameters (one kernel launch per group instead of
    one per tensor on GPU) and runs without autograd.

    ``apply`` (0-d bool tensor): where false the teacher is left unchanged, decided on the device (the momentum
    becomes 1: ``θ_t·1 + θ_s·0``, exact for the finite student of a skipped step) — the training loop skips a
    non-finite step without a host sync.
    """
    momentum = float(momentum)
    if not (math.isfinite(momentum) and 0.0 <= momentum <= 1.0):
        raise ValueError(f"EMA momentum must be in [0, 1], got {momentum!r}")
    t_params, s_params = _paired(
        dict(teacher.named_parameters()), dict(student.named_parameters()), "parameter", strict
    )
    if t_params and apply is None:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, [p.detach() for p in s_params], alpha=1.0 - momentum)
    elif t_params:
        m = torch.where(apply, momentum, 1.0).to(t_params[0].dtype)
        torch._foreach_mul_(t_params, m)
        torch._foreach_add_(t_params, torch._foreach_mul([p.detach() for p in s_params], 1.0 - m))
    t_bufs, s_bufs = _paired(dict(teacher.named_buffers()), dict(student.named_buffers()), "buffer", strict)
    for t_buf, s_buf in zip(t_bufs, s_bufs):
        t_buf.copy_(s_buf)
