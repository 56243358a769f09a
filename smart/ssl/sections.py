"""The pretraining config's sections as typed, frozen objects: each component receives the sections it uses, never
the whole config dict (docs/ARCHITECTURE.md "Configuration").

The resolved config (``smart.config.load_config``) stays the plain JSON dict that ``config.json``, checkpoints and
provenance hashes record; :func:`pretrain_sections` turns it into these objects in one place. The classes declare no
defaults: every value comes from the resolved dict, so each default stays written once, in ``smart.config.DEFAULTS``,
and a section's fields are exactly the keys of ``smart.config.SCHEMA[<section>]`` (``tests/config/test_sections.py``).

Types are checked on construction, from the field annotations, by the one checker and error format of
``smart.overlay`` (``config key 'masking.ratio': expected a number, got 'high'``); ints given for float fields become
floats, lists become tuples. Choices among registered names (a masking strategy, the AMPD token side) are checked by
``smart.config.validate`` and by the component that looks the name up; ranges and cross-key rules likewise stay in
``smart.config.validate``.

``model.*`` is not a section here: the encoder factory (``smart.models.factory``) takes the model table as a mapping,
which encoder files also store (``smart.config.encoder_config``).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Mapping

from smart.overlay import Section, field_tag

__all__ = ["DataSection", "EMASection", "LossSection", "MaskingSection", "NoisyTeacherSection", "OptimSection",
           "PretrainSections", "SECTIONS", "TrainSection", "field_tag", "pretrain_sections"]


@dataclass(frozen=True)
class DataSection(Section):
    """``data.*``: what the pretraining loader draws (``smart.data.views.TwoViewDataset``).

    Attributes:
        crop_size: the view's edge lengths in voxels ``(D, H, W)`` (Sec. IV-C: 128³ at 2 mm).
        batch_size: pairs of views per process and step; the global batch is this x processes.
        num_workers: DataLoader worker processes (0 = load in the training process).
        cache: keep decoded CTs (and their body indices) in memory between epochs.
        view_offset: null = two independent random crops; N = view v's corner within N voxels of u's.
        group: train only on manifest rows of this ``group`` (Sec. VII lung vs non-lung); null = all rows.
    """

    NAME: typing.ClassVar[str] = "data"
    crop_size: tuple[int, int, int]
    batch_size: int
    num_workers: int
    cache: bool
    view_offset: int | None
    group: str | None


@dataclass(frozen=True)
class MaskingSection(Section):
    """``masking.*``: the student's masks on the mask grid (Sec. III-B; ``smart.ssl.masking``).

    Attributes:
        strategy: a name of ``smart.ssl.masking.MASKING_STRATEGIES`` (``attention_high`` = SMART).
        ratio: the masked share r of mask-grid tokens (0.7, Sec. IV-C).
        hint_ratio: the share s of tokens revealed as hints (0.1, Sec. III-B); s < r.
        hints: ``attmask`` (reveal a random s·N of the top r·N) or ``top`` (keep the top s·N visible).
    """

    NAME: typing.ClassVar[str] = "masking"
    strategy: str
    ratio: float
    hint_ratio: float
    hints: str


@dataclass(frozen=True)
class NoisyTeacherSection(Section):
    """``noisy_teacher.*``: the teacher's patch drop (Sec. III-D; ``smart.ssl.noisy_teacher``).

    Attributes:
        drop_ratio: the dropped share r_t of drop cubes (0.7; 0 = a plain EMA teacher).
        unit: the dropped cube's edge in voxels (16 = one mask-grid token at the paper's geometry).
    """

    NAME: typing.ClassVar[str] = "noisy_teacher"
    drop_ratio: float
    unit: int


@dataclass(frozen=True)
class LossSection(Section):
    """``loss.*``: weights, DINO heads, temperatures and centring of the four losses (Sec. III-C, Eq. 2-6).

    Attributes:
        amip, ampd, aitd, gitd: loss weights (1, 0.1, 0.1, 0.1, Sec. IV-C); 0 = the loss and its head are off.
        koleo: KoLeo regulariser weight on the AITD/GITD bottlenecks (DINOv2; not in the paper).
        out_dim, head_hidden_dim, head_bottleneck_dim, head_nlayers: the DINO heads' prototypes K and MLP sizes.
        student_temp: the student's softmax temperature.
        teacher_temp, warmup_teacher_temp: the teacher's final and warm-up temperatures, warmed up linearly over
            ``warmup_teacher_temp_steps`` steps (or ``warmup_teacher_temp_epochs`` epochs when not null).
        teacher_temp_<loss>, warmup_teacher_temp_<loss>: per-loss overrides (null = the shared ones).
        center_momentum: the teacher centre's EMA momentum (DINO's 0.9).
        ampd_tokens: ``pre_merge`` / ``post_merge`` stage-3 tokens for AMPD (null on a backbone without merging).
        centering: ``ema`` (DINO's centre) / ``sinkhorn_knopp`` (DINOv2) for the AITD/GITD teacher targets.
    """

    NAME: typing.ClassVar[str] = "loss"
    amip: float
    ampd: float
    aitd: float
    gitd: float
    out_dim: int
    student_temp: float
    teacher_temp: float
    warmup_teacher_temp: float
    warmup_teacher_temp_steps: int
    center_momentum: float
    koleo: float
    head_hidden_dim: int
    head_bottleneck_dim: int
    head_nlayers: int
    ampd_tokens: str | None
    centering: str
    warmup_teacher_temp_epochs: float | None
    teacher_temp_ampd: float | None
    teacher_temp_aitd: float | None
    teacher_temp_gitd: float | None
    warmup_teacher_temp_ampd: float | None
    warmup_teacher_temp_aitd: float | None
    warmup_teacher_temp_gitd: float | None


@dataclass(frozen=True)
class EMASection(Section):
    """``ema.*``: the teacher's EMA momentum, cosine from ``momentum_start`` to ``momentum_end`` over the run
    (Sec. IV-C: 0.996 -> 1; ``smart.ssl.ema``)."""

    NAME: typing.ClassVar[str] = "ema"
    momentum_start: float
    momentum_end: float


@dataclass(frozen=True)
class OptimSection(Section):
    """``optim.*``: AdamW and its schedules (Sec. IV-C; ``smart.ssl.stabilisers``, ``smart.train.optim``).

    Attributes:
        lr, min_lr: peak and final learning rate (cosine with linear warm-up).
        weight_decay, weight_decay_end: cosine weight decay from the first to the second (null end = constant).
        warmup_steps: LR warm-up in steps (``warmup_epochs``, when not null, in epochs instead).
        clip_grad: gradient-norm clip (0 = none).
        lr_base_batch: null = ``lr`` as given; B = scale ``lr`` by global batch / B (DINO's rule).
        freeze_last_layer_epochs: epochs during which the DINO heads' prototype layers get no update.
    """

    NAME: typing.ClassVar[str] = "optim"
    lr: float
    min_lr: float
    weight_decay: float
    warmup_steps: int
    clip_grad: float
    weight_decay_end: float | None
    lr_base_batch: int | None
    warmup_epochs: float | None
    freeze_last_layer_epochs: float


@dataclass(frozen=True)
class TrainSection(Section):
    """``train.*``: the run's length, seed and bookkeeping (``smart.train.pretrain``).

    Attributes:
        steps: optimiser steps (``epochs``, when not null, sets it from the data: ``resolve_epochs``).
        seed: the seed of every draw (weights, crops, masks, patch drops: ``smart.seeding.derive_seed``).
        checkpoint_every, log_every: steps between ``checkpoint_last.pt`` writes / metrics records.
        max_nonfinite: consecutive non-finite steps that stop the run (exit 3).
        steps_per_epoch: null = ceil(#CTs / global batch).
        compile: ``torch.compile`` the student encoder.
        stop_on_collapse: end the run (exit 4) when the collapse rule fires.
    """

    NAME: typing.ClassVar[str] = "train"
    steps: int
    seed: int
    checkpoint_every: int
    log_every: int
    max_nonfinite: int
    steps_per_epoch: int | None
    epochs: int | None
    compile: bool
    stop_on_collapse: bool


# section name in the config -> its class
SECTIONS: dict[str, type[Section]] = {cls.NAME: cls for cls in (
    DataSection, MaskingSection, NoisyTeacherSection, LossSection, EMASection, OptimSection, TrainSection)}


@dataclass(frozen=True)
class PretrainSections:
    """Every typed section of one resolved pretraining config; the wiring (``smart.train.pretrain``) hands each
    component the ones it uses."""

    data: DataSection
    masking: MaskingSection
    noisy_teacher: NoisyTeacherSection
    loss: LossSection
    ema: EMASection
    optim: OptimSection
    train: TrainSection


def pretrain_sections(cfg: Mapping[str, Any]) -> PretrainSections:
    """The typed sections of a resolved pretraining config (``smart.config.load_config``, or a run's
    ``config.json``). ``ValueError`` (one line naming the key) for a missing or unknown key or a wrongly typed
    value."""
    missing = [name for name in SECTIONS if not isinstance(cfg.get(name), Mapping)]
    if missing:
        raise ValueError(f"config section '{missing[0]}' is missing from the pretraining config (expected the "
                         f"resolved config of smart.config.load_config)")
    return PretrainSections(**{name: cls.from_config(cfg[name]) for name, cls in SECTIONS.items()})
