"""Segmentation (config ``segmentation``): SwinUNETR (MONAI) fine-tuned from a variant's Swin encoder (BTCV-style
organ segmentation, paper Sec. VI-F). Which variants are Swin comes from the resolved pretraining configs
(:attr:`smart.workflow.plan.Plan.arch`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.overlay import merged
from smart.workflow.overrides import optional_arg, set_args
from smart.workflow.variants import model_overrides, variant_names

SWIN = "swin"  # the smart.models.factory.BACKBONES entry SwinUNETR's encoder is


def segmentation_variants(config: Mapping[str, Any], arch: Mapping[str, str]) -> list[str]:
    """``segmentation.variants``, or every Swin variant (pretrained and scratch, config order) when it is null;
    ``arch`` maps each variant to its resolved ``model.arch``."""
    listed = config["segmentation"]["variants"]
    return [v for v in variant_names(config) if arch[v] == SWIN] if listed is None else list(listed)


def network_overrides(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """``--set`` of ``smart segmentation``: the pretraining preset's network plus the variant's ``model.*``
    overrides (so scratch has its pretrained siblings' architecture), then ``segmentation.set``."""
    arch = dict(model_overrides(config, variant))
    if config["pretrain"]["preset"]:
        arch["model_preset"] = config["pretrain"]["preset"]
    return merged(arch, config["segmentation"]["set"])


def segmentation_words(config: Mapping[str, Any], variant: str) -> str:
    """``--config`` / ``--set`` of ``smart segmentation`` for ``variant``."""
    return " ".join(filter(None, [optional_arg("--config", config["segmentation"]["config_yaml"]),
                                  set_args(network_overrides(config, variant))]))


def check_segmentation(config: Mapping[str, Any], arch: Mapping[str, str] | None = None) -> None:
    """Listed variants exist; a csv source names its table; with ``arch`` (the resolved architectures) every
    listed variant is a Swin encoder."""
    seg = config["segmentation"]
    listed = seg["variants"] or []
    unknown = sorted(set(listed) - set(config["variants"]))
    if unknown:
        raise ValueError(f"config segmentation.variants: unknown variant(s) {unknown}; "
                         f"known: {sorted(config['variants'])}")
    if seg["source"] == "csv" and not seg["csv"]:
        raise ValueError("config segmentation.source='csv' needs segmentation.csv (case_id, image, label, split)")
    for variant in listed if arch is not None else []:
        if arch[variant] != SWIN:
            raise ValueError(f"config segmentation.variants: {variant!r} is not a Swin encoder (model.arch "
                             f"{arch[variant]!r}); SwinUNETR needs one")
