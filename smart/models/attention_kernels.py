"""Attention calls that stay eligible for PyTorch's fused SDPA kernels under bf16, and a report of which kernel each
encoder stage gets on CUDA.

``torch.nn.functional.scaled_dot_product_attention`` picks a backend per call (PyTorch's
``aten/src/ATen/native/transformers/cuda/sdp_utils.cpp``, ``select_sdp_backend``; default order flash, then
memory-efficient, then math):

* **flash** takes no ``attn_mask`` (``check_for_attn_mask``), needs q/k/v of one head dim <= 256, fp16/bf16, sm80+;
* **memory-efficient** takes an additive bias, but needs the head dim to be a multiple of the GEMM alignment
  (``check_head_dim_size_mem_efficient`` / ``minimum_gemm_alignment``: 8 for fp16/bf16 on sm80+, 4 for fp32) and
  q/k/v storage offsets aligned to that many elements;
* **math** otherwise: the explicit attention matrix, stored for backward.

The Swin window attention always passes a bias (relative position, plus the shifted-window mask), so it can only get
the memory-efficient kernel; the paper's stage 1 has head dim 48 / 4 = 12, which is not a multiple of 8 and fell to
math on the largest stage. :func:`fused_sdpa` zero-pads q, k and v in the head dim to a multiple of 8 on CUDA and
passes ``scale = 1/sqrt(true head dim)``: the padded q·k products add exact zeros and the padded output columns are
zero and sliced off, so the result is unchanged (``tests/models/test_attention_kernels.py`` checks equality on CPU
against the unpadded call, for the paper's head dims 12, 24 and 48). On a PyTorch whose default order puts cuDNN
attention first (sm90/sm100 with cuDNN > 9.15), cuDNN may take a call before flash / memory-efficient;
:func:`smart.models.attention_report.sdpa_backend_report` does not model that. The pick is derived from those rules, not measured on a GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# fp16/bf16 GEMM alignment of the memory-efficient kernel on sm80+ (128 bits / 16 bits per element).
HEAD_DIM_MULTIPLE = 8
FLASH_MAX_HEAD_DIM = 256


def padded_head_dim(head_dim: int, multiple: int = HEAD_DIM_MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` >= ``head_dim`` (``ValueError`` for non-positive values)."""
    if head_dim < 1 or multiple < 1:
        raise ValueError(f"head_dim and multiple must be >= 1, got {head_dim}, {multiple}")
    return -(-head_dim // multiple) * multiple


def fused_sdpa(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, dropout_p: float = 0.0,
               scale: float | None = None, multiple: int | None = None) -> Tensor:
    """``F.scaled_dot_product_attention`` on ``q, k, v`` ``(B, heads, N, d)`` with the head dim zero-padded to a
    multiple of ``multiple`` (default: :data:`HEAD_DIM_MULTIPLE` on CUDA, 1 = no padding elsewhere, where no fused
    kernel needs it and the padding would only cost FLOPs). ``scale`` defaults to ``1/sqrt(d)`` of the *true* head
    dim. Returns ``(B, heads, N, d)``, equal to the unpadded call."""
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    if multiple is None:
        multiple = HEAD_DIM_MULTIPLE if q.is_cuda else 1
    pad = padded_head_dim(d, multiple) - d
    if pad:
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
    return out[..., :d] if pad else out


def cuda_sdpa_backend(head_dim: int, has_bias: bool, dtype: torch.dtype = torch.bfloat16) -> str:
    """The backend PyTorch's default order would pick on an sm80+ GPU for one SDPA call (module docstring):
    ``"flash"``, ``"efficient"`` or ``"math"``. q/k/v are assumed dense, contiguous in the head dim and aligned (true
    of :func:`fused_sdpa`'s inputs)."""
    low_precision = dtype in (torch.float16, torch.bfloat16)
    if low_precision and not has_bias and head_dim <= FLASH_MAX_HEAD_DIM:
        return "flash"
    alignment = HEAD_DIM_MULTIPLE if low_precision else 4
    if dtype in (torch.float16, torch.bfloat16, torch.float32) and head_dim % alignment == 0:
        return "efficient"
    return "math"


__all__ = ["FLASH_MAX_HEAD_DIM", "HEAD_DIM_MULTIPLE", "cuda_sdpa_backend", "fused_sdpa", "padded_head_dim"]
