"""MONAI self-supervised Swin weights layout (``smart export --format monai-ssl``).

MONAI's BTCV/BraTS tutorials start a segmentation model from self-supervised Swin weights with::

    weights = torch.load("monai_ssl.pt", weights_only=True)
    model = SwinUNETR(**weights["swin_unetr"], out_channels=N)
    model.load_from(weights)

The file carries the ``SwinUNETR`` arguments of its encoder (``"swin_unetr"``, :func:`swin_unetr_kwargs`) beside the
weights, so the same three lines build a matching network for the demo's tiny encoder and for the paper's; MONAI's
``load_from`` reads only ``"state_dict"``.

``SwinUNETR.load_from(weights)`` (MONAI 1.6, ``monai/networks/nets/swin_unetr.py``) reads
``weights["state_dict"]["module.<key>"]`` for: ``patch_embed.proj.{weight,bias}``; per Swin block
``norm1``, ``attn.relative_position_bias_table``, ``attn.relative_position_index``, ``attn.qkv``, ``attn.proj``,
``norm2``, and the MLP under the names ``mlp.fc1`` / ``mlp.fc2`` (copied into MONAI's ``mlp.linear1`` /
``mlp.linear2``); and per stage ``downsample.reduction.weight`` / ``downsample.norm.{weight,bias}``. With
``use_v2=False`` (the paper config) that is every tensor of ``SwinUNETR.swinViT``. With ``use_v2=True`` it leaves
the residual conv blocks ``layers{1..4}c.*`` at their initialisation (:data:`LOAD_FROM_SKIPS_V2`); this file
still carries them, under the same ``module.`` prefix, for a strict ``swinViT.load_state_dict`` by hand.
The SwinUNETR decoder (``encoder1..10``, ``decoder1..5``, ``out``) is never pretrained and always starts at init.
SMART's extras (mask token, semantic-attention block) have no place in SwinUNETR and are not written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from smart.atomic import atomic_path

PREFIX = "module."
# our (MONAI SwinTransformer) MLP names -> the names of MONAI's self-supervised weights file that load_from reads
_MLP_RENAMES = ((".mlp.linear1.", ".mlp.fc1."), (".mlp.linear2.", ".mlp.fc2."))
# swinViT tensors SwinUNETR.load_from does not read (use_v2=True only): the v2 residual conv blocks of each stage
LOAD_FROM_SKIPS_V2 = tuple(f"layers{i}c." for i in range(1, 5))


def monai_ssl_key(key: str) -> str:
    """``SwinTransformer`` state key -> key of the MONAI self-supervised weights file (``module.`` + fc1/fc2 names)."""
    for ours, theirs in _MLP_RENAMES:
        key = key.replace(ours, theirs)
    return PREFIX + key


def to_monai_ssl(backbone: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"state_dict": {monai_ssl_key(k): tensor}}`` for every tensor of a Swin ``backbone`` state dict
    (``encoder.pt["backbone"]``); tensors are detached CPU copies."""
    return {"state_dict": {monai_ssl_key(k): v.detach().cpu().clone() for k, v in backbone.items()}}


def swin_unetr_kwargs(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``monai.networks.nets.SwinUNETR`` arguments whose ``swinViT`` has the encoder's exact shapes.

    ``model_config`` is an encoder file's ``model_config`` (Swin only; a ``ValueError`` otherwise). Add
    ``out_channels`` (and any training choices such as ``dropout_path_rate``). MONAI's defaults differ from the
    paper's (window 7, heads (3, 6, 12, 24), feature size 24): without these arguments ``load_from`` fails on the
    first shape mismatch. Inputs must be multiples of ``patch_size * 2**5`` voxels per edge (SwinUNETR's own check).
    """
    if model_config.get("arch", "swin") != "swin":
        raise ValueError(f"SwinUNETR takes a Swin encoder; this encoder's arch is {model_config.get('arch')!r}")
    return {
        "in_channels": int(model_config.get("in_chans", 1)),
        "feature_size": int(model_config["embed_dim"]),
        "depths": tuple(int(d) for d in model_config["depths"]),
        "num_heads": tuple(int(h) for h in model_config["num_heads"]),
        "window_size": int(model_config["window_size"]),
        "patch_size": int(model_config["patch_size"]),
        "use_v2": bool(model_config.get("use_v2", False)),
        "use_flash_attention": True,  # SDPA window attention when autograd is off (same weights, faster inference)
    }


def load_from_skipped(keys: list[str] | tuple[str, ...] | Mapping[str, Any]) -> list[str]:
    """The ``monai_ssl`` keys among ``keys`` that ``SwinUNETR.load_from`` leaves unread (the v2 conv blocks)."""
    return sorted(k for k in keys if k.removeprefix(PREFIX).startswith(LOAD_FROM_SKIPS_V2))


def write_monai_ssl(encoder_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Read ``encoder.pt`` (``smart-encoder/1``) and write its backbone in MONAI's self-supervised layout to ``out``
    (atomic), with the matching ``SwinUNETR`` arguments under ``"swin_unetr"``. Raises ``FileNotFoundError`` /
    ``ValueError`` naming the file for a missing, foreign or ViT encoder."""
    from smart.models.encoder_io import load_encoder

    encoder, meta = load_encoder(encoder_file)  # validates format and shapes before anything is written
    try:
        kwargs = swin_unetr_kwargs(meta["model_config"])
    except ValueError as err:
        raise ValueError(f"{encoder_file}: {err}") from err
    payload = {**to_monai_ssl(encoder.backbone_state_dict()), "swin_unetr": kwargs}
    with atomic_path(out, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(out)
