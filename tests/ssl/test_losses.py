"""SMART losses (Sec. III-C) against formulas written out independently with explicit loops in numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smart.ssl.losses import aitd_loss, amip_loss, ampd_loss, gitd_loss, student_log_probs, teacher_probs
from smart.models.swin import upsample_mask


def _np_softmax(row: np.ndarray) -> np.ndarray:
    row = row.astype(np.float64)
    e = np.exp(row - row.max())
    return e / e.sum()


def _np_log_softmax(row: np.ndarray) -> np.ndarray:
    row = row.astype(np.float64)
    shifted = row - row.max()
    return shifted - math.log(sum(math.exp(v) for v in shifted))


def _np_teacher(row: np.ndarray, center: np.ndarray, temp: float) -> np.ndarray:
    return _np_softmax((row - center) / temp)


def _np_ce(t_row: np.ndarray, s_row: np.ndarray, t_center: np.ndarray, t_temp: float, s_temp: float) -> float:
    p_t = _np_teacher(t_row, t_center, t_temp)
    log_p_s = _np_log_softmax(s_row / s_temp)
    return float(-sum(p_t[k] * log_p_s[k] for k in range(len(p_t))))


def _logits(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float() * 3


def test_teacher_probs_and_student_log_probs_match_numpy():
    logits = _logits(3, 5, seed=0)
    center = _logits(1, 5, seed=1)
    probs = teacher_probs(logits, center, 0.04)
    logp = student_log_probs(logits, 0.1)
    for b in range(3):
        expected = _np_teacher(logits[b].numpy(), center[0].numpy(), 0.04)
        np.testing.assert_allclose(probs[b].numpy(), expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(logp[b].numpy(), _np_log_softmax(logits[b].numpy() / 0.1), rtol=1e-5, atol=1e-5)
    assert not probs.requires_grad
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))


def test_teacher_probs_no_center_and_bad_temperature():
    logits = _logits(2, 4, seed=2)
    torch.testing.assert_close(teacher_probs(logits, 0.0, 1.0), logits.softmax(-1))
    with pytest.raises(ValueError, match="teacher temperature"):
        teacher_probs(logits, 0.0, 0.0)
    with pytest.raises(ValueError, match="student temperature"):
        student_log_probs(logits, -1.0)
    with pytest.raises(ValueError, match="center last dim"):
        teacher_probs(logits, torch.zeros(1, 3), 0.04)


@pytest.mark.parametrize("loss_fn", [aitd_loss, gitd_loss])
def test_image_token_losses_match_explicit_loop(loss_fn):
    """Eq. 2 / Eq. 4: -Σ_k P_t log P_s per image, mean over the batch."""
    batch, k = 4, 7
    t_logits, s_logits, center = _logits(batch, k, seed=3), _logits(batch, k, seed=4), _logits(1, k, seed=5)
    t_temp, s_temp = 0.04, 0.1
    loss = loss_fn(s_logits, teacher_probs(t_logits, center, t_temp), student_temp=s_temp)
    expected = np.mean(
        [_np_ce(t_logits[b].numpy(), s_logits[b].numpy(), center[0].numpy(), t_temp, s_temp) for b in range(batch)]
    )
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss_fn", [aitd_loss, gitd_loss])
def test_image_token_gradient_reaches_student_only(loss_fn):
    batch, k, s_temp = 3, 5, 0.1
    teacher_logits = _logits(batch, k, seed=6).requires_grad_()
    student_logits = _logits(batch, k, seed=7).requires_grad_()
    p_t = teacher_probs(teacher_logits, 0.0, 0.04)
    loss_fn(student_logits, p_t, student_temp=s_temp).backward()
    assert teacher_logits.grad is None
    # d/dz of mean_b CE = (softmax(z/τ_s) - P_t) / (τ_s · B)
    expected = (torch.softmax(student_logits.detach() / s_temp, -1) - p_t) / (s_temp * batch)
    torch.testing.assert_close(student_logits.grad, expected, rtol=1e-4, atol=1e-6)


def test_distillation_gradient_blocked_even_with_grad_carrying_teacher_probs():
    teacher_out = _logits(2, 4, seed=8).requires_grad_()
    student_logits = _logits(2, 4, seed=9).requires_grad_()
    aitd_loss(student_logits, teacher_out.softmax(-1)).backward()  # probs built outside no_grad by mistake
    assert teacher_out.grad is None and student_logits.grad is not None


def test_image_token_shape_errors():
    with pytest.raises(ValueError, match="AITD.*\\(B, K\\)"):
        aitd_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        gitd_loss(torch.zeros(2, 4), torch.zeros(2, 5))


def test_ampd_matches_explicit_loop():
    """Eq. 5 with per-sample normalisation: Σ_i m_i CE_i / max(Σ_i m_i, 1), then the batch mean."""
    batch, grid, k = 3, (2, 2, 2), 6
    n = 8
    t_logits, s_logits, center = _logits(batch, n, k, seed=10), _logits(batch, n, k, seed=11), _logits(1, k, seed=12)
    mask = torch.zeros(batch, *grid, dtype=torch.bool)
    mask.view(batch, -1)[0, [1, 4, 6]] = True
    mask.view(batch, -1)[1, :] = True
    # sample 2: nothing masked -> contributes 0
    t_temp, s_temp = 0.07, 0.1
    loss = ampd_loss(s_logits, teacher_probs(t_logits, center, t_temp), mask, student_temp=s_temp)
    flat = mask.view(batch, -1).numpy()
    per_sample = []
    for b in range(batch):
        total, count = 0.0, 0
        for i in range(n):
            if flat[b, i]:
                total += _np_ce(t_logits[b, i].numpy(), s_logits[b, i].numpy(), center[0].numpy(), t_temp, s_temp)
                count += 1
        per_sample.append(total / max(count, 1))
    assert per_sample[2] == 0.0
    assert loss.item() == pytest.approx(float(np.mean(per_sample)), rel=1e-5)
    # (B, N) masks give the same value as (B, *grid) masks.
    same = ampd_loss(s_logits, teacher_probs(t_logits, center, t_temp), mask.view(batch, -1), student_temp=s_temp)
    assert same.item() == pytest.approx(loss.item(), rel=1e-6)


def test_ampd_gradient_only_on_masked_student_tokens():
    batch, n, k = 2, 4, 3
    teacher_logits = _logits(batch, n, k, seed=13).requires_grad_()
    student_logits = _logits(batch, n, k, seed=14).requires_grad_()
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    ampd_loss(student_logits, teacher_probs(teacher_logits, 0.0, 0.04), mask).backward()
    assert teacher_logits.grad is None
    grad_norm = student_logits.grad.abs().sum(-1)
    assert torch.equal(grad_norm > 0, mask)


def test_ampd_shape_errors():
    with pytest.raises(ValueError, match="\\(B, N, K\\)"):
        ampd_loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask shape"):
        ampd_loss(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.zeros(2, 5, dtype=torch.bool))


def test_amip_matches_explicit_loop_over_voxels():
    """Eq. 6: mean |pred - target| over voxels of masked tokens (whole batch)."""
    gen = torch.Generator().manual_seed(15)
    token_mask = torch.rand(2, 2, 2, 2, generator=gen) > 0.5
    token_mask[0, 0, 0, 0] = True
    voxel_mask = upsample_mask(token_mask, (2, 2, 2)).unsqueeze(1)  # (B, 1, 4, 4, 4)
    pred = torch.randn(2, 1, 4, 4, 4, generator=gen)
    target = torch.rand(2, 1, 4, 4, 4, generator=gen)
    total, count = 0.0, 0
    p, t, m = pred.numpy(), target.numpy(), token_mask.numpy()
    for b in range(2):
        for z in range(4):
            for y in range(4):
                for x in range(4):
                    if m[b, z // 2, y // 2, x // 2]:
                        total += abs(float(p[b, 0, z, y, x]) - float(t[b, 0, z, y, x]))
                        count += 1
    expected = total / count
    assert amip_loss(pred, target, voxel_mask).item() == pytest.approx(expected, rel=1e-5)
    # A (B, D, H, W) mask is read as one channel.
    assert amip_loss(pred, target, voxel_mask[:, 0]).item() == pytest.approx(expected, rel=1e-5)


def test_amip_empty_mask_is_zero_and_gradient_goes_to_prediction_only():
    pred = torch.randn(1, 1, 2, 2, 2, requires_grad=True)
    target = torch.randn(1, 1, 2, 2, 2, requires_grad=True)
    assert amip_loss(pred, target, torch.zeros(1, 1, 2, 2, 2, dtype=torch.bool)).item() == 0.0
    mask = torch.zeros(1, 1, 2, 2, 2, dtype=torch.bool)
    mask[0, 0, 0] = True  # 4 voxels
    amip_loss(pred, target, mask).backward()
    assert target.grad is None
    expected = torch.where(mask, torch.sign(pred.detach() - target.detach()) / 4, torch.zeros(()))
    torch.testing.assert_close(pred.grad, expected)


def test_amip_multichannel_counts_each_element():
    pred = torch.ones(1, 2, 1, 1, 2)
    target = torch.zeros(1, 2, 1, 1, 2)
    target[0, 1] = -1.0  # channel 1 error is 2
    mask = torch.tensor([True, False]).view(1, 1, 1, 1, 2)
    # masked elements: (c0, x0) error 1 and (c1, x0) error 2 -> mean 1.5
    assert amip_loss(pred, target, mask).item() == pytest.approx(1.5)


def test_amip_shape_errors():
    with pytest.raises(ValueError, match="prediction shape"):
        amip_loss(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 3), torch.ones(1, 1, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        amip_loss(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2), torch.ones(1, 1, 3, 2, 2, dtype=torch.bool))
