"""Patient-grouped splits: a held-out test set, then stratified group k-fold on the rest (paper Sec. IV-A: LIDC
3-fold stratified cross-validation on 1,624 nodules, the remaining 1,000 as test; nnU-Net style, written once and
shared by every fine-tuning / probing run).

No patient appears in two parts (several nodules of one patient are correlated). The test set has *exactly* the
requested number of samples whenever the patients' sample counts allow it; within that constraint its label mix
matches the cohort's as closely as a greedy fill can (see :func:`_pick_test_groups`). Folds come from scikit-learn's
``StratifiedGroupKFold``. Rows without a label are left out and counted.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def _test_count(test_size: int | float, n: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise ValueError(f"test_size must be a count (int >= 1) or a fraction in (0, 1), got {test_size!r}")
    if isinstance(test_size, Integral):
        count = int(test_size)
    elif 0 < test_size < 1:
        count = int(math.floor(test_size * n + 0.5))
    elif float(test_size).is_integer() and test_size >= 1:
        count = int(test_size)
    else:
        raise ValueError(f"test_size must be a count (int >= 1) or a fraction in (0, 1), got {test_size!r}")
    if not 0 <= count < n:
        raise ValueError(f"test_size {test_size!r} gives {count} test samples, but there are {n} labelled samples")
    return count


def _label_targets(label_counts: pd.Series, total: int) -> dict[Any, int]:
    """Per-label test counts proportional to the cohort, summing exactly to ``total`` (largest remainder)."""
    share = label_counts / label_counts.sum() * total
    base = np.floor(share).astype(int)
    rest = total - int(base.sum())
    order = (share - base).sort_values(ascending=False, kind="mergesort").index[:rest]
    base.loc[order] += 1
    return base.to_dict()


def _pick_test_groups(per_group: pd.DataFrame, total: int, rng: np.random.Generator,
                      cover_labels: bool = False) -> list[Any]:
    """Greedy fill in a seeded random patient order.

    Pass 1 takes a patient only if no label exceeds its proportional target; pass 2 (rarely needed: patients with
    many nodules) fills the remaining total ignoring labels. Both passes never exceed ``total``; single-sample
    patients make the fill exact. ``cover_labels`` (the inner validation split, :func:`grouped_holdout`) adds a pass
    between them: a label still absent takes the smallest patient holding it (the first in the order on ties), even
    beyond ``total`` — an AUC needs both classes more than the split needs its exact size.
    """
    targets = _label_targets(per_group.sum(axis=0), total)
    order = per_group.index[rng.permutation(len(per_group))]
    taken, chosen = dict.fromkeys(per_group.columns, 0), []
    for group in order:
        counts = per_group.loc[group]
        if all(taken[c] + counts[c] <= targets[c] for c in per_group.columns):
            chosen.append(group)
            for c in per_group.columns:
                taken[c] += int(counts[c])
    if cover_labels:
        for label in per_group.columns:
            holders = [g for g in order if g not in chosen and per_group.loc[g, label] > 0]
            if taken[label] == 0 and holders:
                smallest = min(holders, key=lambda g: int(per_group.loc[g].sum()))  # least overshoot; first on ties
                chosen.append(smallest)
                for c in per_group.columns:
                    taken[c] += int(per_group.loc[smallest, c])
    n_taken = sum(taken.values())
    if n_taken < total:
        picked = set(chosen)
        for group in order:
            size = int(per_group.loc[group].sum())
            if group not in picked and n_taken + size <= total:
                chosen.append(group)
                n_taken += size
    return chosen


def _counts(frame: pd.DataFrame, label_column: str, group_column: str) -> dict[str, Any]:
    by_label = frame[label_column].value_counts().sort_index()
    return {"n": int(len(frame)), "patients": int(frame[group_column].nunique()),
            "by_label": {str(k): int(v) for k, v in by_label.items()}}


def make_splits(frame: pd.DataFrame, test_size: int | float, n_folds: int = 3, seed: int = 0,
                group_column: str = "patient_id", label_column: str = "label",
                id_column: str = "sample_id") -> dict[str, Any]:
    """Held-out test set + stratified group k-fold on the rest; the ``splits.json`` dict of docs/ARCHITECTURE.md.

    Args:
        frame: cohort table with ``id_column``, ``group_column`` and ``label_column``.
        test_size: number of test samples (int) or a fraction of the labelled samples in (0, 1).
        n_folds: cross-validation folds on the non-test samples (>= 2).
        seed: seeds the test-patient order and the fold shuffling; equal inputs and seed give equal splits.

    Returns:
        ``{"seed", "n_folds", "test": [ids], "folds": [[ids] x n_folds], "group_column", "label_column",
        "counts": {"total", "test", "folds": [...], "unlabelled"}}``; ids sorted within each part.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, Integral) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    missing = [c for c in (id_column, group_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(f"cohort lacks column(s) {missing}; it has {list(frame.columns)}")
    if frame[id_column].duplicated().any():
        dup = frame.loc[frame[id_column].duplicated(), id_column].iloc[0]
        raise ValueError(f"{id_column} must be unique; {dup!r} appears more than once")
    if frame[group_column].isna().any():
        raise ValueError(f"{group_column} is empty in {int(frame[group_column].isna().sum())} row(s)")

    labelled = frame.loc[frame[label_column].notna(), [id_column, group_column, label_column]].copy()
    labelled[label_column] = labelled[label_column].astype(int)
    total = _test_count(test_size, len(labelled))

    per_group = pd.crosstab(labelled[group_column], labelled[label_column]).sort_index()
    rng = np.random.default_rng(seed)
    test_groups = set(_pick_test_groups(per_group, total, rng))
    is_test = labelled[group_column].isin(test_groups)
    test, rest = labelled[is_test], labelled[~is_test]

    n_groups_rest = rest[group_column].nunique()
    if n_groups_rest < n_folds:
        raise ValueError(f"only {n_groups_rest} patients remain after the test split; cannot make {n_folds} folds")
    folder = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = [rest.iloc[idx] for _, idx in folder.split(rest, rest[label_column], rest[group_column])]

    return {
        "seed": int(seed), "n_folds": int(n_folds),
        "test": sorted(test[id_column].astype(str)),
        "folds": [sorted(f[id_column].astype(str)) for f in folds],
        "group_column": group_column, "label_column": label_column,
        "counts": {"total": _counts(labelled, label_column, group_column),
                   "test": _counts(test, label_column, group_column),
                   "folds": [_counts(f, label_column, group_column) for f in folds],
                   "unlabelled": int(len(frame) - len(labelled))},
    }


def grouped_holdout(frame: pd.DataFrame, fraction: float, seed: int, group_column: str = "patient_id",
                    label_column: str = "label") -> pd.Series:
    """Which rows of ``frame`` to hold out: whole patients, ``round(fraction·n)`` rows when the patients' sizes allow,
    the label mix as close to ``frame``'s as the greedy fill of :func:`_pick_test_groups` gets, and at least one
    patient of every label present (even beyond the target size). Deterministic in ``seed``.

    The inner validation split of a downstream fold (``smart.downstream.protocol``) — the same patient-grouped,
    stratified fill as the test set of :func:`make_splits`. Returns a boolean Series on ``frame.index``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction!r}")
    labels = frame[label_column].astype(int)
    per_group = pd.crosstab(frame[group_column], labels).sort_index()
    total = max(1, int(math.floor(fraction * len(frame) + 0.5)))
    groups = set(_pick_test_groups(per_group, total, np.random.default_rng(seed), cover_labels=True))
    return frame[group_column].isin(groups)
