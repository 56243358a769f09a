"""Method registry: SMART and the baselines it is compared with, plus the paper's ablations, as config overrides.

Every method is an overlay on ``smart.config.DEFAULTS`` (which is the paper's SMART) that lists only what differs
from it, using only the :data:`METHOD_KEYS` switches; an ablation is ``(base method, further overrides)``. There is one training engine (``smart.ssl.self_distillation``);
methods differ only in these switches (docs/ARCHITECTURE.md "Pretraining config keys").

Baselines (Sec. IV-A) as reimplemented inside this engine:

* ``smart`` — Swin + SA at stage 3, attention-high masking with hints (r 0.7, s 0.1), noisy teacher r_t 0.7,
  AMIP + 0.1 (AMPD + AITD + GITD) (Sec. III, IV-C).
* ``smit`` — Swin without SA, random masking, plain EMA teacher, AMIP + 0.1 (AMPD + GITD) (SMIT [3]).
* ``ibot`` — Swin without SA, blockwise masking, no reconstruction: AMPD + GITD with weight 1 each (iBOT [2]).
* ``attmask`` — ViT, attention-high masking driven by the teacher's ViT [CLS] attention, distillation only:
  AMPD (masked patch tokens) + AITD on the ViT [CLS] with weight 1 each (AttMask [9] on iBOT).
* ``mst`` — ViT, attention-low masking (the least attended tokens are masked), reconstruction + [CLS] distillation:
  AMIP + AITD (MST [4]).

The ``smart_no_sa`` ablation ("SA ✗" in Table IV(a)) has no [CLS] and therefore no attention map: it uses random
masking (as SMIT does) and drops AITD, keeping the noisy teacher. ``smart_no_nt_no_sa`` removes both (Table IV(a),
first row) and so has the same switches as ``smit``.
"""

from __future__ import annotations

import copy
from typing import Any

from smart.registry import look_up

# The switches a method is made of. Methods and ablations set only these (and only where they differ from
# smart.config.DEFAULTS, which is SMART); presets may set none of them (smart.config.preset_overlay), so the
# method layer, applied after the preset, decides them alone.
METHOD_KEYS: tuple[str, ...] = (
    "model.arch", "model.sa_stage", "masking.strategy", "masking.ratio", "masking.hint_ratio", "masking.hints",
    "noisy_teacher.drop_ratio", "loss.amip", "loss.ampd", "loss.aitd", "loss.gitd",
)

_NO_SA_RANDOM = {"model": {"sa_stage": None}, "masking": {"strategy": "random"}, "loss": {"aitd": 0.0}}

# Overlays on smart.config.DEFAULTS (the paper's SMART, Sec. III/IV-C: Swin + SA at stage 3, attention-high masking
# r 0.7 with hints s 0.1, noisy teacher r_t 0.7, AMIP + 0.1 (AMPD + AITD + GITD)): each lists only what differs.
METHODS: dict[str, dict[str, Any]] = {
    "smart": {},
    "smit": {
        "model": {"sa_stage": None},
        "masking": {"strategy": "random"},
        "noisy_teacher": {"drop_ratio": 0.0},
        "loss": {"aitd": 0.0},
    },
    "ibot": {
        "model": {"sa_stage": None},
        "masking": {"strategy": "blockwise"},
        "noisy_teacher": {"drop_ratio": 0.0},
        "loss": {"amip": 0.0, "ampd": 1.0, "aitd": 0.0, "gitd": 1.0},
    },
    "attmask": {
        "model": {"arch": "vit"},
        "noisy_teacher": {"drop_ratio": 0.0},
        "loss": {"amip": 0.0, "ampd": 1.0, "aitd": 1.0, "gitd": 0.0},
    },
    "mst": {
        "model": {"arch": "vit"},
        "masking": {"strategy": "attention_low", "hint_ratio": 0.0},
        "noisy_teacher": {"drop_ratio": 0.0},
        "loss": {"ampd": 0.0, "aitd": 1.0, "gitd": 0.0},
    },
}


def _loss_subset(*on: str) -> dict[str, Any]:
    """Table IV(b): the listed losses keep SMART's weights (the defaults), the rest are switched off."""
    return {"loss": {name: 0.0 for name in ("amip", "ampd", "aitd", "gitd") if name not in on}}


ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    # Table IV(a)
    "smart_no_nt": ("smart", {"noisy_teacher": {"drop_ratio": 0.0}}),
    "smart_no_sa": ("smart", _NO_SA_RANDOM),
    "smart_no_nt_no_sa": ("smart", {**_NO_SA_RANDOM, "noisy_teacher": {"drop_ratio": 0.0}}),
    # Table V: SA block location
    **{f"smart_sa{k}": ("smart", {"model": {"sa_stage": k}}) for k in (1, 2, 3, 4)},
    # Table IV(b): loss subsets
    "amip": ("smart", _loss_subset("amip")),
    "amip_ampd": ("smart", _loss_subset("amip", "ampd")),
    "amip_ampd_aitd": ("smart", _loss_subset("amip", "ampd", "aitd")),
    "amip_aitd_gitd": ("smart", _loss_subset("amip", "aitd", "gitd")),
    "ampd_aitd_gitd": ("smart", _loss_subset("ampd", "aitd", "gitd")),
    # Sec. VI-E / Fig. 10: patch drop ratio of the noisy teacher
    **{f"pdr_{r}": ("smart", {"noisy_teacher": {"drop_ratio": float(r)}}) for r in ("0", "0.1", "0.3", "0.5", "0.7", "0.9")},
}


def method_names() -> list[str]:
    """Every name ``load_config``/``smart pretrain --method`` accepts: methods first, then ablations."""
    return list(METHODS) + list(ABLATIONS)


def _deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve_overrides(name: str) -> dict[str, Any]:
    """The nested override dict for a method or ablation (ablation = its base method's overrides + its own);
    ``ValueError`` (MONAI ``look_up_option``, naming close matches) for an unknown name."""
    entry = look_up("method", name, {**METHODS, **ABLATIONS})
    if name in ABLATIONS:
        base, extra = entry
        return _deep_update(copy.deepcopy(METHODS[base]), extra)
    return copy.deepcopy(entry)
