"""Metrics against hand computations and independently written pairwise formulas."""

import math

import numpy as np
import pytest

from smart.downstream import metrics


def _pairwise_delong(labels, scores):
    """DeLong written out with explicit pairs (psi = 1, 1/2, 0), not midranks."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    psi = lambda x, y: 1.0 if x > y else (0.5 if x == y else 0.0)  # noqa: E731
    v10 = [sum(psi(x, y) for y in neg) / len(neg) for x in pos]
    v01 = [sum(psi(x, y) for x in pos) / len(pos) for y in neg]
    auc = sum(v10) / len(v10)
    s10 = sum((v - auc) ** 2 for v in v10) / (len(v10) - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (len(v01) - 1)
    return auc, s10 / len(pos) + s01 / len(neg)


def test_auc_ci_hand_computed():
    # positives 0.9, 0.4; negatives 0.5, 0.1: 3 of 4 pairs ordered -> AUC 0.75;
    # V10 = [1, .5], V01 = [.5, 1] -> S10 = S01 = 0.125 -> var = 0.125.
    auc, ci = metrics.auc_with_ci([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    assert auc == pytest.approx(0.75)
    half = 1.959963984540054 * math.sqrt(0.125)
    assert ci == pytest.approx([0.75 - half, 1.0])
    assert metrics.delong_variance([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx((0.75, 0.125))


def test_delong_matches_pairwise_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 40)
    labels[:2] = [0, 1]
    scores = np.round(rng.random(40), 1)  # rounding creates ties
    assert metrics.delong_variance(labels, scores) == pytest.approx(_pairwise_delong(labels.tolist(), scores.tolist()))
    auc, (lo, hi) = metrics.auc_with_ci(labels, scores)
    assert lo < auc < hi


def test_ap50_ar50():
    labels = [1, 1, 0, 0, 1, 1]
    scores = [0.9, 0.3, 0.6, 0.2, 0.5, 0.1]  # called positive (>= .5): 0.9, 0.6, 0.5 -> TP 2
    assert metrics.precision_recall_at(labels, scores) == pytest.approx((2 / 3, 2 / 4))
    assert metrics.precision_recall_at([1, 0], [0.1, 0.2]) == (0.0, 0.0)


def test_binary_metrics_one_class_has_no_auc():
    out = metrics.binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert out["auc"] is None and out["n"] == 3 and out["n_pos"] == 3
    assert out["ar50"] == pytest.approx(2 / 3)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.auc_with_ci([0, 1], [0.1])
    with pytest.raises(ValueError, match="0/1"):
        metrics.binary_metrics([0, 2], [0.1, 0.2])


def test_dice():
    a = np.zeros((3, 3), bool)
    b = np.zeros((3, 3), bool)
    a[0, :] = True          # 3 voxels
    b[0, 0] = b[1, 1] = True  # 2 voxels, 1 shared
    assert metrics.dice(a, b) == pytest.approx(2 * 1 / 5)
    assert metrics.dice(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    assert metrics.dice(a, np.zeros((3, 3), bool)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.dice(a, np.zeros(9, bool))


def test_mean_std_and_format():
    mean, std, n = metrics.mean_std([0.8, 0.9, None, 1.0])
    assert (mean, n) == (pytest.approx(0.9), 3)
    assert std == pytest.approx(math.sqrt(((0.1) ** 2 * 2) / 2))
    assert metrics.format_mean_std([0.5]) == "0.500 ± 0.000"
    assert metrics.format_mean_std([0.25, 0.35], digits=1, scale=100) == "30.0 ± 7.1"
    assert metrics.format_mean_std([]) == "—"


def test_class_weights_are_inverse_frequency():
    from smart.downstream.finetune import class_weights

    w = class_weights([0, 0, 0, 1])  # n=4, k=2: 4/(2*3), 4/(2*1)
    assert w.tolist() == pytest.approx([2 / 3, 2.0])
    assert class_weights([0, 0]).tolist() == pytest.approx([0.5, 0.0])  # 2/(2*2); absent class 0
