"""The encoder factory: ``build_encoder(model_cfg)`` turns the ``model.*`` config section into an encoder.

Keys (docs/ARCHITECTURE.md, "Pretraining config keys"; missing keys take the paper defaults, Sec. IV-C):
``arch`` (swin|vit), ``in_chans``, ``embed_dim``, ``depths``, ``num_heads``, ``window_size``, ``patch_size``,
``drop_path_rate``, ``sa_stage`` (1-4 or None), ``sa_depth``, ``sa_heads``, ``sa_placement`` (inline|branch; None
= inline), ``sa_layer_scale`` (initial SA LayerScale, 0.1), ``use_checkpoint``, ``use_v2``,
``vit_dim``, ``vit_depth``, ``vit_heads``, ``vit_patch``, ``img_size`` (ViT position-embedding grid; for Swin it is
only checked for divisibility).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from smart.models.swin import SwinSMART
from smart.models.vit import ViT3D

DEFAULT_MODEL_CONFIG: dict[str, Any] = {
    "arch": "swin",
    "in_chans": 1,
    "embed_dim": 48,
    "depths": [2, 2, 8, 2],
    "num_heads": [4, 4, 8, 16],
    "window_size": 4,
    "patch_size": 2,
    "drop_path_rate": 0.0,
    "sa_stage": 3,
    "sa_depth": 2,
    "sa_heads": 8,
    "sa_layer_scale": 0.1,
    "sa_placement": "inline",
    "use_checkpoint": False,
    "use_v2": False,
    "vit_dim": 768,
    "vit_depth": 12,
    "vit_heads": 8,
    "vit_patch": 16,
    "img_size": 128,
}
ARCHS = ("swin", "vit")


def resolve_model_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in; unknown keys and unknown ``arch`` raise ``ValueError`` (a typo must not pass silently)."""
    unknown = sorted(set(model_cfg) - set(DEFAULT_MODEL_CONFIG))
    if unknown:
        raise ValueError(f"unknown model config keys {unknown}; known: {sorted(DEFAULT_MODEL_CONFIG)}")
    cfg = {**DEFAULT_MODEL_CONFIG, **model_cfg}
    if cfg["arch"] not in ARCHS:
        raise ValueError(f"model.arch must be one of {ARCHS}, got {cfg['arch']!r}")
    return cfg


def build_encoder(model_cfg: Mapping[str, Any]) -> nn.Module:
    """Build a :class:`SwinSMART` or :class:`ViT3D` from a ``model.*`` config dict (see module docstring).

    The resolved config is kept as ``encoder.model_config`` (what an encoder file records).
    """
    cfg = resolve_model_config(model_cfg)
    encoder: nn.Module
    if cfg["arch"] == "swin":
        encoder = SwinSMART(
            in_chans=int(cfg["in_chans"]),
            embed_dim=int(cfg["embed_dim"]),
            depths=cfg["depths"],
            num_heads=cfg["num_heads"],
            window_size=cfg["window_size"],
            patch_size=cfg["patch_size"],
            drop_path_rate=float(cfg["drop_path_rate"]),
            sa_stage=None if cfg["sa_stage"] is None else int(cfg["sa_stage"]),
            sa_depth=int(cfg["sa_depth"]),
            sa_heads=int(cfg["sa_heads"]),
            sa_layer_scale=float(cfg["sa_layer_scale"]),
            sa_placement="inline" if cfg["sa_placement"] is None else str(cfg["sa_placement"]),
            use_checkpoint=bool(cfg["use_checkpoint"]),
            use_v2=bool(cfg["use_v2"]),
        )
        img = cfg["img_size"]
        if img is not None:
            encoder.check_input_size((img,) * 3 if isinstance(img, int) else img)
    else:
        encoder = ViT3D(
            in_chans=int(cfg["in_chans"]),
            img_size=cfg["img_size"],
            patch_size=int(cfg["vit_patch"]),
            dim=int(cfg["vit_dim"]),
            depth=int(cfg["vit_depth"]),
            num_heads=int(cfg["vit_heads"]),
            drop_path_rate=float(cfg["drop_path_rate"]),
        )
    encoder.model_config = cfg
    return encoder


__all__ = ["ARCHS", "DEFAULT_MODEL_CONFIG", "build_encoder", "resolve_model_config"]
