"""Pretraining configuration: defaults, presets, method overrides, YAML and ``--set key=value`` (docs/ARCHITECTURE.md
"Pretraining config keys").

Resolution order (later wins), through the one layering loop ``smart.overlay.apply_layers``: ``DEFAULTS`` (the paper's
SMART; each default written once) <- preset (``PRESETS``: ``tiny``/``small``/``paper``; sizes and schedules only) <-
method (``smart.ssl.methods``: only the switches that differ from SMART) <- YAML file <- ``--set`` overrides. Every
key is typed; an unknown key or a value of the wrong type is a ``ValueError`` that names the key, the value and what is
allowed, so a typo in a SLURM job fails in seconds instead of silently training the default (docs/ARCHITECTURE.md
"Configuration").

Keys beyond the contract list (all under ``loss.``): ``head_hidden_dim``, ``head_bottleneck_dim``, ``head_nlayers``
size the DINO projection heads, so the ``tiny`` preset can use small heads.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

from smart.models.factory import BACKBONES, DEFAULT_MODEL_CONFIG, backbone, has_cls, has_sa
from smart.overlay import Layer, apply_layers, flatten, parse_set, read_yaml
from smart.registry import look_up
from smart.ssl import methods as method_registry
from smart.ssl.centering import CENTERINGS
from smart.ssl.masking import HINTS, MASKING_STRATEGIES, masking_strategy

# Type tags: "int", "float" (ints accepted), "bool", "str:<a>|<b>" (choice), "ints:<n>" (list of n ints, n=0: any
# length >= 1), "?" prefix = may be null.
SCHEMA: dict[str, dict[str, str]] = {
    "model": {
        "arch": "str:" + "|".join(BACKBONES), "embed_dim": "int", "depths": "ints:0", "num_heads": "ints:0",
        "window_size": "int", "patch_size": "int", "drop_path_rate": "float", "sa_stage": "?int", "sa_depth": "int", "sa_heads": "int",
        "vit_dim": "int", "vit_depth": "int", "vit_heads": "int", "vit_patch": "int", "use_checkpoint": "bool",
        "sa_placement": "?str:inline|branch", "sa_layer_scale": "float",
    },
    "data": {"crop_size": "ints:3", "batch_size": "int", "num_workers": "int", "cache": "bool", "view_offset": "?int",
             "group": "?str"},
    "masking": {"strategy": "str:" + "|".join(MASKING_STRATEGIES), "ratio": "float", "hint_ratio": "float",
                "hints": "str:" + "|".join(HINTS)},
    "noisy_teacher": {"drop_ratio": "float", "unit": "int"},
    "loss": {
        "amip": "float", "ampd": "float", "aitd": "float", "gitd": "float", "out_dim": "int", "student_temp": "float",
        "teacher_temp": "float", "warmup_teacher_temp": "float", "warmup_teacher_temp_steps": "int",
        "center_momentum": "float", "koleo": "float", "head_hidden_dim": "int", "head_bottleneck_dim": "int",
        "head_nlayers": "int", "ampd_tokens": "?str:pre_merge|post_merge", "centering": "str:" + "|".join(CENTERINGS),
        "warmup_teacher_temp_epochs": "?float",
        **{f"{prefix}teacher_temp_{name}": "?float" for prefix in ("", "warmup_") for name in ("ampd", "aitd", "gitd")},
    },
    "ema": {"momentum_start": "float", "momentum_end": "float"},
    "optim": {"lr": "float", "min_lr": "float", "weight_decay": "float", "warmup_steps": "int", "clip_grad": "float",
              "weight_decay_end": "?float", "lr_base_batch": "?int", "warmup_epochs": "?float",
              "freeze_last_layer_epochs": "float"},
    "train": {"steps": "int", "seed": "int", "checkpoint_every": "int", "log_every": "int", "max_nonfinite": "int",
              "steps_per_epoch": "?int", "epochs": "?int", "compile": "bool", "stop_on_collapse": "bool"},
}

# Defaults = the paper's SMART model (Sec. IV-C; the model table is smart.models.factory's, less the keys this config
# does not expose) with a small demo schedule; the `paper` preset sets the full schedule.
DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        **{key: copy.deepcopy(DEFAULT_MODEL_CONFIG[key]) for key in SCHEMA["model"]},
        # inline | branch (docs/ARCHITECTURE.md "SA placement"); null = inline when there is an SA block. Must stay
        # null without one (SMIT, iBOT, ViT), so a placement never silently means nothing.
        "sa_placement": None,
    },
    # view_offset: null = two independent random crops; N = v's crop within N voxels of u's, u centred in the body.
    "data": {"crop_size": [128, 128, 128], "batch_size": 2, "num_workers": 4, "cache": True, "view_offset": None,
             # group: pretrain only on manifest rows of this `group` (Sec. VII lung vs non-lung); null = all.
             "group": None},
    # hints=attmask: mask the top ceil(rN) by teacher attention and reveal a random ceil(s*rN) of them (AttMask, which
    # Sec. III-B says SMART follows); hints=top: keep the top ceil(sN) visible and mask the next ceil(rN).
    "masking": {"strategy": "attention_high", "ratio": 0.7, "hint_ratio": 0.1, "hints": "attmask"},
    # unit: the edge in voxels of the cube the noisy teacher drops (Sec. III-D). 16 = the paper's mask-grid token (a
    # stage-3 Swin token at patch 2, a ViT patch 16), so Swin and ViT teachers get the same physical noise.
    "noisy_teacher": {"drop_ratio": 0.7, "unit": 16},
    "loss": {
        # Sec. III-C: L_total = AMIP + 0.1 AMPD + 0.1 AITD + 0.1 GITD (Sec. IV-C grid search). Temperatures/centre
        # momentum follow DINO/SMIT, which the paper cites for centring and sharpening.
        "amip": 1.0, "ampd": 0.1, "aitd": 0.1, "gitd": 0.1, "out_dim": 8192, "student_temp": 0.1,
        "teacher_temp": 0.07, "warmup_teacher_temp": 0.04, "warmup_teacher_temp_steps": 1000,
        "center_momentum": 0.9, "head_hidden_dim": 2048,
        # How the AITD/GITD teacher targets are centred: ema = the running centre above (DINO/SMIT, the paper);
        # sinkhorn_knopp = DINOv2's batch Sinkhorn-Knopp (not in the paper; AMPD keeps the EMA centre).
        # smart.ssl.centering, BENCHMARKS.md §8d.
        "centering": "ema",
        # KoLeo regulariser weight (DINOv2; not in the paper, so 0): smart.ssl.losses.koleo.
        "koleo": 0.0, "head_bottleneck_dim": 256, "head_nlayers": 3,
        # Which stage-3 tokens AMPD distils (Sec. III-C: "before performing patch merging of stage #3 output"):
        # pre_merge = the stage's Swin-block output before MONAI's patch merging (192 ch on 16^3 at 128^3), post_merge
        # = after it (384 ch on 8^3, the mask grid; kept for comparison). null = pre_merge on a backbone with patch
        # merging (Swin), resolved by load_config and recorded in config.json; it must stay null on one without (ViT:
        # AMPD reads its patch tokens). smart.ssl.self_distillation.
        "ampd_tokens": None,
        # Per-loss teacher temperatures (null = the shared ones above) and the warm-up in epochs (null = the steps
        # key): smart.ssl.stabilisers.
        "warmup_teacher_temp_epochs": None,
        **{f"{prefix}teacher_temp_{name}": None for prefix in ("", "warmup_") for name in ("ampd", "aitd", "gitd")},
    },
    "ema": {"momentum_start": 0.996, "momentum_end": 1.0},
    # DINO/iBOT stabilisers (smart.ssl.stabilisers): weight decay cosine 0.04 -> 0.4, prototype layers frozen for the
    # first epoch; lr_base_batch (lr * B/256) and warmup_epochs are off unless a preset sets them.
    "optim": {"lr": 8e-4, "min_lr": 1e-6, "weight_decay": 0.04, "warmup_steps": 1000, "clip_grad": 3.0,
              "weight_decay_end": 0.4, "lr_base_batch": None, "warmup_epochs": None, "freeze_last_layer_epochs": 1.0},
    # `*_epochs` keys (null = use the `*_steps` key): the pretraining driver converts them to steps of the actual
    # run, steps_per_epoch (null = ceil(n_CTs / global batch)) per epoch (smart.train.pretrain.resolve_epochs).
    # compile: torch.compile the student encoder (opt-in; docs/ARCHITECTURE.md "GPU throughput").
    # stop_on_collapse: end the run (exit 4) when the training-health monitor's collapse rule fires
    # (smart.ssl.health); false = one warning line per collapsed head.
    "train": {"steps": 10000, "seed": 0, "checkpoint_every": 1000, "log_every": 20, "max_nonfinite": 10,
              "steps_per_epoch": None, "epochs": None, "compile": False, "stop_on_collapse": False},
}

# Sec. IV-C: 800 epochs, 80 warm-up epochs, 4 GPUs. The paper pretrains on 10,412 CTs (7,289 lung + 3,123 other, Sec.
# VII); with 4 crops-pairs per GPU x 4 GPUs = 16 per step an epoch is ceil(10412/16) = 651 steps. The preset states
# the schedule in epochs, so a run on other data or another GPU count keeps 800/80/30 epochs of ITS data and global
# batch; the step figures are what those epochs give on the paper's data (used only when the epochs are set to null).
PAPER_CTS = 10412
PAPER_GPUS = 4
PAPER_BATCH_PER_GPU = 4
PAPER_STEPS_PER_EPOCH = math.ceil(PAPER_CTS / (PAPER_GPUS * PAPER_BATCH_PER_GPU))

PRESETS: dict[str, dict[str, Any]] = {
    # CPU smoke/CI scale: 32^3 crops (the smallest the 4 Swin merges allow; mask grid 2^3 at SA stage 3) and a narrow
    # network: ~0.3 s per step (batch 2, both views, teacher + student) on one busy CPU core; 64^3 costs ~3 s.
    "tiny": {
        "model": {"embed_dim": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "sa_heads": 2, "sa_depth": 2,
                  "vit_dim": 48, "vit_depth": 2, "vit_heads": 2, "vit_patch": 16, "drop_path_rate": 0.1},
        "data": {"crop_size": [32, 32, 32], "batch_size": 2, "num_workers": 0, "cache": True},
        "loss": {"out_dim": 256, "head_hidden_dim": 64, "head_bottleneck_dim": 32, "warmup_teacher_temp_steps": 20},
        "optim": {"lr": 5e-4, "warmup_steps": 10},
        "train": {"steps": 200, "checkpoint_every": 50, "log_every": 10},
    },
    # CPU study scale (issue #13): 64^3 crops so the SA/mask grid is 4^3 (64 tokens, 45 candidates, 5 hints) and
    # stage 4 is 2^3 (GITD averages 8 tokens); narrow widths for ~1 s/step on 2 idle cores. Views overlap inside the
    # body (data.view_offset). Steps per epoch = #CTs / batch (8 CTs -> 4), so the stabilisers' epoch keys apply:
    # prototypes frozen for 1 epoch, lr warmed up over 10 epochs. Three settings keep the distillation teachers
    # informative over a 300-step run (measured, BENCHMARKS.md §8; without them every teacher drifts to ln K):
    # KoLeo on the image-level heads (without it the [CLS] head learns to ignore its input), an EMA that starts at
    # 0.98 (DINO's 0.996 gives the teacher a half-life of ~170 steps, half this run; 0.98 gives ~34) and the teacher
    # temperatures held (0.04; the patch teacher 0.03, the lower of the two values measured): DINO's warm-up to 0.07
    # let the patch teacher go uniform.
    "small": {
        "model": {"embed_dim": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "sa_heads": 2, "sa_depth": 2,
                  "vit_dim": 48, "vit_depth": 2, "vit_heads": 2, "vit_patch": 16, "drop_path_rate": 0.1},
        "data": {"crop_size": [64, 64, 64], "batch_size": 2, "num_workers": 0, "cache": True, "view_offset": 16},
        "loss": {"out_dim": 256, "head_hidden_dim": 128, "head_bottleneck_dim": 64,
                 "teacher_temp": 0.04, "warmup_teacher_temp": 0.04, "koleo": 0.1,
                 "teacher_temp_ampd": 0.03, "warmup_teacher_temp_ampd": 0.03},
        "ema": {"momentum_start": 0.98},
        "optim": {"lr": 5e-4, "warmup_epochs": 10.0},
        "train": {"steps": 300, "checkpoint_every": 100, "log_every": 10},
    },
    "paper": {
        "data": {"crop_size": [128, 128, 128], "batch_size": PAPER_BATCH_PER_GPU, "num_workers": 8},
        # Teacher temperature 0.04 -> 0.07 over 30 epochs (DINO/iBOT); the patch (AMPD) teacher held at 0.04 (SMIT).
        "loss": {"warmup_teacher_temp_epochs": 30.0, "teacher_temp_ampd": 0.04, "warmup_teacher_temp_ampd": 0.04},
        # Sec. IV-C states the initial lr (8e-4) for its 4-GPU run, so it is used as given (no lr * B/256 rescaling,
        # which would make it 5e-5 at the 16-pair global batch); 80 warm-up epochs, prototypes frozen for 1 epoch.
        "optim": {"lr": 8e-4, "warmup_epochs": 80.0, "weight_decay": 0.04, "weight_decay_end": 0.4,
                  "freeze_last_layer_epochs": 1.0},
        # 800 epochs of the actual data and global batch (train.steps is the nominal 10,412 CTs x 4 GPUs figure;
        # the driver replaces it from train.epochs).
        "train": {"steps": 800 * PAPER_STEPS_PER_EPOCH, "epochs": 800, "checkpoint_every": 2000, "log_every": 50},
    },
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def merge(cfg: dict[str, Any], overrides: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Apply ``overrides`` (nested ``{"loss": {"aitd": 0}}`` or dotted ``{"loss.aitd": 0}``) to ``cfg`` in place."""
    cfg.update(apply_layers(cfg, [(source, overrides)], SCHEMA))
    return cfg


def preset_overlay(name: str) -> dict[str, Any]:
    """The preset's overlay; ``ValueError`` for an unknown name or a preset that sets a method's switch
    (``smart.ssl.methods.METHOD_KEYS``): presets set sizes and schedules, so the method layer that follows them
    never has to undo one."""
    entry = look_up("preset", name, PRESETS)
    owned = sorted(set(flatten(entry)) & set(method_registry.METHOD_KEYS))
    if owned:
        raise ValueError(f"preset '{name}' sets {', '.join(owned)}: a method's switches belong to smart.ssl.methods")
    return copy.deepcopy(entry)


def _validate_sa_placement(m: Mapping[str, Any], mk: Mapping[str, Any], loss: Mapping[str, Any]) -> None:
    """``model.sa_placement`` only with an SA block, and attention masks only from an SA block some loss trains.

    Under ``branch`` only AITD reaches the SA block; under ``inline`` AITD, AMIP (which reads the SA-refined tokens)
    and GITD (stage 4 consumes them) do, AMPD (read before the SA block, Sec. III-C) does not. Attention-guided masks
    ranked by an SA block that no loss trains would come from its random initialisation for the whole run.
    """
    sa = has_sa(m)
    if m["sa_placement"] is not None and not sa:
        why = (f"model.arch={m['arch']} has no SA block" if not backbone(m["arch"]).sa_block
               else "model.sa_stage is null (no SA block)")
        raise ValueError(f"config key 'model.sa_placement'={m['sa_placement']!r} needs an SA block, but {why}; "
                         f"leave model.sa_placement null")
    if not sa or not masking_strategy(mk["strategy"]).needs_attention:
        return
    placement = m["sa_placement"] or "inline"
    trained_by = ["aitd"] + (["amip", "gitd"] if placement == "inline" else [])
    if not any(loss[name] > 0 for name in trained_by):
        raise ValueError(f"masking.strategy={mk['strategy']} ranks tokens by the SA block, but with "
                         f"model.sa_placement={placement} only loss.{'/'.join(trained_by)} train it and all are 0: "
                         f"the masks would come from a frozen random SA. Use sa_placement=inline with amip/gitd > 0, "
                         f"loss.aitd > 0, or random masking")


def _validate_ampd_tokens(m: Mapping[str, Any], loss: Mapping[str, Any]) -> None:
    """``loss.ampd_tokens`` names a side of a patch merging, so it needs a backbone that merges patches."""
    if loss["ampd_tokens"] is not None and not backbone(m["arch"]).patch_merging:
        raise ValueError(f"config key 'loss.ampd_tokens'={loss['ampd_tokens']!r} needs a backbone with patch merging, "
                         f"but model.arch={m['arch']} has none (AMPD reads its patch tokens); leave loss.ampd_tokens "
                         f"null")


def _validate_noise_unit(m: Mapping[str, Any], d: Mapping[str, Any], nt: Mapping[str, Any]) -> None:
    """``noisy_teacher.unit`` (voxels) must be a whole number of the encoder's patches and tile the crop exactly."""
    unit = nt["unit"]
    patch = m[backbone(m["arch"]).patch_key]
    if unit < 1 or unit % patch:
        raise ValueError(f"config key 'noisy_teacher.unit'={unit} must be a positive multiple of the "
                         f"{m['arch']} patch size {patch} (dropped cubes are whole patches)")
    if any(c % unit for c in d["crop_size"]):
        raise ValueError(f"config key 'noisy_teacher.unit'={unit} does not divide data.crop_size {d['crop_size']} "
                         f"(the teacher's drop grid must tile the crop)")


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Cross-key checks that single-key typing cannot express."""
    m, d, mk, loss = cfg["model"], cfg["data"], cfg["masking"], cfg["loss"]
    for dotted, value, lo, hi in (("masking.ratio", mk["ratio"], 0.0, 1.0), ("masking.hint_ratio", mk["hint_ratio"], 0.0, 1.0),
                                  ("noisy_teacher.drop_ratio", cfg["noisy_teacher"]["drop_ratio"], 0.0, 1.0),
                                  ("model.drop_path_rate", m["drop_path_rate"], 0.0, 1.0),
                                  ("loss.center_momentum", loss["center_momentum"], 0.0, 1.0)):
        if not lo <= value <= hi:
            raise ValueError(f"config key '{dotted}' must lie in [{lo}, {hi}], got {value}")
    strategy = masking_strategy(mk["strategy"])
    if strategy.uses_hints:
        if mk["ratio"] <= mk["hint_ratio"]:
            raise ValueError(f"masking.ratio must exceed masking.hint_ratio (the paper's s < r, Sec. III-B), got "
                             f"r={mk['ratio']} <= s={mk['hint_ratio']}")
        if mk["hints"] == "top" and mk["ratio"] + mk["hint_ratio"] > 1.0:
            raise ValueError(f"masking.ratio + masking.hint_ratio must be <= 1 for hints=top, got "
                             f"{mk['ratio']} + {mk['hint_ratio']}")
    if m["arch"] == "swin" and len(m["depths"]) != len(m["num_heads"]):
        raise ValueError(f"model.depths {m['depths']} and model.num_heads {m['num_heads']} differ in length")
    if m["sa_stage"] is not None and not 1 <= m["sa_stage"] <= len(m["depths"]):
        raise ValueError(f"model.sa_stage must be in 1..{len(m['depths'])} or null, got {m['sa_stage']}")
    cls = has_cls(m)
    if strategy.needs_attention and not cls:
        raise ValueError(f"masking.strategy={mk['strategy']} needs an attention map: set model.sa_stage (Swin) or "
                         f"use model.arch=vit, or use random/blockwise masking")
    if loss["aitd"] > 0 and not cls:
        raise ValueError("loss.aitd > 0 needs a [CLS] token: set model.sa_stage or loss.aitd=0")
    for dotted, value in (("optim.weight_decay_end", cfg["optim"]["weight_decay_end"]),
                          ("optim.warmup_epochs", cfg["optim"]["warmup_epochs"]),
                          ("optim.freeze_last_layer_epochs", cfg["optim"]["freeze_last_layer_epochs"]),
                          ("loss.warmup_teacher_temp_epochs", loss["warmup_teacher_temp_epochs"]),
                          ("data.view_offset", d["view_offset"])):
        if value is not None and value < 0:
            raise ValueError(f"config key '{dotted}' must be >= 0, got {value}")
    for dotted, value in ([("optim.lr_base_batch", cfg["optim"]["lr_base_batch"]),
                           ("train.steps_per_epoch", cfg["train"]["steps_per_epoch"])]
                          + [(f"loss.{p}teacher_temp_{n}", loss[f"{p}teacher_temp_{n}"])
                             for p in ("", "warmup_") for n in ("ampd", "aitd", "gitd")]):
        if value is not None and value <= 0:
            raise ValueError(f"config key '{dotted}' must be > 0 or null, got {value}")
    for dotted, value in (("loss.amip", loss["amip"]), ("loss.ampd", loss["ampd"]), ("loss.aitd", loss["aitd"]),
                          ("loss.gitd", loss["gitd"]), ("loss.koleo", loss["koleo"])):
        if value < 0:
            raise ValueError(f"config key '{dotted}' is a loss weight and must be >= 0, got {value}")
    if not any(loss[k] > 0 for k in ("amip", "ampd", "aitd", "gitd")):
        raise ValueError("all loss weights (loss.amip/ampd/aitd/gitd) are 0: nothing to train")
    if loss["koleo"] > 0 and d["batch_size"] < 2:
        raise ValueError(f"config key 'loss.koleo'={loss['koleo']} needs data.batch_size >= 2 (KoLeo spreads the images "
                         f"of one view on each process), got {d['batch_size']}")
    _validate_sa_placement(m, mk, loss)
    _validate_ampd_tokens(m, loss)
    _validate_noise_unit(m, d, cfg["noisy_teacher"])
    positive = [("data.batch_size", d["batch_size"]), ("train.steps", cfg["train"]["steps"]),
                ("train.checkpoint_every", cfg["train"]["checkpoint_every"]), ("train.log_every", cfg["train"]["log_every"]),
                ("train.max_nonfinite", cfg["train"]["max_nonfinite"]), ("loss.out_dim", loss["out_dim"]),
                ("optim.lr", cfg["optim"]["lr"]), ("loss.student_temp", loss["student_temp"]),
                ("model.sa_layer_scale", m["sa_layer_scale"]),
                ("loss.teacher_temp", loss["teacher_temp"]), ("loss.warmup_teacher_temp", loss["warmup_teacher_temp"])]
    positive += [("data.crop_size", c) for c in d["crop_size"]]
    for dotted, value in positive:
        if value <= 0:
            raise ValueError(f"config key '{dotted}' must be > 0, got {value}")
    for dotted, value in (("data.num_workers", d["num_workers"]), ("optim.warmup_steps", cfg["optim"]["warmup_steps"]),
                          ("optim.clip_grad", cfg["optim"]["clip_grad"]), ("optim.min_lr", cfg["optim"]["min_lr"]),
                          ("optim.weight_decay", cfg["optim"]["weight_decay"]),
                          ("loss.warmup_teacher_temp_steps", loss["warmup_teacher_temp_steps"])):
        if value < 0:
            raise ValueError(f"config key '{dotted}' must be >= 0, got {value}")
    for dotted, value in (("train.epochs", cfg["train"]["epochs"]), ("optim.warmup_epochs", cfg["optim"]["warmup_epochs"]),
                          ("loss.warmup_teacher_temp_epochs", loss["warmup_teacher_temp_epochs"])):
        lowest = 1 if dotted == "train.epochs" else 0
        if value is not None and value < lowest:
            raise ValueError(f"config key '{dotted}' must be null or >= {lowest}, got {value}")
    return cfg


def load_config(method: str, preset: str | None = None, config_yaml: str | Path | None = None,
                overrides: list[str] | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Resolve the pretraining config: defaults <- preset <- method (or ablation) <- YAML <- ``--set`` overrides.

    Returns a nested dict with a top-level ``"method"`` name added. Raises ``ValueError`` for an unknown method,
    preset or key, a wrongly typed value, or an inconsistent combination.
    """
    layers: list[Layer] = [] if preset is None else [(f"preset '{preset}'", preset_overlay(preset))]
    layers.append((f"method '{method}'", method_registry.resolve_overrides(method)))
    if config_yaml is not None:
        data = read_yaml(config_yaml)
        data.pop("method", None)  # a resolved config.json/yaml written by a run may carry its method name
        layers.append((f"config file {config_yaml}", data))
    if overrides:
        layers.append(("--set", overrides if isinstance(overrides, Mapping) else parse_set(list(overrides))))
    cfg = apply_layers(DEFAULTS, layers, SCHEMA)
    validate(cfg)
    m = cfg["model"]
    if has_sa(m) and m["sa_placement"] is None:
        m["sa_placement"] = "inline"  # recorded explicitly in config.json / encoder files
    if backbone(m["arch"]).patch_merging and cfg["loss"]["ampd_tokens"] is None:
        cfg["loss"]["ampd_tokens"] = "pre_merge"  # the paper's tokens (Sec. III-C), recorded in config.json
    return {"method": method, **cfg}


def encoder_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What ``smart.models.factory.build_encoder`` gets: the ``model.*`` section plus ``img_size`` = ``data.crop_size`` (the
    ViT's position-embedding grid; for Swin a divisibility check), so crop/patch mismatches fail at build time."""
    return {**copy.deepcopy(dict(cfg["model"])), "img_size": list(cfg["data"]["crop_size"])}
