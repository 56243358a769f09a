"""Encoder files (``encoder.pt``): what downstream steps load (docs/ARCHITECTURE.md, "Encoder file").

Layout ``{"format": "smart-encoder/1", "arch", "model_config", "backbone", "semantic_attention", "mask_token",
"method", "step"}``. Only tensors and plain Python types, so ``torch.load(weights_only=True)`` reads it (no pickled
code runs); written atomically so a killed job never leaves a truncated file. For Swin, ``backbone`` holds exactly
MONAI's ``SwinTransformer`` keys and loads with ``strict=True`` into ``SwinUNETR(...).swinViT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smart.atomic import atomic_path
from smart.models.factory import backbone, build_encoder, resolve_model_config
from smart.torch_files import read_torch_file

FORMAT = "smart-encoder/1"
LEGACY_SA_PLACEMENT = "branch"
KEYS = ("format", "arch", "model_config", "backbone", "semantic_attention", "mask_token", "method", "step")


def _plain(value: Any, where: str) -> Any:
    """Tuples → lists, and refuse anything ``weights_only`` loading could not read back."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where} holds a {type(value).__name__}; encoder files take plain types only")


def _cpu(state: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


def export_encoder(
    encoder: nn.Module, path: str | os.PathLike, *, model_config: Mapping[str, Any], method: str, step: int
) -> Path:
    """Write ``encoder`` (a :class:`SwinSMART` or :class:`ViT3D`) to ``path``; returns the path.

    ``model_config`` must rebuild the same architecture with :func:`smart.models.factory.build_encoder`; the state is checked
    against it on load (strict). ``method`` (e.g. ``"smart"``) and ``step`` record where the weights come from.
    """
    if not hasattr(encoder, "export_state"):
        raise ValueError(f"cannot export a {type(encoder).__name__}: expected a SwinSMART or ViT3D encoder")
    cfg = _plain(resolve_model_config(model_config), "model_config")
    if not isinstance(encoder, backbone(cfg["arch"]).module):
        raise ValueError(f"model_config arch={cfg['arch']!r} but the encoder is a {type(encoder).__name__}")
    state = encoder.export_state()
    payload = {
        "format": FORMAT,
        "arch": cfg["arch"],
        "model_config": cfg,
        "backbone": _cpu(state["backbone"]),
        "semantic_attention": _cpu(state["semantic_attention"]),
        "mask_token": state["mask_token"].detach().cpu().clone(),
        "method": str(method),
        "step": int(step),
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the encoder stored at ``path``; returns ``(encoder, meta)`` with ``meta`` = format, arch,
    model_config, method, step. Raises ``FileNotFoundError`` / ``ValueError`` naming the file on bad input."""
    path = Path(path)
    payload = read_torch_file(path, "encoder file", map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a SMART encoder file (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in KEYS if k not in payload]
    if missing:
        raise ValueError(f"{path}: encoder file lacks keys {missing}")
    model_config = dict(payload["model_config"])
    # Files written before ``sa_placement`` existed hold side-branch SA weights (the only placement then).
    model_config.setdefault("sa_placement", LEGACY_SA_PLACEMENT)
    encoder = build_encoder(model_config)
    try:
        encoder.load_export_state(payload)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: weights do not match its model_config: {err}") from err
    encoder.to(map_location)
    meta = {k: payload[k] for k in ("format", "arch", "method", "step")}
    meta["model_config"] = model_config
    return encoder, meta
