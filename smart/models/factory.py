"""The encoder factory: ``build_encoder(model_cfg)`` turns the ``model.*`` config section into an encoder.

Keys (docs/ARCHITECTURE.md, "Pretraining config keys"; missing keys take the paper defaults, Sec. IV-C):
``arch`` (a :data:`BACKBONES` name: swin|vit), ``in_chans``, ``embed_dim``, ``depths``, ``num_heads``, ``window_size``,
``patch_size``, ``drop_path_rate``, ``sa_stage`` (1-4 or None), ``sa_depth``, ``sa_heads``, ``sa_placement``
(inline|branch; None = inline), ``sa_layer_scale`` (initial SA LayerScale, 0.1), ``use_checkpoint``, ``use_v2``,
``vit_dim``, ``vit_depth``, ``vit_heads``, ``vit_patch``, ``img_size`` (ViT position-embedding grid; for Swin it is
only checked for divisibility).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from smart.models.swin import SwinSMART
from smart.models.vit import ViT3D
from smart.registry import look_up

# The one table of model defaults: the paper's SMART model (Sec. IV-C). ``smart.config.DEFAULTS["model"]`` is this
# table minus the keys the pretraining config does not expose (``in_chans``, ``use_v2``, ``img_size``).
DEFAULT_MODEL_CONFIG: dict[str, Any] = {
    "arch": "swin",
    "embed_dim": 48,
    "depths": [2, 2, 8, 2],
    "num_heads": [4, 4, 8, 16],
    "window_size": 4,
    "patch_size": 2,
    "drop_path_rate": 0.1,
    "sa_stage": 3,
    "sa_depth": 2,
    "sa_heads": 8,
    "sa_layer_scale": 0.1,  # initial LayerScale of the SA blocks (CaiT: 0.1 for shallow stacks)
    "sa_placement": "inline",  # docs/ARCHITECTURE.md "SA placement"; smart.config keeps null until an SA block exists
    "vit_dim": 768,  # Sec. IV-C: ViT with 12 blocks, width 768, 8 heads
    "vit_depth": 12,
    "vit_heads": 8,
    "vit_patch": 16,
    # Activation checkpointing (MONAI's flag): recompute Swin blocks in backward to fit 128^3 crops with larger
    # batches per GPU, at ~30 % more compute.
    "use_checkpoint": False,
    "in_chans": 1,
    "use_v2": False,
    "img_size": 128,
}


def _build_swin(cfg: Mapping[str, Any]) -> nn.Module:
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
    return encoder


def _build_vit(cfg: Mapping[str, Any]) -> nn.Module:
    return ViT3D(
        in_chans=int(cfg["in_chans"]),
        img_size=cfg["img_size"],
        patch_size=int(cfg["vit_patch"]),
        dim=int(cfg["vit_dim"]),
        depth=int(cfg["vit_depth"]),
        num_heads=int(cfg["vit_heads"]),
        drop_path_rate=float(cfg["drop_path_rate"]),
    )


@dataclass(frozen=True)
class Backbone:
    """One entry of :data:`BACKBONES`: ``module`` is the encoder class, ``build(resolved model config) -> encoder``;
    ``label`` names it in the tables; ``cls_token``: it has a [CLS] without the SA block (the ViT); ``sa_block``: it
    can carry the semantic-attention block (``model.sa_stage`` / ``sa_placement`` apply: the Swin), so a Swin has a
    [CLS] only with ``sa_stage`` set; ``patch_key``: the ``model.*`` key of its patch edge in voxels (what the noisy
    teacher's drop unit must be a multiple of); ``patch_merging``: its stages end in a patch merging, so AMPD can read
    the tokens before or after it (``loss.ampd_tokens``, the Swin; a ViT has one token grid). Config checks ask these
    properties, never the backbone's name."""

    module: type[nn.Module]
    build: Callable[[Mapping[str, Any]], nn.Module]
    label: str
    cls_token: bool
    sa_block: bool
    patch_key: str
    patch_merging: bool


BACKBONES: dict[str, Backbone] = {
    "swin": Backbone(SwinSMART, _build_swin, "Swin", cls_token=False, sa_block=True, patch_key="patch_size",
                     patch_merging=True),
    "vit": Backbone(ViT3D, _build_vit, "ViT", cls_token=True, sa_block=False, patch_key="vit_patch",
                    patch_merging=False),
}


def backbone(arch: str) -> Backbone:
    """The registry entry of ``model.arch`` ``arch``; ``ValueError`` (MONAI ``look_up_option``) if unknown."""
    return look_up("model.arch", arch, BACKBONES)


def has_sa(model_cfg: Mapping[str, Any]) -> bool:
    """Whether the encoder of this (resolved) model config has a semantic-attention block: its backbone can carry one
    (:attr:`Backbone.sa_block`) and ``sa_stage`` places it."""
    return backbone(model_cfg["arch"]).sa_block and model_cfg["sa_stage"] is not None


def has_cls(model_cfg: Mapping[str, Any]) -> bool:
    """Whether the encoder of this (resolved) model config yields a [CLS] token and an attention map."""
    return backbone(model_cfg["arch"]).cls_token or has_sa(model_cfg)


def resolve_model_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in; unknown keys and unknown ``arch`` raise ``ValueError`` (a typo must not pass silently)."""
    unknown = sorted(set(model_cfg) - set(DEFAULT_MODEL_CONFIG))
    if unknown:
        raise ValueError(f"unknown model config keys {unknown}; known: {sorted(DEFAULT_MODEL_CONFIG)}")
    cfg = {**DEFAULT_MODEL_CONFIG, **model_cfg}
    backbone(cfg["arch"])
    return cfg


def build_encoder(model_cfg: Mapping[str, Any]) -> nn.Module:
    """Build the encoder of ``model_cfg["arch"]`` (:data:`BACKBONES`: :class:`SwinSMART` or :class:`ViT3D`) from a
    ``model.*`` config dict (see module docstring).

    The resolved config is kept as ``encoder.model_config`` (what an encoder file records).
    """
    cfg = resolve_model_config(model_cfg)
    encoder = backbone(cfg["arch"]).build(cfg)
    encoder.model_config = cfg
    return encoder


__all__ = ["BACKBONES", "DEFAULT_MODEL_CONFIG", "Backbone", "backbone", "build_encoder", "has_cls", "has_sa",
           "resolve_model_config"]
