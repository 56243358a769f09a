"""Tiny model configs for the model tests (CPU, 2 cores: inputs stay at 32³ unless a test needs more)."""

from __future__ import annotations

import pytest
import torch

from smart.models.factory import build_encoder

# embed 12 → stage widths 12, 24, 48, 96, 192; 4 SA heads so that every sa_stage 1..4 width is divisible.
# No drop path (the paper default is 0.1), so a train-mode forward is deterministic and comparable with eval mode.
TINY_SWIN = {
    "arch": "swin", "embed_dim": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "window_size": 4,
    "patch_size": 2, "sa_stage": 3, "sa_depth": 2, "sa_heads": 4, "img_size": 32, "drop_path_rate": 0.0,
}
TINY_VIT = {"arch": "vit", "vit_dim": 24, "vit_depth": 2, "vit_heads": 4, "vit_patch": 8, "img_size": 32,
            "drop_path_rate": 0.0}
PAPER_SWIN = {
    "arch": "swin", "embed_dim": 48, "depths": [2, 2, 8, 2], "num_heads": [4, 4, 8, 16], "window_size": 4,
    "patch_size": 2, "sa_stage": 3, "sa_depth": 2, "sa_heads": 8, "img_size": 128, "drop_path_rate": 0.0,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_swin():
    def _make(**overrides):
        return build_encoder({**TINY_SWIN, **overrides})

    return _make


@pytest.fixture
def tiny_vit():
    def _make(**overrides):
        return build_encoder({**TINY_VIT, **overrides})

    return _make


@pytest.fixture(scope="session")
def paper_swin():
    """The paper's Swin (10.6 M backbone parameters) in eval mode, built once: building it costs seconds on CPU."""
    torch.manual_seed(0)
    return build_encoder(PAPER_SWIN).eval()
