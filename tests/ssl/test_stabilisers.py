"""smart.ssl.stabilisers: every DINO/iBOT/SMIT stabiliser as a pure function of the global step, against formulas
written out here."""

from __future__ import annotations

import math

import pytest

from smart.config import load_config
from smart.ssl.sections import pretrain_sections
from smart.ssl.stabilisers import epochs_to_steps, resolve_stabilisers, steps_per_epoch


def _cfg(**sets):
    return load_config("smart", "tiny", None, [f"{k}={v}" for k, v in sets.items()])


def _stab(cfg, n_samples, world_size=1):
    """The stabilisers of a resolved config: the sections they take (smart.ssl.sections) and data.batch_size."""
    s = pretrain_sections(cfg)
    return resolve_stabilisers(s.optim, s.loss, s.train, s.data.batch_size, n_samples, world_size)


def test_epoch_is_one_pass_over_the_cts_at_the_global_batch():
    assert steps_per_epoch(8, 2) == 4 and steps_per_epoch(9, 2) == 5 and steps_per_epoch(9, 4, override=7) == 7
    assert epochs_to_steps(1.0, 4) == 4 and epochs_to_steps(0.5, 5) == 2 and epochs_to_steps(0, 9) == 0
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1"):
        steps_per_epoch(8, 2, override=0)
    with pytest.raises(ValueError, match="an epoch needs >= 1 sample"):
        steps_per_epoch(0, 2)


def test_lr_is_scaled_by_the_global_batch_and_warms_up_in_epochs():
    cfg = _cfg(**{"optim.lr": 5e-4, "optim.lr_base_batch": 256, "optim.warmup_epochs": 2.0, "optim.min_lr": 1e-6,
                  "train.steps": 40, "data.batch_size": 2})
    stab = _stab(cfg, n_samples=8, world_size=2)  # global batch 4, epoch = 2 steps
    peak = 5e-4 * 4 / 256
    assert stab.lr == pytest.approx(peak) and stab.steps_per_epoch == 2 and stab.warmup_steps == 4
    assert [stab.lr_at(s) for s in range(5)] == pytest.approx([0, peak / 4, peak / 2, 3 * peak / 4, peak])
    t = (22 - 4) / (40 - 4)
    assert stab.lr_at(22) == pytest.approx(1e-6 + (peak - 1e-6) * 0.5 * (1 + math.cos(math.pi * t)))
    assert stab.lr_at(40) == pytest.approx(1e-6) and stab.lr_at(400) == pytest.approx(1e-6)
    unscaled = _stab(_cfg(**{"optim.lr": 5e-4}), n_samples=8, world_size=2)
    assert unscaled.lr == 5e-4  # lr_base_batch null: lr used as given


def test_weight_decay_follows_dino_cosine_from_0_04_to_0_4():
    stab = _stab(_cfg(**{"train.steps": 100}), n_samples=8)
    assert (stab.weight_decay, stab.weight_decay_end) == (0.04, 0.4)
    for step in (0, 10, 50, 73, 100, 150):
        expected = 0.4 + (0.04 - 0.4) * 0.5 * (1 + math.cos(math.pi * min(step, 100) / 100))
        assert stab.weight_decay_at(step) == pytest.approx(expected)
    const = _stab(_cfg(**{"optim.weight_decay_end": "null", "optim.weight_decay": 0.05}), n_samples=8)
    assert {const.weight_decay_at(s) for s in (0, 7, 10_000)} == {0.05}


def test_last_layer_is_frozen_for_the_first_epochs():
    stab = _stab(_cfg(**{"optim.freeze_last_layer_epochs": 1.5, "data.batch_size": 2}), n_samples=8)
    assert stab.freeze_last_layer_steps == 6  # 1.5 epochs of 4 steps
    assert [stab.last_layer_frozen(s) for s in range(8)] == [True] * 6 + [False] * 2
    never = _stab(_cfg(**{"optim.freeze_last_layer_epochs": 0}), n_samples=8)
    assert not never.last_layer_frozen(0)


def test_teacher_temperature_per_loss_with_warmup_in_epochs():
    cfg = _cfg(**{"loss.warmup_teacher_temp": 0.04, "loss.teacher_temp": 0.07, "loss.warmup_teacher_temp_epochs": 3,
                  "loss.teacher_temp_ampd": 0.04, "loss.warmup_teacher_temp_ampd": 0.04, "data.batch_size": 2})
    stab = _stab(cfg, n_samples=4)  # epoch = 2 steps, warm-up 6 steps
    assert stab.teacher_warmup_steps == 6
    for step in range(10):
        ramp = 0.04 + (0.07 - 0.04) * min(step, 6) / 6
        assert stab.teacher_temp_at("aitd", step) == pytest.approx(ramp)
        assert stab.teacher_temp_at("gitd", step) == pytest.approx(ramp)
        assert stab.teacher_temp_at("ampd", step) == pytest.approx(0.04)  # SMIT: the patch teacher held at 0.04
    steps_cfg = _cfg(**{"loss.warmup_teacher_temp_steps": 4})
    s2 = _stab(steps_cfg, n_samples=4)
    assert s2.teacher_warmup_steps == 4 and s2.teacher_temp_at("ampd", 2) == pytest.approx(0.04 + 0.03 * 2 / 4)
    with pytest.raises(ValueError, match="no teacher temperature for loss 'amip'"):
        stab.teacher_temp_at("amip", 0)
