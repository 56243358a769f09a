"""build_encoder: the paper defaults and the validation of the model config (smart.models.factory)."""

from __future__ import annotations

import dataclasses

import pytest

from smart.config import DEFAULTS, load_config
from smart.models.factory import BACKBONES, DEFAULT_MODEL_CONFIG, backbone, has_cls, has_sa, resolve_model_config
from smart.models.swin import SwinSMART
from smart.models.vit import ViT3D


def test_one_table_of_model_defaults():
    # the pretraining config's model section is this table (drop path 0.1, what every resolved config used), except
    # sa_placement: null in the config until an SA block exists (then inline, the factory's default)
    assert DEFAULTS["model"] == {k: v for k, v in DEFAULT_MODEL_CONFIG.items() if k in DEFAULTS["model"]} | {
        "sa_placement": None}
    assert DEFAULT_MODEL_CONFIG["sa_placement"] == load_config("smart")["model"]["sa_placement"] == "inline"
    assert set(DEFAULT_MODEL_CONFIG) - set(DEFAULTS["model"]) == {"in_chans", "use_v2", "img_size"}
    assert resolve_model_config({})["drop_path_rate"] == load_config("smart")["model"]["drop_path_rate"] == 0.1


def test_backbone_registry():
    assert {name: (b.module, b.label, b.cls_token, b.sa_block, b.patch_key) for name, b in BACKBONES.items()} == {
        "swin": (SwinSMART, "Swin", False, True, "patch_size"), "vit": (ViT3D, "ViT", True, False, "vit_patch")}
    assert backbone("vit") is BACKBONES["vit"]
    assert has_cls({"arch": "vit", "sa_stage": None}) and has_cls({"arch": "swin", "sa_stage": 3})
    assert not has_cls({"arch": "swin", "sa_stage": None})
    assert has_sa({"arch": "swin", "sa_stage": 3})
    assert not has_sa({"arch": "swin", "sa_stage": None}) and not has_sa({"arch": "vit", "sa_stage": 3})


def test_config_checks_ask_the_backbone_registry_not_the_name(monkeypatch):
    # A Swin entry registered without an SA block: the config's SA checks follow the entry, not arch == "swin".
    monkeypatch.setitem(BACKBONES, "swin", dataclasses.replace(BACKBONES["swin"], sa_block=False, patch_key="vit_patch"))
    with pytest.raises(ValueError, match="'model.sa_placement'='inline' needs an SA block, but model.arch=swin has no SA"):
        load_config("smit", "tiny", overrides={"model.sa_stage": 3, "model.sa_placement": "inline"})
    assert load_config("smit", "tiny", overrides={"model.sa_stage": 3})["model"]["sa_placement"] is None
    # the noisy teacher's drop unit is checked against the patch key the entry names (tiny: vit_patch 16)
    with pytest.raises(ValueError, match="must be a positive multiple of the swin patch size 16"):
        load_config("smit", "tiny", overrides={"noisy_teacher.unit": 8})


def test_defaults_are_the_paper_config(paper_swin):
    cfg = resolve_model_config({})
    assert {k: cfg[k] for k in ("arch", "embed_dim", "depths", "num_heads", "window_size", "patch_size", "sa_stage",
                                "sa_depth", "vit_dim", "vit_depth", "vit_heads", "vit_patch")} == {
        "arch": "swin", "embed_dim": 48, "depths": [2, 2, 8, 2], "num_heads": [4, 4, 8, 16], "window_size": 4,
        "patch_size": 2, "sa_stage": 3, "sa_depth": 2, "vit_dim": 768, "vit_depth": 12, "vit_heads": 8, "vit_patch": 16}
    layers = (paper_swin.layers1, paper_swin.layers2, paper_swin.layers3, paper_swin.layers4)
    assert [len(layer[0].blocks) for layer in layers] == [2, 2, 8, 2]
    assert [layer[0].blocks[0].attn.num_heads for layer in layers] == [4, 4, 8, 16]
    assert paper_swin.sa_stage == 3 and len(paper_swin.semantic_attention.blocks) == 2
    n_backbone = sum(v.numel() for k, v in paper_swin.backbone_state_dict().items() if v.is_floating_point())
    assert 10_500_000 < n_backbone < 10_700_000  # MONAI SwinUNETR(feature_size=48).swinViT: 10.6 M parameters


@pytest.mark.parametrize(
    "override,message",
    [
        ({"arch": "resnet"}, "^model.arch: .*'resnet'.*Available options"),
        ({"sa_stage": 5}, "sa_stage must be 1..4 or None, got 5"),
        ({"sa_stage": 0}, "sa_stage must be 1..4 or None, got 0"),
        ({"depths": [2, 2, 2]}, "depths must be 4 ints"),
        ({"num_heads": [1, 1, 5, 2]}, r"num_heads\[2\]=5 does not divide the stage-3 width 48"),
        ({"sa_heads": 7}, "num_heads=7 must be positive and divide dim=96"),
        ({"img_size": 48}, r"input size \(48, 48, 48\) must be 3 positive edges divisible by \(32, 32, 32\)"),
        ({"drop_path_rate": 1.5}, "drop_path_rate must be in"),
        ({"window_size": 0}, "window_size"),
        ({"embd_dim": 12}, r"unknown model config keys \['embd_dim'\]"),
    ],
)
def test_bad_configs_raise(tiny_swin, override, message):
    with pytest.raises(ValueError, match=message):
        tiny_swin(**override)
