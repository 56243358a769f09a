"""Frozen-encoder features for linear probing (Tables II/III) and clustering (Table I, ``smart.eval.embed``).

Which vector represents an image: the [CLS] token when the encoder has one (SMART's SA [CLS], the ViT [CLS]) and the
global average of the last stage otherwise (SMIT / iBOT / "no SA": "image tokens produced after average pooling of
the features from stage #4", paper Sec. VI-D). ``kind="auto"`` applies that rule; ``"cls"``/``"pooled"`` force one.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

KINDS = ("auto", "cls", "pooled")


def feature_kind(encoder: nn.Module, kind: str = "auto") -> str:
    """Resolve ``kind`` for ``encoder``; ``"cls"`` on an encoder without [CLS] is an error."""
    if kind not in KINDS:
        raise ValueError(f"feature kind must be one of {KINDS}, got {kind!r}")
    has_cls = getattr(encoder, "cls_dim", None) is not None
    if kind == "auto":
        return "cls" if has_cls else "pooled"
    if kind == "cls" and not has_cls:
        raise ValueError("feature kind 'cls' requested but the encoder has no [CLS] (no semantic-attention block)")
    return kind


def input_multiple(encoder: nn.Module) -> tuple[int, int, int]:
    """Each input edge must be a multiple of this (Swin: patch·2^4; ViT: its patch size)."""
    mult = getattr(encoder, "input_multiple", None)
    if mult is None:
        patch = getattr(encoder, "patch_size", 16)
        mult = patch if isinstance(patch, (tuple, list)) else (patch,) * 3
    return tuple(int(m) for m in mult)  # type: ignore[return-value]


def fit_size(spatial: Sequence[int], multiple: Sequence[int]) -> tuple[int, int, int]:
    """The smallest size >= ``spatial`` that is a multiple of ``multiple`` per axis (e.g. 28 -> 32 for Swin)."""
    return tuple(int(-(-s // m) * m) for s, m in zip(spatial, multiple))  # type: ignore[return-value]


def _images_of(batch) -> torch.Tensor:
    # Datasets here yield an image tensor or an (image, label, ...) tuple.
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def extract_features(encoder: nn.Module, data: Dataset | torch.Tensor, kind: str = "auto", batch_size: int = 8,
                     device: str | torch.device = "cpu", resize_to: Sequence[int] | None = None,
                     progress: bool = False) -> np.ndarray:
    """``(n, C)`` float32 features of every image in ``data`` (a Dataset or an ``(n, 1, D, H, W)`` tensor), in order.

    The encoder runs in eval mode without gradients; its train/eval mode is restored afterwards. ``resize_to``
    resamples inputs trilinearly first (OrganMNIST3D 28³ -> a Swin-compatible 32³).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    kind = feature_kind(encoder, kind)
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
    loader: Iterable = DataLoader(data, batch_size=batch_size, shuffle=False)
    if progress:
        from smart.progress import track

        loader = track(loader, "embed", unit="batch", samples_of=lambda b: len(_images_of(b)))
    was_training = encoder.training
    encoder.eval().to(device)
    chunks = []
    try:
        for batch in loader:
            x = _images_of(batch).to(device=device, dtype=torch.float32)
            if resize_to is not None and tuple(x.shape[2:]) != tuple(resize_to):
                x = F.interpolate(x, size=tuple(resize_to), mode="trilinear", align_corners=False)
            out = encoder(x, need_attention=False)
            feats = out.cls if kind == "cls" else out.pooled
            chunks.append(feats.float().cpu())
    finally:
        encoder.train(was_training)
    if not chunks:
        raise ValueError("no images to extract features from (empty dataset)")
    return torch.cat(chunks).numpy()
