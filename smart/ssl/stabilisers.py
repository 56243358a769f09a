"""The self-distillation stabilisers of the reference recipes, resolved to pure functions of the global step.

SMART (Sec. IV-C) trains with AdamW, a cosine learning rate with warm-up, EMA momentum 0.996 → 1 and "centering and
sharpening operations [3], [12]" against degenerate solutions; the rest of the recipe is the one of its anchors
(DINO [12], iBOT [2], SMIT [3]). The knobs those recipes rely on, each a config key:

* ``optim.lr_base_batch`` — DINO's linear scaling rule ``lr · B / 256`` with ``B`` the *global* batch (per-process
  batch × processes); ``null`` uses ``optim.lr`` as given.
* ``optim.warmup_epochs`` — warm-up length in epochs (SMART: 80 of 800); ``null`` uses ``optim.warmup_steps``.
* ``optim.weight_decay`` → ``optim.weight_decay_end`` — DINO's cosine weight-decay schedule 0.04 → 0.4;
  ``weight_decay_end: null`` keeps the decay constant.
* ``optim.freeze_last_layer_epochs`` — the weight-normalised prototype layer of every DINO head gets no update in the
  first epoch(s) (DINO/iBOT ``freeze_last_layer=1``): early prototypes move fastest and are what collapses first.
* per-loss teacher temperatures — ``loss.teacher_temp_<loss>`` / ``loss.warmup_teacher_temp_<loss>`` (``null`` =
  the shared ``loss.teacher_temp`` / ``loss.warmup_teacher_temp``) with a linear warm-up of
  ``loss.warmup_teacher_temp_epochs`` (``null`` = ``loss.warmup_teacher_temp_steps``). A teacher temperature above
  ~0.04 early is DINO's known route to a uniform teacher; SMIT keeps its patch teacher at 0.04 while the [CLS]
  teacher warms up, which the paper preset reproduces with ``teacher_temp_ampd = warmup_teacher_temp_ampd = 0.04``.

An *epoch* is ``train.steps_per_epoch`` steps, or ``ceil(#CTs / global batch)`` when that key is ``null`` (one pass
over the pretraining CTs, each giving one pair of views per epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from smart.ssl.schedules import cosine_schedule, teacher_temperature
from smart.ssl.sections import LossSection, OptimSection, TrainSection

__all__ = ["DISTILL_LOSSES", "Stabilisers", "epochs_to_steps", "resolve_stabilisers", "steps_per_epoch"]

DISTILL_LOSSES = ("ampd", "aitd", "gitd")


def steps_per_epoch(n_samples: int, global_batch: int, override: int | None = None) -> int:
    """``override`` if given, else ``ceil(n_samples / global_batch)``; raises ``ValueError`` on non-positive input."""
    if override is not None:
        if int(override) < 1:
            raise ValueError(f"train.steps_per_epoch must be >= 1, got {override}")
        return int(override)
    if n_samples < 1 or global_batch < 1:
        raise ValueError(f"an epoch needs >= 1 sample and a batch >= 1, got {n_samples} samples, batch {global_batch}")
    return math.ceil(n_samples / global_batch)


def epochs_to_steps(epochs: float, per_epoch: int) -> int:
    """``round(epochs · per_epoch)`` (``epochs`` may be fractional, e.g. 0.5 epoch of warm-up)."""
    if epochs < 0:
        raise ValueError(f"a number of epochs must be >= 0, got {epochs}")
    return int(round(epochs * per_epoch))


@dataclass(frozen=True)
class Stabilisers:
    """Every step-dependent training quantity, resolved once per run. All methods are pure functions of ``step``.

    Attributes:
        total_steps: ``train.steps``.
        steps_per_epoch: steps in one epoch (see module docstring).
        lr: peak learning rate after batch scaling; ``min_lr`` the cosine floor.
        warmup_steps: linear LR warm-up from 0 to ``lr``.
        weight_decay, weight_decay_end: cosine weight decay from the first to the second over ``total_steps``.
        freeze_last_layer_steps: steps during which DINO-head prototype layers are not updated.
        teacher_temps: per distillation loss ``(warmup_temp, final_temp)``; ``teacher_warmup_steps`` its ramp.
    """

    total_steps: int
    steps_per_epoch: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    weight_decay_end: float
    freeze_last_layer_steps: int
    teacher_temps: dict[str, tuple[float, float]]
    teacher_warmup_steps: int

    def lr_at(self, step: int) -> float:
        """Linear warm-up 0 → ``lr`` over ``warmup_steps``, then half cosine to ``min_lr`` at ``total_steps``."""
        return cosine_schedule(step, self.total_steps, self.lr, self.min_lr, warmup_steps=self.warmup_steps)

    def weight_decay_at(self, step: int) -> float:
        """Half cosine from ``weight_decay`` (step 0) to ``weight_decay_end`` (``total_steps``), DINO's schedule."""
        return cosine_schedule(step, self.total_steps, self.weight_decay, self.weight_decay_end)

    def last_layer_frozen(self, step: int) -> bool:
        """True while the DINO heads' prototype layers must not be updated (``step < freeze_last_layer_steps``)."""
        return step < self.freeze_last_layer_steps

    def teacher_temp_at(self, loss: str, step: int) -> float:
        """Teacher temperature of ``loss`` (ampd/aitd/gitd): linear from its warm-up value to its final value over
        ``teacher_warmup_steps``, constant afterwards."""
        if loss not in self.teacher_temps:
            raise ValueError(f"no teacher temperature for loss {loss!r}; known: {sorted(self.teacher_temps)}")
        warm, final = self.teacher_temps[loss]
        return teacher_temperature(step, warm, final, self.teacher_warmup_steps)


def resolve_stabilisers(optim: OptimSection, loss: LossSection, train: TrainSection, batch_size: int,
                        n_samples: int, world_size: int = 1) -> Stabilisers:
    """Resolve the ``optim``, ``loss`` and ``train`` sections (``smart.ssl.sections``) for ``n_samples`` pretraining
    CTs on ``world_size`` processes of ``batch_size`` pairs each (``data.batch_size``). Epoch-valued keys become step
    counts; ``optim.lr`` is scaled by the global batch when ``optim.lr_base_batch`` is set. Raises ``ValueError`` for
    an empty data set or a zero batch."""
    total = train.steps
    global_batch = int(batch_size) * int(world_size)
    per_epoch = steps_per_epoch(n_samples, global_batch, train.steps_per_epoch)
    lr = optim.lr
    if optim.lr_base_batch is not None:
        lr = lr * global_batch / float(optim.lr_base_batch)
    warmup = (optim.warmup_steps if optim.warmup_epochs is None else epochs_to_steps(optim.warmup_epochs, per_epoch))
    wd = optim.weight_decay
    wd_end = wd if optim.weight_decay_end is None else optim.weight_decay_end
    temp_warmup = (loss.warmup_teacher_temp_steps if loss.warmup_teacher_temp_epochs is None
                   else epochs_to_steps(loss.warmup_teacher_temp_epochs, per_epoch))
    temps = {}
    for name in DISTILL_LOSSES:
        warm = getattr(loss, f"warmup_teacher_temp_{name}")
        final = getattr(loss, f"teacher_temp_{name}")
        temps[name] = (loss.warmup_teacher_temp if warm is None else warm,
                       loss.teacher_temp if final is None else final)
    return Stabilisers(
        total_steps=total, steps_per_epoch=per_epoch, lr=lr, min_lr=optim.min_lr,
        warmup_steps=min(warmup, total), weight_decay=wd, weight_decay_end=wd_end,
        freeze_last_layer_steps=epochs_to_steps(optim.freeze_last_layer_epochs, per_epoch),
        teacher_temps=temps, teacher_warmup_steps=temp_warmup,
    )
