"""Defaults written once (issue 21): methods and presets are overlays that list only what differs from
``smart.config.DEFAULTS``; one layering loop (``smart.overlay.apply_layers``) resolves every step's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart import config
from smart.config import DEFAULTS, PRESETS, flatten, load_config
from smart.ssl import methods
from smart.ssl.methods import ABLATIONS, METHOD_KEYS, METHODS, method_names, resolve_overrides

from resolved_configs import PRESETS_TRIED, resolved_flat

SNAPSHOT = json.loads((Path(__file__).parent / "resolved_main.json").read_text())


def test_every_method_and_preset_resolves_as_the_snapshot():
    # The snapshot was written by the code before methods became overlays (tests/resolved_configs.py):
    # every method/ablation x preset must resolve to the same values, key by key. Keys added since are not in it.
    resolved = resolved_flat()
    assert set(resolved) == set(SNAPSHOT["diffs"]) and len(resolved) == len(method_names()) * len(PRESETS_TRIED)
    for name, flat in resolved.items():
        expected = {**SNAPSHOT["base"], **SNAPSHOT["diffs"][name]}
        assert {k: flat[k] for k in expected} == expected, name


def test_one_default_edited_reaches_every_method_that_does_not_set_it(monkeypatch):
    monkeypatch.setitem(DEFAULTS["masking"], "ratio", 0.55)
    setters = [name for name in method_names() if "ratio" in resolve_overrides(name).get("masking", {})]
    assert setters == []  # r is written once: smart.config.DEFAULTS
    for name in method_names():
        for preset in PRESETS_TRIED:
            assert load_config(name, preset)["masking"]["ratio"] == 0.55, (name, preset)


def test_one_preset_value_edited_reaches_every_method(monkeypatch):
    monkeypatch.setitem(PRESETS["small"]["optim"], "lr", 3e-4)
    monkeypatch.setitem(DEFAULTS["noisy_teacher"], "unit", 32)
    for name in method_names():
        cfg = load_config(name, "small")
        assert cfg["optim"]["lr"] == 3e-4 and cfg["noisy_teacher"]["unit"] == 32, name


def test_overlays_list_only_what_differs_from_the_defaults():
    defaults = flatten(DEFAULTS)
    for name, overlay in {**METHODS, **{k: v[1] for k, v in ABLATIONS.items()}}.items():
        for key, value in flatten(overlay).items():
            assert key in METHOD_KEYS, (name, key)
            if name in METHODS:  # an ablation may restate its base's value (pdr_0.7 is a point of the sweep)
                assert value != defaults[key], f"method {name!r} restates the default {key}={value!r}"
    for name, preset in PRESETS.items():
        for key in flatten(preset):
            assert key not in METHOD_KEYS, (name, key)


def test_a_preset_may_not_set_a_method_switch(monkeypatch):
    # Precedence: defaults <- preset <- method. A preset sets sizes/schedules; were it to set a method's switch,
    # SMART (whose switches are the defaults, so its overlay is empty) would silently take it.
    monkeypatch.setitem(PRESETS["tiny"], "masking", {"strategy": "random"})
    with pytest.raises(ValueError, match=r"^preset 'tiny' sets masking\.strategy: a method's switches belong"):
        load_config("smart", "tiny")


def test_method_beats_preset_and_later_layers_beat_the_method(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("masking: {strategy: blockwise}\noptim: {lr: 1.0e-3}\n")
    cfg = load_config("smit", "tiny", cfg_file, ["optim.lr=2e-3"])
    assert cfg["masking"]["strategy"] == "blockwise"   # file beats method
    assert cfg["optim"]["lr"] == 2e-3                  # --set beats file beats preset
    assert load_config("smit", "tiny")["masking"]["strategy"] == "random"  # method beats defaults


def test_resolving_never_mutates_the_tables():
    before = json.dumps([DEFAULTS, PRESETS, METHODS, {k: v[1] for k, v in ABLATIONS.items()}], sort_keys=True)
    load_config("smart_no_sa", "small", None, {"model": {"sa_stage": None}, "train.steps": 3})
    over = resolve_overrides("smart_no_nt")
    over["noisy_teacher"]["drop_ratio"] = 0.5
    assert json.dumps([DEFAULTS, PRESETS, METHODS, {k: v[1] for k, v in ABLATIONS.items()}], sort_keys=True) == before


def test_merge_keeps_its_contract():
    cfg = config.merge(load_config("smart"), {"loss.aitd": 0, "train": {"steps": 7}}, "test")
    assert cfg["loss"]["aitd"] == 0.0 and isinstance(cfg["loss"]["aitd"], float) and cfg["train"]["steps"] == 7
    assert methods.METHODS is METHODS


# ---------------------------------------------------------------------------------------------- one loop, one error
@pytest.mark.parametrize("load, what, item, message", [
    ("pretrain", "", "train.steps=abc", "config key 'train.steps': expected an integer, got 'abc' (from --set)"),
    ("pretrain", "", "masking.hints=all",
     "config key 'masking.hints': expected one of attmask, top, got 'all' (from --set)"),
    ("downstream", "downstream", "selection=best",
     "downstream config key 'selection': expected one of best_val_auc, last, got 'best' (from --set)"),
    ("downstream", "downstream", "augment=3", "downstream config key 'augment': expected true or false, got 3 (from --set)"),
    ("downstream", "downstream", "epochs=0", "downstream config key 'epochs': expected an integer >= 1, got 0"),
    ("segmentation", "segmentation", "crop_size=[64,64]",
     "segmentation config key 'crop_size': expected a list of 3 integers, got [64, 64] (from --set)"),
    ("segmentation", "segmentation", "overlap=1", "segmentation config key 'overlap': expected a number in [0, 1), got 1.0"),
])
def test_every_step_reports_a_bad_value_in_one_format(load, what, item, message):
    with pytest.raises(ValueError) as err:
        _loader(load)([item])
    assert str(err.value) == message


@pytest.mark.parametrize("load, item, message", [
    ("pretrain", "loss.aitdd=0", "unknown config key 'loss.aitdd' in --set (did you mean 'loss.aitd'?); allowed: "),
    ("downstream", "epoch=3", "unknown downstream config key 'epoch' in --set (did you mean 'epochs'?); allowed: "),
    ("segmentation", "stepz=3", "unknown segmentation config key 'stepz' in --set (did you mean 'steps'?); allowed: "),
    ("segmentation", "lr.x=3", "unknown segmentation config key 'lr.x' in --set (did you mean 'lr'?); allowed: "),
])
def test_every_step_reports_an_unknown_key_in_one_format(load, item, message):
    with pytest.raises(ValueError) as err:
        _loader(load)([item])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def _loader(step):
    from smart.downstream.protocol import load_downstream_config
    from smart.downstream.segmentation import load_segmentation_config

    return {"pretrain": lambda items: load_config("smart", "tiny", None, items),
            "downstream": lambda items: load_downstream_config(None, items),
            "segmentation": lambda items: load_segmentation_config(None, items)}[step]


def test_downstream_and_segmentation_layer_file_then_set(tmp_path):
    from smart.downstream.protocol import DEFAULTS as FT, load_downstream_config
    from smart.downstream.segmentation import load_segmentation_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("finetune: {lr: 1.0e-3, epochs: 5, scratch_model: {embed_dim: 12}}\n"
                        "segmentation: {steps: 9, model: {embed_dim: 24}}\n")
    ft = load_downstream_config(cfg_file, ["epochs=6", "scratch_model.depths=[1,1,1,1]", "probe_C=[1, 10]"])
    assert (ft["lr"], ft["epochs"], ft["scratch_model"], ft["probe_C"]) == (1e-3, 6, {"embed_dim": 12, "depths": [1, 1, 1, 1]},
                                                                            [1.0, 10.0])
    assert FT["scratch_model"] == {}  # the defaults' own dict is never written into
    seg = load_segmentation_config(cfg_file, ["lr=2e-4"])
    assert (seg["steps"], seg["model"], seg["lr"]) == (9, {"embed_dim": 24}, 2e-4)
    # an open mapping may be reset (null or {}) and then extended key by key
    assert load_downstream_config(cfg_file, ["scratch_model=null"])["scratch_model"] is None
    assert load_downstream_config(cfg_file, ["scratch_model={}", "scratch_model.embed_dim=6"])["scratch_model"] == {
        "embed_dim": 6}


def test_optim_lr_is_one_name_in_every_step(tmp_path):
    # Pretraining's `optim.lr` / `optim.weight_decay` are accepted by fine-tuning and segmentation too (the flat
    # `lr` stays valid there), from a file or --set; a bad value names the key as written.
    from smart.downstream.protocol import load_downstream_config
    from smart.downstream.segmentation import load_segmentation_config

    ft = load_downstream_config(None, ["optim.lr=3e-4", "optim.weight_decay=0.01"])
    assert (ft["lr"], ft["weight_decay"]) == (3e-4, 0.01) and "optim" not in ft
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("segmentation: {optim: {lr: 5.0e-5}}\n")
    assert load_segmentation_config(cfg_file)["lr"] == 5e-5
    assert load_config("smart", "tiny", None, ["optim.lr=3e-4"])["optim"]["lr"] == 3e-4
    with pytest.raises(ValueError, match=r"^downstream config key 'optim.lr': expected a number, got 'fast'"):
        load_downstream_config(None, ["optim.lr=fast"])
