"""The CPU study of issue #13 (config ``study``, rules/study.smk): seeds x arms, each arm a pretraining method
(or ``scratch``) at the study preset with the arm's own ``study.sets``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.overlay import merged, yaml_value
from smart.workflow.variants import SCRATCH


def study_arms(config: Mapping[str, Any], pretrained: bool | None = None) -> list[str]:
    """Arm names (config order); ``pretrained=True/False`` keeps the arms with/without a pretraining method."""
    arms = config["study"]["methods"]
    if pretrained is None:
        return list(arms)
    return [a for a, m in arms.items() if (m != SCRATCH) == pretrained]


def arm_sets(config: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The arm's pretraining overrides (``study.sets``; none for most arms)."""
    return dict(config["study"]["sets"].get(arm) or {})


def arm_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """arm -> its method, then its overrides when it has any (the study table's ``method`` column)."""
    return {arm: ", ".join([method] + [f"{k}={yaml_value(v)}" for k, v in arm_sets(config, arm).items()])
            for arm, method in config["study"]["methods"].items()}


def probe_overrides(config: Mapping[str, Any], arm: str, seed: int) -> dict[str, Any]:
    """``smart linear-probe --set`` of an arm and seed: the scratch architecture (SMART at the study preset) for a
    scratch arm, the seed, then ``study.probe_set``."""
    scratch = {}
    if config["study"]["methods"][arm] == SCRATCH:
        scratch = {"scratch_method": "smart", "scratch_preset": config["study"]["preset"]}
    return merged(scratch, {"seed": int(seed)}, config["study"]["probe_set"])


def check_study_sets(config: Mapping[str, Any]) -> None:
    """``study.sets`` names defined arms, and none whose method is scratch (it has no pretraining to override)."""
    study = config["study"]
    unknown = sorted(set(study["sets"]) - set(study["methods"]))
    if unknown:
        raise ValueError(f"study.sets names arm(s) {unknown} that study.methods does not define "
                         f"(arms: {sorted(study['methods'])})")
    scratch = [a for a in study["sets"] if study["methods"][a] == SCRATCH]
    if scratch:
        raise ValueError(f"study.sets overrides the pretraining of arm(s) {scratch}, whose method is scratch "
                         f"(no pretraining)")
