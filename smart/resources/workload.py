"""What one job of each GPU rule group holds on its card, read from the workflow config: crop, batch in flight,
precision, the settings the memory model was measured under, and the config keys a user changes to make it fit.

The workflow config is the one Snakemake resolves (``config/schema.yaml`` defaults filled). Each group's settings are
resolved with the step's own config loader, exactly as its rule's shell line does: pretraining with
:func:`smart.config.load_config` (``pretrain.preset``/``config_yaml``/``set`` + the variant's ``set``), fine-tuning and
probing with :func:`smart.downstream.protocol.load_downstream_config` (``finetune.set`` + ``tasks.<t>.set``),
segmentation with :func:`smart.downstream.segmentation.load_segmentation_config`. Where several variants or tasks
differ, the largest job is the group's. ``embed``, ``zeroshot`` and ``attention_maps`` run with their command's defaults
(:data:`COMMAND_DEFAULTS`; ``tests/resources`` checks them against the parsers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from smart.overlay import merged, set_items
from smart.resources.memory import GROUP_STEPS

# The rules call these commands without the options below: their parser defaults (crop edge, batch).
COMMAND_DEFAULTS = {"embed": {"batch_size": 8, "crop": [64, 64, 64]},       # OrganMNIST3D 64^3 (organmnist3d_64.npz)
                    "zeroshot": {"batch_size": 1, "crop": [128, 128, 128]},
                    "attention_maps": {"batch_size": 3, "crop": [64, 64, 64]}}
# rule group -> the rules of the planned DAG that run it (rules/*.smk `resources: **rule_resources(group)`)
GROUP_RULES = {"pretrain": ["pretrain"], "finetune": ["finetune"], "probe": ["linear_probe"], "embed": ["embed"],
               "zeroshot": ["zeroshot"], "attention_maps": ["attention_maps"], "segmentation": ["segmentation_finetune"]}


@dataclass
class Workload:
    """One job of ``group``: ``batch`` samples of ``crop`` in flight per forward, measured settings ``variant``."""

    group: str
    step: str
    crop: list[int]
    batch: int
    variant: str
    # config key -> current value: the settings whose change makes a job smaller (named in a refusal)
    knobs: dict[str, Any] = field(default_factory=dict)
    # samples per optimisation step (the effective batch; equals ``batch`` without accumulation)
    effective_batch: int = 0
    notes: list[str] = field(default_factory=list)


def _check_crop(crop, multiple: int, where: str) -> list[int]:
    if not isinstance(crop, (list, tuple)) or len(crop) != 3 or any(int(c) < multiple or int(c) % multiple
                                                                   for c in crop):
        raise ValueError(f"config {where}={crop!r}: the encoder takes 3 edges that are multiples of {multiple} "
                         f"(patch x 2^4 patch mergings)")
    return [int(c) for c in crop]


def _encoder_multiple(model: Mapping[str, Any]) -> int:
    """Edge multiple of the encoder built from a ``model.*`` config (Swin: patch x 2^4; ViT: its patch)."""
    if model.get("arch") == "vit":
        return int(model["vit_patch"])
    patch = model["patch_size"]
    return int(max(patch) if isinstance(patch, (list, tuple)) else patch) * 2**4


def pretrain_workload(config: Mapping[str, Any]) -> Workload:
    """The largest pretraining job over the variants. The memory model measures SMART's step (Swin, SA at stage 3),
    so each variant is resolved as SMART at ``pretrain.preset`` with only its ``data.*`` overrides (crop, batch per
    GPU); the rest of a variant's config is validated by its own job (and the workflow's variant checks)."""
    from smart.config import load_config

    pre = config["pretrain"]
    best: Workload | None = None
    for name, spec in config["variants"].items():
        if spec["method"] == "scratch":
            continue
        sets = merged(pre["set"], spec.get("set"))
        try:
            cfg = load_config("smart", pre["preset"], pre["config_yaml"],
                              set_items({k: v for k, v in sets.items() if str(k).startswith("data.")}))
        except ValueError as err:
            raise ValueError(f"config pretrain.set / variants.{name}.set: {err}") from None
        where = f"variants.{name} (pretrain.preset {pre['preset']!r} + sets) data.crop_size"
        arch = sets.get("model.arch", cfg["model"].get("arch"))
        model = {**cfg["model"], **{k.split(".", 1)[1]: v for k, v in sets.items() if str(k).startswith("model.")}}
        crop = _check_crop(cfg["data"]["crop_size"], _encoder_multiple(model), where)
        batch = int(cfg["data"]["batch_size"])
        w = Workload("pretrain", "pretrain", crop, batch, "bf16",
                     knobs={"pretrain.set data.batch_size": batch, "pretrain.set data.crop_size": crop},
                     effective_batch=batch)
        if arch == "vit":
            w.notes.append(f"variant {name} (ViT) predicted with the Swin step's coefficients")
        if best is None or crop[0] * crop[1] * crop[2] * batch > best.crop[0] * best.crop[1] * best.crop[2] * best.batch:
            best = w
        elif arch == "vit":
            best.notes.extend(w.notes)
    if best is None:
        raise ValueError("config variants: no pretrained variant, so no pretraining job to plan")
    return best


def _downstream_configs(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    from smart.downstream.protocol import load_downstream_config

    ft = config["finetune"]
    out = []
    for task in ft["tasks"] or list(config["tasks"]):
        try:
            out.append((task, load_downstream_config(ft["config_yaml"],
                                                     set_items(ft["set"], config["tasks"][task]["set"]))))
        except ValueError as err:
            raise ValueError(f"config finetune.set / tasks.{task}.set: {err}") from None
    return out


def _precision(cfg: Mapping[str, Any]) -> str:
    """Fine-tuning precision on a GPU (``precision`` key; fp32 when the config has none)."""
    value = str(cfg.get("precision", "fp32"))
    return "bf16" if value in ("bf16", "bfloat16", "auto") else "fp32"


def finetune_workload(config: Mapping[str, Any]) -> Workload:
    best: Workload | None = None
    for task, cfg in _downstream_configs(config):
        where = f"finetune.set / tasks.{task}.set"
        crop = _check_crop(cfg["crop_size"], 32, f"{where} crop_size")
        batch = int(cfg["batch_size"])
        micro = cfg.get("micro_batch_size") or batch
        if int(micro) < 1 or batch % int(micro):
            raise ValueError(f"config {where} micro_batch_size={micro!r} must divide batch_size={batch} (the "
                             f"effective batch is accumulated over batch_size / micro_batch_size micro-batches)")
        ckpt = bool(cfg.get("activation_checkpointing", False))
        variant = _precision(cfg) + ("+checkpointing" if ckpt else "")
        knobs = {"finetune.set micro_batch_size": int(micro)}
        if "activation_checkpointing" in cfg:
            knobs["finetune.set activation_checkpointing"] = ckpt
        if "precision" in cfg:
            knobs["finetune.set precision"] = cfg["precision"]
        w = Workload("finetune", "finetune", crop, int(micro), variant, knobs=knobs, effective_batch=batch)
        if best is None or crop[0] * crop[1] * crop[2] * w.batch > best.crop[0] * best.crop[1] * best.crop[2] * best.batch:
            best = w
    assert best is not None
    return best


def probe_workload(config: Mapping[str, Any]) -> Workload:
    best: Workload | None = None
    for task, cfg in _downstream_configs(config):
        crop = _check_crop(cfg["crop_size"], 32, f"finetune.set / tasks.{task}.set crop_size")
        batch = int(cfg["feature_batch_size"])
        w = Workload("probe", "features", crop, batch, "fp32",
                     knobs={"finetune.set feature_batch_size": batch}, effective_batch=batch)
        if best is None or crop[0] * crop[1] * crop[2] * batch > best.crop[0] * best.crop[1] * best.crop[2] * best.batch:
            best = w
    assert best is not None
    return best


def segmentation_workload(config: Mapping[str, Any]) -> Workload:
    from smart.downstream.segmentation import load_segmentation_config

    seg = config["segmentation"]
    preset = config["pretrain"]["preset"]
    sets = merged({"model_preset": preset} if preset else None, seg.get("set"))
    try:
        cfg = load_segmentation_config(None, set_items(sets))
    except ValueError as err:
        raise ValueError(f"config segmentation.set: {err}") from None
    crop = [int(c) for c in cfg["crop_size"]]
    batch = int(cfg["batch_size"])
    return Workload("segmentation", "segmentation", crop, batch, "fp32",
                    knobs={"segmentation.set batch_size": batch, "segmentation.set crop_size": crop},
                    effective_batch=batch)


def command_workload(group: str) -> Workload:
    d = COMMAND_DEFAULTS[group]
    return Workload(group, GROUP_STEPS[group], list(d["crop"]), int(d["batch_size"]), "fp32",
                    effective_batch=int(d["batch_size"]))


BUILDERS = {"pretrain": pretrain_workload, "finetune": finetune_workload, "probe": probe_workload,
            "segmentation": segmentation_workload}


def workload(group: str, config: Mapping[str, Any]) -> Workload:
    """The largest job of ``group`` under the workflow ``config``; ``ValueError`` naming the key for a crop the
    encoder cannot take or a micro-batch that does not divide the batch."""
    if group in BUILDERS:
        return BUILDERS[group](config)
    return command_workload(group)


def gpu_groups(config: Mapping[str, Any]) -> list[str]:
    """The rule groups that ask for a GPU (``resources.<group>.gpu > 0``) and that the memory model covers."""
    return [g for g in GROUP_STEPS if int(config["resources"].get(g, {}).get("gpu", 0) or 0) > 0]
