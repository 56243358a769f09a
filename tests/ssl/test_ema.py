"""EMA teacher update and its momentum schedule (smart.ssl.ema, Sec. III-D)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from smart.ssl.ema import ema_update_, momentum_at


def test_momentum_landmarks():
    assert momentum_at(0, 1000) == pytest.approx(0.996)
    assert momentum_at(500, 1000) == pytest.approx(0.998)
    assert momentum_at(250, 1000) == pytest.approx(1.0 - 0.004 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert momentum_at(1000, 1000) == 1.0
    assert momentum_at(5000, 1000) == 1.0


def test_momentum_anneals_across_epochs_by_global_step():
    # 4 epochs x 25 steps: indexed by the global step the momentum keeps rising epoch after epoch. The SMIT bug (index
    # by in-epoch step) would give the same value at the same in-epoch position of every epoch.
    steps_per_epoch, epochs = 25, 4
    total = steps_per_epoch * epochs
    at_epoch_start = [momentum_at(e * steps_per_epoch, total) for e in range(epochs)]
    assert all(a < b for a, b in zip(at_epoch_start, at_epoch_start[1:]))
    buggy = [momentum_at(0, total) for _ in range(epochs)]
    assert at_epoch_start != buggy
    assert momentum_at(total - 1, total) > 0.99999


def test_momentum_bad_bounds():
    with pytest.raises(ValueError, match="start"):
        momentum_at(0, 10, start=1.5)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(torch.tensor([2.0]))


def _pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    student = _Net()
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
        student.norm.running_mean.fill_(0.5)
        student.norm.num_batches_tracked.fill_(7)
    return teacher, student


@pytest.mark.parametrize("m", [0.0, 0.5, 0.996, 1.0])
def test_ema_update_matches_by_hand_loop(m):
    teacher, student = _pair()
    expected = {}
    for (name, t), (_, s) in zip(teacher.named_parameters(), student.named_parameters()):
        # element-wise by hand
        out = t.detach().clone().view(-1)
        for i, (tv, sv) in enumerate(zip(t.detach().view(-1).tolist(), s.detach().view(-1).tolist())):
            out[i] = m * tv + (1 - m) * sv
        expected[name] = out.view_as(t)
    ema_update_(teacher, student, m)
    for name, t in teacher.named_parameters():
        torch.testing.assert_close(t.detach(), expected[name], rtol=0, atol=1e-6)
    assert torch.equal(teacher.norm.running_mean, student.norm.running_mean)
    assert int(teacher.norm.num_batches_tracked) == 7


def test_ema_update_no_autograd_and_student_unchanged():
    teacher, student = _pair()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    ema_update_(teacher, student, 0.9)
    assert all(p.grad_fn is None for p in teacher.parameters())
    for n, p in student.named_parameters():
        assert torch.equal(p.detach(), before[n])


def test_ema_update_rejects_mismatch_and_bad_momentum():
    teacher, student = _pair()
    with pytest.raises(ValueError, match="momentum"):
        ema_update_(teacher, student, 1.1)
    with pytest.raises(ValueError, match="names differ"):
        ema_update_(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4)), 0.5)
    with pytest.raises(ValueError, match="shape"):
        ema_update_(nn.Linear(3, 4), nn.Linear(3, 5), 0.5)


def test_non_strict_skips_student_only_tensors_but_not_teacher_only():
    teacher = nn.Sequential(nn.Linear(2, 2))
    student = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))  # "1.*" is student-only (like the AMIP head)
    with torch.no_grad():
        teacher[0].weight.zero_()
        student[0].weight.fill_(1.0)
    with pytest.raises(ValueError, match=r"teacher-only \[\], student-only \['1.bias', '1.weight'\]"):
        ema_update_(teacher, student, 0.75)
    ema_update_(teacher, student, 0.75, strict=False)
    torch.testing.assert_close(teacher[0].weight, torch.full((2, 2), 0.25))
    with pytest.raises(ValueError, match=r"teacher-only \['1.bias', '1.weight'\]"):
        ema_update_(student, teacher, 0.75, strict=False)


def test_ema_update_with_apply_false_leaves_the_teacher_and_true_updates_it():
    torch.manual_seed(0)
    student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update_(teacher, student, 0.9, apply=torch.tensor(False))
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    ema_update_(teacher, student, 0.9, apply=torch.tensor(True))
    for (k, t), s in zip(teacher.state_dict().items(), student.state_dict().values()):
        torch.testing.assert_close(t, 0.9 * before[k] + 0.1 * s)
