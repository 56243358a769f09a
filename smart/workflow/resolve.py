"""Every planned variant, task, study arm and segmentation run resolved through the package's own config
resolution before any job: ``smart.config.load_config`` (what ``smart pretrain`` runs),
``smart.downstream.protocol.load_downstream_config`` (what ``smart finetune`` / ``smart linear-probe`` run, the
study's probes with ``study.probe_set`` included) and ``smart.downstream.segmentation.load_segmentation_config`` (what
``smart segmentation`` runs, with ``segmentation.set``), with exactly the ``--config`` / ``--set`` words the rules
pass. A variant that could not start (``smart_no_sa`` with AITD still on: ``loss.aitd > 0 needs a [CLS] token``) is
a config-time error naming the variant and the key, not a failed GPU job.

The resolution imports ``smart.config`` and so torch: call it only after config/schema.yaml validated the config
(rules/common.smk does), so a typo is reported without that import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.overlay import set_items
from smart.workflow.overrides import downstream_sets, pretraining_sets
from smart.workflow.plan import Plan
from smart.workflow.segmentation import check_segmentation, network_overrides, segmentation_variants
from smart.workflow.study import arm_sets, probe_overrides, study_arms
from smart.workflow.tasks import downstream_overrides, plan_tasks
from smart.workflow.variants import (SCRATCH, is_pretrained, plan_variants, pretraining_overrides, scratch_overrides,
                                     variant_heads)


def check_override_owners(config: Mapping[str, Any]) -> None:
    """A pretraining ``set`` holds only ``section.key`` keys of ``smart.config``; a fine-tuning ``set`` none of
    them but the pretraining spellings the fine-tuning config itself accepts (``optim.lr``, ``optim.weight_decay``:
    ``smart.overlay.OPTIM_ALIASES``, the package's one table of them). A key given to the wrong step fails here,
    naming where it belongs; any other unknown fine-tuning key fails in :func:`resolve_task`, in the package's words."""
    from smart.config import SCHEMA
    from smart.downstream.protocol import TYPES as DOWNSTREAM_TYPES
    from smart.overlay import OPTIM_ALIASES, unknown_key

    def is_pretrain_key(key: Any) -> bool:
        section, _, name = str(key).partition(".")
        return name in SCHEMA.get(section, {})

    for where, overrides in pretraining_sets(config):
        for key in overrides:
            if not is_pretrain_key(key) and str(key) not in DOWNSTREAM_TYPES:  # a misspelt pretraining key
                raise unknown_key("pretraining", str(key), f"config {where}", SCHEMA)
            if not is_pretrain_key(key):
                raise ValueError(f"config {where}: {key!r} is not a pretraining key (smart.config, "
                                 f"docs/ARCHITECTURE.md 'Pretraining config keys'); fine-tuning keys go under "
                                 f"finetune.set")
    for where, overrides in downstream_sets(config):
        for key in overrides:
            if is_pretrain_key(key) and key not in OPTIM_ALIASES:
                raise ValueError(f"config {where}: {key!r} is a pretraining key; put it under pretrain.set or a "
                                 f"variant's set")


def resolve_variant(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The resolved pretraining config of ``variant``; for a scratch variant the config of the encoder
    ``--encoder none`` builds (``smart.downstream.protocol.scratch_config``). ``ValueError`` naming the variant."""
    from smart.config import load_config
    from smart.downstream.protocol import load_downstream_config, scratch_config

    spec = config["variants"][variant]
    try:
        if is_pretrained(config, variant):
            pre = config["pretrain"]
            return load_config(spec["method"], pre["preset"], pre["config_yaml"],
                               set_items(pretraining_overrides(config, variant)))
        downstream = load_downstream_config(config["finetune"]["config_yaml"],
                                            set_items(scratch_overrides(config, variant)))
        return scratch_config(downstream)
    except ValueError as err:
        raise ValueError(f"config variants.{variant} (method {spec['method']!r}): {err}") from None


def resolve_finetune_set(config: Mapping[str, Any]) -> dict[str, Any]:
    """``finetune.set`` alone on ``finetune.config_yaml``, so a bad key there is named as ``finetune.set``'s rather
    than as the first task's (every task's words merge it with ``tasks.<t>.set``). ``ValueError`` naming the block."""
    from smart.downstream.protocol import load_downstream_config

    try:
        return load_downstream_config(config["finetune"]["config_yaml"], set_items(config["finetune"]["set"]))
    except ValueError as err:
        raise ValueError(f"config finetune.set: {err}") from None


def resolve_task(config: Mapping[str, Any], task: str, variant: str) -> dict[str, Any]:
    """The resolved downstream config of fine-tuning / probing ``variant`` on ``task``; ``ValueError`` naming both."""
    from smart.downstream.protocol import load_downstream_config

    try:
        return load_downstream_config(config["finetune"]["config_yaml"],
                                      set_items(downstream_overrides(config, task, variant)))
    except ValueError as err:
        raise ValueError(f"config tasks.{task} (fine-tuning variant {variant!r}): {err}") from None


def resolve_study_arm(config: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The resolved pretraining config of a pretrained study arm (its method, the study preset, its study.sets)."""
    from smart.config import load_config

    study = config["study"]
    try:
        return load_config(study["methods"][arm], study["preset"], None, set_items(arm_sets(config, arm)))
    except ValueError as err:
        raise ValueError(f"config study.methods.{arm} ({study['methods'][arm]!r}): {err}") from None


def resolve_study_probe(config: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The resolved downstream config of the study's linear probe of ``arm`` (``rules/study.smk`` study_probe:
    no ``--config``, the words of :func:`smart.workflow.study.probe_overrides`, ``study.probe_set`` last), at the
    first seed (the seeds differ only in the integer ``seed``, which the schema checks); for a scratch arm also the
    encoder ``--encoder none`` builds. ``ValueError`` naming ``study.probe_set`` and the arm."""
    from smart.downstream.protocol import load_downstream_config, scratch_config

    seed = config["study"]["seeds"][0]
    try:
        cfg = load_downstream_config(None, set_items(probe_overrides(config, arm, seed)))
        if config["study"]["methods"][arm] == SCRATCH:
            scratch_config(cfg)
        return cfg
    except ValueError as err:
        raise ValueError(f"config study.probe_set (probe of study arm {arm!r}): {err}") from None


def resolve_segmentation(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The resolved segmentation config of fine-tuning SwinUNETR from ``variant`` (``segmentation.config_yaml``,
    then the network and ``segmentation.set`` words of :func:`smart.workflow.segmentation.network_overrides`), and
    the encoder model it builds. ``ValueError`` naming ``segmentation.set`` and the variant."""
    from smart.downstream.segmentation import load_segmentation_config, model_config

    try:
        cfg = load_segmentation_config(config["segmentation"]["config_yaml"],
                                       set_items(network_overrides(config, variant)))
        model_config(cfg)
        return cfg
    except ValueError as err:
        raise ValueError(f"config segmentation.set (segmentation of variant {variant!r}): {err}") from None


def check_variant_features(config: Mapping[str, Any], variant: str, cls_token: bool) -> None:
    """``sa`` and every head that reads the [CLS] token need an encoder that has one (smart.models.classifier
    HEADS ``feature``)."""
    from smart.models.classifier import HEADS

    if cls_token:
        return
    spec = config["variants"][variant]
    needs = [h for h in variant_heads(config, variant) if HEADS[h].feature == "cls"]
    if needs:
        raise ValueError(f"config variants.{variant}.heads: {needs} read the [CLS] token, which this variant's "
                         f"encoder has not (model.sa_stage null on a Swin); use heads: [pooled]")
    if is_pretrained(config, variant) and spec.get("sa", True):
        raise ValueError(f"config variants.{variant}.sa = true, but its encoder has no [CLS] attention map "
                         f"(model.sa_stage null on a Swin); set sa: false")


def resolve_plan(config: Mapping[str, Any]) -> Plan:
    """Resolve every variant (all of them: any ablation target may plan any), every task with every variant, every
    pretrained study arm, every study arm's probe and every segmentation variant (whether or not the requested
    targets include them, as for the ablations); the facts the rules read, as a :class:`Plan`. ``ValueError`` (one
    line naming the variant / task / arm / config block and the key) for the first that does not resolve."""
    from smart.models.factory import has_cls

    check_override_owners(config)
    resolve_finetune_set(config)
    arch, cls_token = {}, {}
    for variant in config["variants"]:
        model = resolve_variant(config, variant)["model"]
        arch[variant], cls_token[variant] = model["arch"], has_cls(model)
        check_variant_features(config, variant, cls_token[variant])
    crop_edge = {}
    for task in config["tasks"]:  # every task: a converter (LIDC crops) may be asked for by path
        crops = [resolve_task(config, task, variant)["crop_size"] for variant in config["variants"]]
        crop_edge[task] = max(int(c) for crop in crops for c in crop)
    check_segmentation(config, arch)
    segmentation = segmentation_variants(config, arch)
    for variant in segmentation:
        resolve_segmentation(config, variant)
    study_sa = [a for a in study_arms(config, True) if has_cls(resolve_study_arm(config, a)["model"])]
    for arm in study_arms(config):
        resolve_study_probe(config, arm)
    return Plan(arch=arch, cls_token=cls_token, crop_edge=crop_edge, study_sa_arms=study_sa,
                segmentation_variants=segmentation, variants=plan_variants(config),
                tasks=plan_tasks(config), table_tasks=dict(config["table_tasks"]))
