"""Fused-kernel eligibility of every attention call (issue 18): zero-padding the head dim to a multiple of 8 leaves
SDPA's result unchanged (CPU, the paper's head dims 12, 24 and 48, with and without a bias, values and gradients),
and the per-stage backend report of the paper config follows PyTorch's selection rules (sdp_utils.cpp)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smart.models.attention_kernels import cuda_sdpa_backend, fused_sdpa, padded_head_dim
from smart.models.attention_report import sdpa_backend_report

PAPER = {"arch": "swin", "embed_dim": 48, "depths": [2, 2, 8, 2], "num_heads": [4, 4, 8, 16], "window_size": 4,
         "patch_size": 2, "sa_stage": 3, "sa_depth": 2, "sa_heads": 8, "img_size": 128}


@pytest.mark.parametrize("head_dim", [12, 24, 48])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_padding_the_head_dim_leaves_attention_unchanged(head_dim, with_bias):
    gen = torch.Generator().manual_seed(head_dim)
    q, k, v = (torch.randn(3, 2, 64, head_dim, generator=gen, requires_grad=True) for _ in range(3))
    bias = torch.randn(3, 2, 64, 64, generator=gen, requires_grad=True) if with_bias else None
    scale = head_dim ** -0.5
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    grads_expected = torch.autograd.grad(expected.square().sum(), [q, k, v] + ([bias] if with_bias else []))
    got = fused_sdpa(q, k, v, attn_mask=bias, multiple=8)  # default scale: 1/sqrt(true head dim)
    grads_got = torch.autograd.grad(got.square().sum(), [q, k, v] + ([bias] if with_bias else []))
    assert got.shape == expected.shape
    assert torch.equal(got, expected)
    for a, b in zip(grads_got, grads_expected):
        if with_bias:  # the window-attention case: bit for bit, values and gradients
            assert torch.equal(a, b)
        else:
            # Without a bias PyTorch's fused CPU kernel runs the backward, which sums over the head dim in vector
            # blocks whose split depends on the dim: measured up to 7e-8 of the largest entry at d = 12 (< 1 float32
            # ulp of it); the forward above is still bit-identical.
            torch.testing.assert_close(a, b, rtol=0.0, atol=2e-7 * float(b.abs().max()))


def test_padded_head_dim():
    assert [padded_head_dim(d) for d in (1, 8, 12, 24, 48, 50)] == [8, 8, 16, 24, 48, 56]
    with pytest.raises(ValueError, match="head_dim and multiple must be >= 1"):
        padded_head_dim(0)


def test_cuda_backend_rules():
    # a bias rules out flash; the memory-efficient kernel needs head dim % 8 under bf16 (% 4 under fp32)
    assert cuda_sdpa_backend(12, has_bias=True) == "math"
    assert cuda_sdpa_backend(16, has_bias=True) == "efficient"
    assert cuda_sdpa_backend(12, has_bias=True, dtype=torch.float32) == "efficient"
    assert cuda_sdpa_backend(12, has_bias=False) == "flash"
    assert cuda_sdpa_backend(48, has_bias=False, dtype=torch.float32) == "efficient"
    assert cuda_sdpa_backend(264, has_bias=False) == "efficient"  # over flash's 256


def test_paper_config_gets_a_fused_kernel_at_every_stage():
    rows = sdpa_backend_report(PAPER)
    got = [(r["stage"], r["kind"], r["blocks"], r["heads"], r["head_dim"], r["padded_head_dim"], r["bias"],
            r["backend"]) for r in rows]
    assert got == [
        ("stage1", "window", 2, 4, 12, 16, True, "efficient"),   # 48 / 4 heads: padded 12 -> 16
        ("stage2", "window", 2, 4, 24, 24, True, "efficient"),   # 96 / 4
        ("stage3", "window", 8, 8, 24, 24, True, "efficient"),   # 192 / 8
        ("stage4", "window", 2, 16, 24, 24, True, "efficient"),  # 384 / 16
        ("sa", "self", 2, 8, 48, 48, False, "flash"),            # SA on stage 3: 384 / 8, no bias
    ]
