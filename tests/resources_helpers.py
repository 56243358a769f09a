"""Shared by tests/resources: config/paper.yaml with the schema defaults the fit check reads filled in by hand, and a
coefficients table whose every figure is written here (so expected values are computed from numbers in the tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
# 1 GiB fixed + 1 KiB per voxel in flight for every step; fine-tuning's checkpointed variant 1/4 of that.
LINE = {"fixed_bytes": float(GIB), "bytes_per_voxel": 1024.0, "optimizer_bytes": 0.0, "flops_per_voxel": 1e6}
DATA = {"steps": {"pretrain": {"bf16": LINE}, "features": {"fp32": LINE}, "attention": {"fp32": LINE},
                  "segmentation": {"fp32": LINE},
                  "finetune": {"bf16": LINE, "fp32": LINE, "bf16+checkpointing": {**LINE, "bytes_per_voxel": 256.0}}}}


def paper_config() -> dict:
    cfg = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    for res in cfg["resources"].values():
        res.setdefault("gpu", 0)
        res.setdefault("gpu_model", "")
        res.setdefault("gpu_mem_gb", None)
        res.setdefault("nodes", 1)
    return cfg
