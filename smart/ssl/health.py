"""Training-health figures of self-distillation and the collapse rule (issue 19; docs/ARCHITECTURE.md "Training
health").

A DINO-style teacher can collapse while every loss still looks healthy: when its targets are uniform (or one
prototype) for every input, the cross-entropy the student minimises is just as small as with informative targets.
These pure functions measure what the losses cannot show; :class:`smart.ssl.self_distillation.SelfDistillation`
computes them on logging steps only (``monitor=True``), the pretraining loop logs them to ``metrics.jsonl`` and
TensorBoard and applies :class:`CollapseRule`.

* :func:`teacher_collapse_stats` — entropy and between-row spread of the teacher targets on the rows a loss uses
  (``teacher_entropy/<loss>``, ``teacher_spread/<loss>``; AMPD: the masked tokens the noisy teacher saw, the masked
  tokens it dropped reported as ``.../ampd_dropped``).
* :func:`top1_agreement` — how often the student's most likely prototype is the teacher's (``agreement/<loss>``).
* :func:`effective_rank` — RankMe (Garrido et al., ICML 2023, "RankMe: Assessing the downstream performance of
  pretrained self-supervised representations by their rank") of a set of embeddings (``effective_rank/cls``,
  ``effective_rank/pooled``: the student's [CLS] and pooled embeddings of every step in the logging window).
* :func:`body_tokens` / :func:`masked_body_share` — the share of the student's masked tokens that lie inside the body
  (``mask_body_share``): attention-guided masking should hide anatomy, not the air around it.

Every weighted function takes ``weights`` (1 = the row counts, 0 = it does not) instead of a boolean selection, so it
runs on the device without a host synchronisation; a set of rows with zero total weight gives NaN ("no such rows"),
never a made-up 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from smart.data.body_index import BODY_HU
from smart.data.intensity import hu_to_unit

__all__ = ["COLLAPSE_ENTROPY", "COLLAPSE_LOGS", "COLLAPSE_SPREAD", "CollapseRule",
           "body_tokens", "effective_rank", "masked_body_share", "teacher_collapse_stats", "top1_agreement"]

# Collapse rule thresholds (documented in docs/ARCHITECTURE.md "Training health"):
COLLAPSE_ENTROPY = 0.95  # teacher_entropy / ln K at or above: targets near uniform (the issue-19 AITD teacher: 0.95)
COLLAPSE_SPREAD = 0.05   # teacher_spread * K at or below: every row gets nearly the same target (input-independent)
COLLAPSE_LOGS = 5        # consecutive logs a figure must stay past its threshold before the rule fires


def _row_weights(rows: Tensor, weights: Tensor | None) -> Tensor:
    if weights is None:
        return rows.new_ones(rows.shape[0])
    w = weights.detach().float().reshape(-1)
    if w.numel() != rows.shape[0]:
        raise ValueError(f"weights have {w.numel()} entries for {rows.shape[0]} rows")
    return w


def _weighted_mean(values: Tensor, w: Tensor) -> Tensor:
    """``Σ w·v / Σ w`` over the first axis; NaN when ``Σ w = 0`` (no rows)."""
    total = w.sum()
    return (values * w.reshape(-1, *([1] * (values.dim() - 1)))).sum(0) / total


def teacher_collapse_stats(probs: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Entropy and spread of teacher distributions ``probs`` ``(..., K)`` over the rows ``weights`` selects.

    Args:
        probs: teacher targets (rows = images or tokens; any leading shape, flattened).
        weights: ``None`` (every row) or one weight per row (same leading shape / count), 1 = counts.

    Returns ``(entropy, spread)``, float32 scalars: the weighted mean row entropy ``-Σ_k p_k ln p_k`` (nats; ``ln K``
    = uniform collapse, 0 = one-hot) and the between-row spread ``mean_k std_w(p_k)`` (weighted population std over
    the rows; 0 = every row has the same target, i.e. the teacher ignores its input, which is either collapse mode).
    NaN when the weights sum to 0; the spread of a single row is 0. DINO avoids both modes by balancing centring
    against sharpening; at demo scale the balance can fail without any code bug.
    """
    rows = probs.detach().float().reshape(-1, probs.shape[-1])
    w = _row_weights(rows, weights)
    entropy = _weighted_mean(-(rows * rows.clamp_min(1e-30).log()).sum(dim=-1), w)
    mean = _weighted_mean(rows, w)
    var = _weighted_mean((rows - mean) ** 2, w)
    return entropy, var.clamp_min(0).sqrt().mean()


def top1_agreement(student_logits: Tensor, teacher_probs: Tensor, weights: Tensor | None = None) -> Tensor:
    """Share of rows whose student top-1 prototype equals the teacher's: ``Σ w·[argmax s = argmax t] / Σ w``.

    ``student_logits`` and ``teacher_probs`` ``(..., K)`` of one shape, paired row by row as the loss pairs them
    (cross-view for AITD/GITD, same token for AMPD); the student's sharpening does not move its argmax. NaN when the
    weights sum to 0. A collapsed teacher whose target is one prototype gives agreement 1 without any learning, so
    read it beside the entropy."""
    if student_logits.shape != teacher_probs.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher probs "
                         f"{tuple(teacher_probs.shape)} differ in shape")
    k = student_logits.shape[-1]
    match = (student_logits.detach().reshape(-1, k).argmax(-1) == teacher_probs.detach().reshape(-1, k).argmax(-1))
    return _weighted_mean(match.float(), _row_weights(match, weights))


def effective_rank(embeddings: Tensor, eps: float = 1e-7) -> Tensor:
    """RankMe of ``embeddings`` ``(n, C)``: ``exp(-Σ_k p_k ln p_k)`` with ``p_k = σ_k / Σ_j σ_j + eps`` over the
    singular values ``σ`` of the (uncentred) matrix, as Garrido et al. (2023) define it. Lies in ``[1, min(n, C)]``
    up to ``eps``: ``r`` equal singular values give ``r``, one dominant direction gives ~1 (dimensional collapse).
    Computed in float32 on the embeddings' device. ``ValueError`` for a tensor that is not ``(n >= 1, C >= 1)``."""
    if embeddings.dim() != 2 or 0 in embeddings.shape:
        raise ValueError(f"effective_rank needs (n >= 1, C >= 1) embeddings, got shape {tuple(embeddings.shape)}")
    sigma = torch.linalg.svdvals(embeddings.detach().float())
    p = sigma / sigma.sum() + eps
    return torch.exp(-(p * p.log()).sum())


def body_tokens(views: Tensor, token_voxels: Sequence[int], threshold: float | None = None) -> Tensor:
    """Which tokens of a token grid lie inside the body: ``views`` ``(B, 1, D, H, W)`` in the units of
    :func:`smart.data.intensity.hu_to_unit`, ``token_voxels`` the voxel edges of one token; a token is body when at
    least half of its voxels are above ``threshold`` (default: :data:`smart.data.body_index.BODY_HU`, the rule that
    centres the views). Returns bool ``(B, D/td, H/th, W/tw)``."""
    if views.dim() != 5 or views.shape[1] != 1:
        raise ValueError(f"views must be (B, 1, D, H, W), got shape {tuple(views.shape)}")
    kernel = tuple(int(t) for t in token_voxels)
    if len(kernel) != 3 or any(s % t for s, t in zip(views.shape[2:], kernel)):
        raise ValueError(f"token_voxels {tuple(token_voxels)} must tile the views {tuple(views.shape[2:])}")
    cut = float(hu_to_unit(torch.tensor(BODY_HU))) if threshold is None else float(threshold)
    share = F.avg_pool3d((views.detach() > cut).float(), kernel_size=kernel, stride=kernel)
    return share[:, 0] >= 0.5


def masked_body_share(masks: Tensor, body: Tensor) -> Tensor:
    """``#(masked ∧ body) / #masked`` over the batch: ``masks`` and ``body`` bool of one shape (the mask grid). NaN
    when nothing is masked."""
    if masks.shape != body.shape:
        raise ValueError(f"masks {tuple(masks.shape)} and body {tuple(body.shape)} differ in shape")
    m = masks.float()
    return (m * body.float()).sum() / m.sum()


def _collapsed(record: Mapping[str, float], out_dim: int) -> dict[str, str]:
    """Head -> the figures that put it past a threshold in one log record (heads without figures are skipped)."""
    found: dict[str, list[str]] = {}
    log_k = math.log(out_dim)
    for key, value in record.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        kind, _, head = key.partition("/")
        if head.endswith("_dropped"):
            continue  # rows no loss target depends on the input for (the noisy teacher dropped them): diagnostic only
        if kind == "teacher_entropy" and value >= COLLAPSE_ENTROPY * log_k:
            found.setdefault(head, []).append(f"{key}={value / log_k:.3f} ln K")
        elif kind == "teacher_spread" and value * out_dim <= COLLAPSE_SPREAD:
            found.setdefault(head, []).append(f"{key}={value:.3g} (x K = {value * out_dim:.3g})")
    return {head: ", ".join(figures) for head, figures in found.items()}


@dataclass
class CollapseRule:
    """The collapse rule: a head (the teacher of a distillation loss, named by the loss) is *collapsed* when, for
    :data:`COLLAPSE_LOGS` consecutive logs at or after step ``start_step``, one of its figures is past its threshold —
    ``teacher_entropy >= COLLAPSE_ENTROPY·ln K`` (uniform targets) or ``teacher_spread·K <= COLLAPSE_SPREAD``
    (input-independent targets; ``1/K`` is the size of a uniform target, so ``spread·K`` compares across K).

    ``effective_rank`` is logged but not part of the rule: RankMe of uncentred embeddings over a short window is
    already ~1.2-1.5 for a freshly initialised [CLS] in the ``tiny`` preset (a 12-step run, 4 rows per log), where it
    measures the common offset of the embeddings as much as their collapse, so a threshold would fire on healthy
    starts. Logs before ``start_step`` (the LR warm-up, when a fresh teacher is near uniform by construction) do not
    count, nor do the ``*_dropped`` figures (tokens the noisy teacher zeroed: near-constant targets by construction).

    :meth:`update` takes one log record and returns one message per head that has *just* crossed the
    ``logs``-in-a-row mark (each head is reported once per episode; a healthy log resets it).
    """

    out_dim: int
    start_step: int = 0
    logs: int = COLLAPSE_LOGS
    _runs: dict[str, int] = field(default_factory=dict)

    def update(self, record: Mapping[str, float]) -> dict[str, str]:
        if int(record.get("step", 0)) < self.start_step:
            return {}
        now = _collapsed(record, self.out_dim)
        self._runs = {head: self._runs.get(head, 0) + 1 for head in now}
        return {head: f"{head}: {now[head]} for {self.logs} logs in a row (step {int(record['step'])})"
                for head in now if self._runs[head] == self.logs}
