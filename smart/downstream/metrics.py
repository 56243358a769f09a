"""Downstream metrics (paper Sec. IV-D): AUC with a DeLong 95 % CI, AP50 / AR50, DSC, mean ± std over folds.

Decisions the paper leaves open (docs/evaluation.md):

* **AUC CI** — DeLong's variance (DeLong et al., 1988) computed with the midrank formulation of Sun & Xu (2014),
  normal approximation ``AUC ± z·sqrt(var)`` clipped to [0, 1]. Deterministic, no resampling seed needed.
* **AP50 / AR50** — precision and recall of the positive class when a sample is called positive at probability
  ``>= 0.5``. Stored as fractions in metrics.json; the tables print them in % like the paper. Precision with no
  positive call is 0 (nothing correct was retrieved).
* **DSC** — ``2|A∩B| / (|A|+|B|)``; two empty masks agree perfectly, so DSC(∅, ∅) = 1.
* **mean ± std** — sample standard deviation (ddof = 1) over folds / classes / cases; 0 for a single value.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

THRESHOLD = 0.5


def _binary_inputs(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) differ in length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0/1, got values {sorted(set(y.tolist()))}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return y, s


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks where tied values share the mean of the ranks they occupy."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j < len(x) and xs[j] == xs[i]:
            j += 1
        ranks[order[i:j]] = 0.5 * (i + j - 1) + 1.0
        i = j
    return ranks


def delong_variance(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """``(auc, var)`` by DeLong's method: ``var = S10/m + S01/n`` with the structural components
    ``V10_i = (R_i - R^X_i)/n`` (positives) and ``V01_j = 1 - (R_j - R^Y_j)/m`` (negatives), R the midrank in the pooled
    sample and R^X / R^Y the midrank within its own class (Sun & Xu 2014, Eq. 3-6)."""
    y, s = _binary_inputs(labels, scores)
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both classes; got {m} positives and {n} negatives")
    pooled = _midranks(np.concatenate([pos, neg]))
    v10 = (pooled[:m] - _midranks(pos)) / n
    v01 = 1.0 - (pooled[m:] - _midranks(neg)) / m
    auc = float(v10.mean())
    s10 = float(np.var(v10, ddof=1)) if m > 1 else 0.0
    s01 = float(np.var(v01, ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def auc_with_ci(labels: Sequence[int], scores: Sequence[float], level: float = 0.95) -> tuple[float, list[float]]:
    """ROC AUC (sklearn) and its DeLong ``level`` confidence interval ``[lo, hi]``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y, s = _binary_inputs(labels, scores)
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    if math.isnan(auc):
        raise ValueError(f"AUC needs both classes; got labels {sorted(set(y.tolist()))}")
    _, var = delong_variance(y, s)
    half = float(norm.ppf(0.5 + level / 2.0)) * math.sqrt(max(var, 0.0))
    return auc, [max(0.0, auc - half), min(1.0, auc + half)]


def precision_recall_at(labels: Sequence[int], scores: Sequence[float], threshold: float = THRESHOLD) -> tuple[float, float]:
    """(AP50, AR50): precision and recall of class 1 when ``score >= threshold`` is called positive."""
    y, s = _binary_inputs(labels, scores)
    called = s >= threshold
    tp = int(np.sum(called & (y == 1)))
    precision = tp / int(called.sum()) if called.any() else 0.0
    recall = tp / int(y.sum()) if y.any() else 0.0
    return float(precision), float(recall)


def binary_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, Any]:
    """The metrics.json block for one split: ``auc, auc_ci, ap50, ar50, n, n_pos``. AUC is ``None`` when the split
    holds one class only (tiny folds), so a run still records what it can."""
    y, s = _binary_inputs(labels, scores)
    ap50, ar50 = precision_recall_at(y, s)
    out: dict[str, Any] = {"auc": None, "auc_ci": None, "ap50": ap50, "ar50": ar50, "n": int(len(y)), "n_pos": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["auc"], out["auc_ci"] = auc_with_ci(y, s)
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice-Sørensen coefficient of two boolean masks of equal shape; DSC(∅, ∅) = 1."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """``(mean, sample std, n)`` of the non-missing values; std is 0 for one value, NaNs for none."""
    vals = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=np.float64)
    if vals.size == 0:
        return float("nan"), float("nan"), 0
    std = float(np.std(vals, ddof=1)) if vals.size > 1 else 0.0
    return float(vals.mean()), std, int(vals.size)


def format_mean_std(values: Iterable[float | None], digits: int = 3, scale: float = 1.0) -> str:
    """``"0.895 ± 0.012"`` (``scale=100`` for percentages); ``"—"`` when nothing ran."""
    mean, std, n = mean_std(values)
    if n == 0:
        return "—"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"
