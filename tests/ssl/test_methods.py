"""smart.ssl.methods: each method/ablation is exactly the switches the paper describes, as overrides."""

from __future__ import annotations

import pytest

from smart import config
from smart.config import load_config
from smart.ssl.methods import ABLATIONS, METHODS, method_names, resolve_overrides


def _losses(cfg):
    return {k: cfg["loss"][k] for k in ("amip", "ampd", "aitd", "gitd")}


def test_method_switches():
    smart = load_config("smart")
    assert smart["model"]["arch"] == "swin" and smart["model"]["sa_stage"] == 3
    assert smart["masking"]["strategy"] == "attention_high" and smart["noisy_teacher"]["drop_ratio"] == 0.7
    assert _losses(smart) == {"amip": 1.0, "ampd": 0.1, "aitd": 0.1, "gitd": 0.1}
    smit = load_config("smit")
    assert smit["model"]["sa_stage"] is None and smit["masking"]["strategy"] == "random"
    assert smit["noisy_teacher"]["drop_ratio"] == 0.0
    assert _losses(smit) == {"amip": 1.0, "ampd": 0.1, "aitd": 0.0, "gitd": 0.1}
    ibot = load_config("ibot")
    assert ibot["masking"]["strategy"] == "blockwise" and _losses(ibot) == {"amip": 0.0, "ampd": 1.0, "aitd": 0.0, "gitd": 1.0}
    attmask = load_config("attmask")
    assert attmask["model"]["arch"] == "vit" and attmask["masking"]["strategy"] == "attention_high"
    assert _losses(attmask)["amip"] == 0.0 and _losses(attmask)["ampd"] > 0
    mst = load_config("mst")
    assert mst["model"]["arch"] == "vit" and mst["masking"]["strategy"] == "attention_low"
    assert _losses(mst) == {"amip": 1.0, "ampd": 0.0, "aitd": 1.0, "gitd": 0.0}


@pytest.mark.parametrize("name, changed", [
    ("smart_no_nt", {"noisy_teacher.drop_ratio": 0.0}),
    ("smart_no_sa", {"model.sa_stage": None, "model.sa_placement": None, "masking.strategy": "random", "loss.aitd": 0.0}),
    ("smart_sa1", {"model.sa_stage": 1}),
    ("smart_sa2", {"model.sa_stage": 2}),
    ("smart_sa3", {}),
    ("smart_sa4", {"model.sa_stage": 4}),
    ("amip", {"loss.ampd": 0.0, "loss.aitd": 0.0, "loss.gitd": 0.0}),
    ("amip_ampd", {"loss.aitd": 0.0, "loss.gitd": 0.0}),
    ("amip_ampd_aitd", {"loss.gitd": 0.0}),
    ("amip_aitd_gitd", {"loss.ampd": 0.0}),
    ("ampd_aitd_gitd", {"loss.amip": 0.0}),
    ("pdr_0", {"noisy_teacher.drop_ratio": 0.0}),
    ("pdr_0.1", {"noisy_teacher.drop_ratio": 0.1}),
    ("pdr_0.3", {"noisy_teacher.drop_ratio": 0.3}),
    ("pdr_0.5", {"noisy_teacher.drop_ratio": 0.5}),
    ("pdr_0.7", {}),
    ("pdr_0.9", {"noisy_teacher.drop_ratio": 0.9}),
])
def test_ablation_differs_from_smart_only_in_its_keys(name, changed):
    base = config.flatten(load_config("smart"))
    abl = config.flatten(load_config(name))
    diff = {k: abl[k] for k in abl if abl[k] != base[k] and k != "method"}
    assert diff == changed


def test_names_and_no_aliasing():
    assert method_names()[:5] == ["smart", "smit", "ibot", "attmask", "mst"]
    assert set(ABLATIONS) <= set(method_names())
    over = resolve_overrides("amip")
    over["loss"]["ampd"] = 123.0  # mutating a resolved copy must not leak into the registry
    assert ABLATIONS["amip"][1]["loss"]["ampd"] == 0.0 and METHODS["smart"] == {}
    with pytest.raises(ValueError, match="^method: .*'nope'"):
        resolve_overrides("nope")
