"""Sanity of the whole engine: a few hundred tiny-preset steps on synthetic CT make the total loss fall (slow)."""

from __future__ import annotations

import pytest

from smart.config import load_config
from smart.train.pretrain import pretrain
from smart.train.run_logging import read_metrics
from train_helpers import make_manifest

STEPS = 300
WINDOW = 30


@pytest.mark.slow
@pytest.mark.parametrize("method", ["smart", "smit"])
def test_total_loss_falls(method, tmp_path):
    manifest = make_manifest(tmp_path / "ct", n=4)
    cfg = load_config(method, "tiny", None, [f"train.steps={STEPS}", "train.log_every=1", "train.checkpoint_every=1000"])
    pretrain(cfg, manifest, tmp_path / "run")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(records) == STEPS and records[-1]["nonfinite"] == 0

    def mean(key, part):
        return sum(r[key] for r in part) / len(part)

    first, last = records[:WINDOW], records[-WINDOW:]
    for key in [k for k in records[0] if k.startswith("loss/")]:
        print(f"{method} {key}: mean of steps 1-{WINDOW} = {mean(key, first):.4f}, "
              f"steps {STEPS - WINDOW + 1}-{STEPS} = {mean(key, last):.4f}")
    assert mean("loss/total", last) < mean("loss/total", first)
    # AMIP (weight 1) carries the total; the masked voxels must be predicted much better than at the start.
    assert mean("loss/amip", last) < 0.5 * mean("loss/amip", first)
