"""Which SDPA kernel each attention stage of an encoder gets on CUDA (issue 18): the head dim, the padded head dim
that :func:`smart.models.attention_kernels.fused_sdpa` passes, whether a bias is passed, and the backend PyTorch's
rules pick under bf16 (:func:`smart.models.attention_kernels.cuda_sdpa_backend`; derived, not measured on a GPU)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from monai.networks.nets.swin_unetr import WindowAttention
from torch import nn

from smart.models.attention_kernels import cuda_sdpa_backend, padded_head_dim
from smart.models.factory import build_encoder
from smart.models.semantic_attention import SelfAttention


def _stage_of(name: str) -> str:
    head = name.split(".", 1)[0]
    if head.startswith("layers") and head[len("layers"):].isdigit():
        return f"stage{head[len('layers'):]}"
    return {"semantic_attention": "sa", "blocks": "vit"}.get(head, head)


def sdpa_backend_report(encoder: nn.Module | Mapping[str, Any], dtype: torch.dtype = torch.bfloat16) -> list[dict]:
    """Per attention stage of ``encoder`` (a built encoder, or a ``model.*`` config, built on the CPU): one row
    ``{"stage", "kind" ("window" | "self"), "blocks", "heads", "head_dim", "padded_head_dim", "bias", "backend"}``.

    ``padded_head_dim`` is what :func:`~smart.models.attention_kernels.fused_sdpa` passes on CUDA; ``backend`` is
    :func:`~smart.models.attention_kernels.cuda_sdpa_backend` of it under ``dtype`` autocast. Stages in model order
    (Swin ``stage1..4`` and ``sa``; ViT ``vit``)."""
    if isinstance(encoder, Mapping):
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG alone
            encoder = build_encoder(encoder)
    rows: dict[str, dict] = {}
    for name, module in encoder.named_modules():
        if isinstance(module, WindowAttention):
            kind, bias, dim = "window", True, module.qkv.in_features
        elif isinstance(module, SelfAttention):
            kind, bias, dim = "self", False, module.qkv.in_features
        else:
            continue
        stage = _stage_of(name)
        if stage in rows:
            rows[stage]["blocks"] += 1
            continue
        head_dim = dim // module.num_heads
        padded = padded_head_dim(head_dim)
        rows[stage] = {"stage": stage, "kind": kind, "blocks": 1, "heads": module.num_heads, "head_dim": head_dim,
                       "padded_head_dim": padded, "bias": bias, "backend": cuda_sdpa_backend(padded, bias, dtype)}
    return list(rows.values())


__all__ = ["sdpa_backend_report"]
