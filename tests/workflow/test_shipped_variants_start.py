"""Every pretrained variant of every shipped config (config/*.yaml) starts: one real pretraining step at CPU size.

The variant's pretraining config is resolved through the package exactly as the workflow's check before any job
resolves it (smart.workflow.resolve.resolve_variant: the config's preset, its ``pretrain.config_yaml``, the method,
``pretrain.set`` and the variant's ``set``). Only SIZE keys are then overridden (:data:`CPU_SIZE`), so a variant
whose combination of method switches cannot run (``smart_no_sa`` with AITD still on needed a [CLS] token the encoder
had not) still fails here: the method switches (losses, masking, noisy teacher, SA stage/placement, architecture)
are what decide whether the variant can start, and they are kept as resolved. Scratch variants pretrain nothing
(their run is ``smart finetune --encoder none``), so they are not part of this test.

Identical configs after shrinking (the same variant in config.yaml and rehearsal.yaml, an ablation equal to its
method) run once; a failure names every config file and variant that share the config.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from plan_configs import SHIPPED, shipped
from smart.config import PRESETS, load_config
from smart.overlay import flatten
from smart.workflow.resolve import resolve_variant
from smart.workflow.variants import pretrained_variants
from train_helpers import CROP, make_manifest

TINY = PRESETS["tiny"]
LOSSES = ("amip", "ampd", "aitd", "gitd")  # the four SMART losses (Sec. III), weights loss.<name>
# Widths, depths and head sizes of the tiny preset (a narrow network, ~0.3 s per CPU step); the attention-head
# counts come with the widths (embed_dim must divide by them). drop_path_rate is a regulariser, not a size: kept.
MODEL_SIZE = ("embed_dim", "depths", "num_heads", "sa_heads", "sa_depth", "vit_dim", "vit_depth", "vit_heads",
              "vit_patch")
# Batch 2 (the smallest a batch statistic allows), no loader workers, the tiny projection heads; the paper's 8192
# prototypes and 128^3 crops do not fit a CPU test. Steps: one, through pretrain(max_steps=1) (the workflow's own
# cap, `pretrain.max_steps`), so an epoch-based schedule (paper preset) still resolves from the data as it would.
CPU_SIZE = {**{f"model.{k}": TINY["model"][k] for k in MODEL_SIZE},
            "data.batch_size": 2, "data.num_workers": 0,
            **{f"loss.{k}": TINY["loss"][k] for k in ("out_dim", "head_hidden_dim", "head_bottleneck_dim")}}


def crop_edge(cfg: dict) -> int:
    """32^3 (the tiny preset's crop: the smallest the 4 Swin merges allow, a 2^3 mask grid at SA stage 3), unless
    the variant's geometry needs more: an SA block at stage 4 sees a 1^3 grid at 32^3, where the step runs but masks
    nothing (measured: mask_ratio 0, AMIP and AMPD 0), so the method would not be exercised; 64^3 gives it 2^3."""
    if cfg["model"]["arch"] != "vit" and cfg["model"].get("sa_stage") == 4:
        return 64
    return CROP


def shrunk(cfg: dict, tmp: Path) -> dict:
    """``cfg`` re-resolved by ``smart.config.load_config`` with only the size keys replaced (so every cross-key
    check of the package runs again on the shrunk config)."""
    resolved = tmp / "resolved.json"
    resolved.write_text(json.dumps({k: v for k, v in cfg.items() if k != "method"}))
    sizes = {**CPU_SIZE, "data.crop_size": [crop_edge(cfg)] * 3}
    small = load_config(cfg["method"], None, resolved, sizes)
    changed = {k for k, v in flatten(small).items() if flatten(cfg)[k] != v}
    assert changed <= set(sizes), f"shrinking changed more than sizes: {sorted(changed - set(sizes))}"
    return small


def unique_configs(tmp: Path) -> dict[str, tuple[dict, list[str]]]:
    """``{json of the shrunk config: (config, ["config/<file>:<variant>", ...])}`` over every shipped config."""
    out: dict[str, tuple[dict, list[str]]] = {}
    for path in SHIPPED:
        config = shipped(path.name)
        for variant in pretrained_variants(config):
            where = f"config/{path.name}:{variant}"
            try:
                cfg = shrunk(resolve_variant(config, variant), tmp)
            except ValueError as err:
                pytest.fail(f"{where} does not resolve: {err}")
            key = json.dumps(cfg, sort_keys=True)
            out.setdefault(key, (cfg, []))[1].append(where)
    return out


def test_every_shipped_pretrained_variant_runs_one_step(tmp_path):
    from smart.train.pretrain import pretrain

    manifest = make_manifest(tmp_path / "cts", n=2)
    configs = unique_configs(tmp_path)
    assert len(configs) > 1
    started = 0
    for i, (cfg, where) in enumerate(configs.values()):
        try:
            result = pretrain(cfg, manifest, tmp_path / f"run{i}", max_steps=1)
        except Exception as err:  # noqa: BLE001 -- any failure to start is this test's finding, named by variant
            pytest.fail(f"{', '.join(where)} cannot start (crop {cfg['data']['crop_size']}): "
                        f"{type(err).__name__}: {err}")
        assert result["step"] == 1, where
        # the step ran the variant's own losses and masked its crops: every loss with a weight > 0 logged a
        # finite positive value, and no other
        weights = {name: w for name, w in cfg["loss"].items() if name in LOSSES}
        logged = {k.split("/", 1)[1]: v for k, v in result["last"].items()
                  if k.startswith("loss/") and k != "loss/total"}
        assert sorted(logged) == sorted(n for n, w in weights.items() if w > 0), where
        assert all(math.isfinite(v) and v > 0 for v in logged.values()), (where, logged)
        assert result["last"]["mask_ratio"] > 0, where
        started += len(where)
    assert started == sum(len(pretrained_variants(shipped(p.name))) for p in SHIPPED)
