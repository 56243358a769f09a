"""Does each GPU rule group's job fit the card it asks for? The workflow's before-any-job check and ``smart plan``.

A job fits when its predicted peak tensor memory (:mod:`smart.resources.memory`, at the group's largest job,
:mod:`smart.resources.workload`) is at most the card's memory less :data:`smart.resources.cards.RESERVE_GIB`. A
refusal names the rule group, the predicted GiB, the card and its GiB, and the settings that would make it fit
(computed from the same model: the largest batch / micro-batch that fits, the measured lower-memory settings, or
the smallest listed card that holds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from smart.resources.cards import CARDS, RESERVE_GIB, card_memory_gib
from smart.resources.memory import GIB, coefficients_for, largest_batch_that_fits, load_coefficients, predicted_peak_bytes
from smart.resources.workload import Workload, gpu_groups, workload


@dataclass
class GroupFit:
    group: str
    gpus: int
    gpu_model: str
    gpu_mem_limit_gb: float
    predicted_peak_gb: float
    fits: bool
    workload: Workload
    suggestions: list[str] = field(default_factory=list)

    def refusal(self) -> str:
        w = self.workload
        return (f"resources.{self.group}: one job is predicted to need {self.predicted_peak_gb:.1f} GiB of GPU memory "
                f"({w.step} step, {'x'.join(map(str, w.crop))} x {w.batch} in flight, {w.variant}) but "
                f"{self.gpu_model} has {self.gpu_mem_limit_gb:g} GiB ({RESERVE_GIB:g} GiB held back); to fit: "
                + "; or ".join(self.suggestions))


def _divisors_desc(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def _suggestions(w: Workload, limit_bytes: float, predicted: float, data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    largest = largest_batch_that_fits(w.step, w.variant, w.crop, limit_bytes, data)
    if w.group == "finetune":
        fitting = [d for d in _divisors_desc(w.effective_batch) if d <= largest]
        if fitting:
            out.append(f"finetune.set micro_batch_size: {fitting[0]} (divides batch_size {w.effective_batch}; the "
                       f"effective batch stays {w.effective_batch})")
        bf16 = w.variant.startswith("bf16")
        for variant, setting in (("bf16+checkpointing", "activation_checkpointing: true" if bf16 else
                                  "precision: bf16 and activation_checkpointing: true"),
                                 ("fp32+checkpointing", "activation_checkpointing: true")):
            if variant == w.variant or (bf16 and variant.startswith("fp32")):
                continue
            try:
                alt = largest_batch_that_fits(w.step, variant, w.crop, limit_bytes, data)
            except ValueError:
                continue  # that setting was not measured
            ok = [d for d in _divisors_desc(w.effective_batch) if d <= alt]
            if ok:
                out.append(f"finetune.set {setting} with micro_batch_size: {ok[0]}")
                break
    elif largest >= 1:
        key = next(iter(w.knobs), None)
        if key:
            out.append(f"{key}: {largest} (now {w.batch})")
    need_gib = predicted / GIB + RESERVE_GIB
    cards = sorted((c for c in CARDS.values() if c.memory_gib >= need_gib), key=lambda c: c.memory_gib)
    card = f"gpu_model: {cards[0].name} ({cards[0].memory_gib:g} GiB)" if cards else "a card with more memory"
    out.append(f"resources.{w.group}.{card}")
    return out


def check_fits(config: Mapping[str, Any], data: dict[str, Any] | None = None) -> list[GroupFit]:
    """One :class:`GroupFit` per rule group with ``resources.<group>.gpu > 0``. ``ValueError`` naming the key for an
    unknown card, a crop the encoder cannot take or a micro-batch that does not divide the batch."""
    groups = gpu_groups(config)
    if not groups:
        return []
    data = data if data is not None else load_coefficients()
    out = []
    for group in groups:
        res = config["resources"][group]
        label, mem_gib = card_memory_gib(res.get("gpu_model", ""), res.get("gpu_mem_gb"), f"resources.{group}")
        w = workload(group, config)
        coefficients_for(w.step, w.variant, data)
        predicted = predicted_peak_bytes(w.step, w.variant, w.crop, w.batch, data)
        limit = (mem_gib - RESERVE_GIB) * GIB
        fit = GroupFit(group, int(res["gpu"]), label, mem_gib, round(predicted / GIB, 2), predicted <= limit, w)
        if not fit.fits:
            fit.suggestions = _suggestions(w, limit, predicted, data)
        out.append(fit)
    return out


def refuse_unfit(config: Mapping[str, Any]) -> None:
    """The workflow's before-any-job check: ``ValueError`` naming every GPU rule group whose job does not fit."""
    bad = [f.refusal() for f in check_fits(config) if not f.fits]
    if bad:
        raise ValueError("GPU memory: " + " | ".join(bad) + " (smart plan --configfile ... shows the whole plan)")


PLAN_ENV = "SMART_PLAN_CONFIG"


def workflow_check(config: Mapping[str, Any]) -> None:
    """The hook rules/common.smk calls once the config is validated and filled: refuse a plan whose GPU jobs do not
    fit (:func:`refuse_unfit`). Under ``smart plan`` (``$SMART_PLAN_CONFIG`` set) it writes the resolved config there
    instead and does not refuse, so the plan can show every rule, fitting or not."""
    import os

    target = os.environ.get(PLAN_ENV)
    if target:
        from smart.atomic import write_json

        write_json(target, dict(config))
        return
    refuse_unfit(config)
