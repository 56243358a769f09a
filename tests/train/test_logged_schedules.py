"""The schedules a pretraining run logs (metrics.jsonl) are the ones it applied, checked against the paper's formulas
written out here independently of smart.ssl.schedules: EMA momentum 0.996 -> 1 by a half cosine over the run
(Sec. III-D), learning rate warm-up then cosine to min_lr (Sec. IV-C), weight decay cosine 0.04 -> 0.4 (DINO)."""

from __future__ import annotations

import math

import pytest

from smart.config import load_config
from smart.run_logging import read_metrics
from smart.train.pretrain import pretrain

from train_helpers import make_manifest, tiny_overrides

STEPS = 6


def _half_cosine(start: float, end: float, t: float) -> float:
    return end + (start - end) * (1.0 + math.cos(math.pi * t)) / 2.0


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("sched")
    cfg = load_config("smart", "tiny", None, tiny_overrides(**{"train.steps": STEPS, "optim.warmup_steps": 2,
                                                               "ema.momentum_start": 0.9, "train.checkpoint_every": 6}))
    pretrain(cfg, make_manifest(root / "ct"), root / "run")
    return cfg, read_metrics(root / "run" / "metrics.jsonl")


def test_logged_momentum_follows_the_cosine_schedule(records):
    cfg, rows = records
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    # record `s` reports the update after optimiser step s, taken at global step index s - 1
    expected = [_half_cosine(0.9, 1.0, (s - 1) / STEPS) for s in range(1, STEPS + 1)]
    assert [r["momentum"] for r in rows] == pytest.approx(expected, rel=1e-6, abs=0)  # logged as float32 or float64
    assert rows[-1]["momentum"] < 1.0  # 1 is reached at step STEPS, after the run


def test_logged_lr_and_weight_decay_follow_their_schedules(records):
    cfg, rows = records
    base, low, warm = cfg["optim"]["lr"], cfg["optim"]["min_lr"], 2
    lr = [base * k / warm if k < warm else _half_cosine(base, low, (k - warm) / (STEPS - warm)) for k in range(STEPS)]
    assert [r["lr"] for r in rows] == pytest.approx(lr, rel=1e-6, abs=0)
    wd = [_half_cosine(0.04, 0.4, k / STEPS) for k in range(STEPS)]
    assert [r["weight_decay"] for r in rows] == pytest.approx(wd, rel=1e-6, abs=0)
