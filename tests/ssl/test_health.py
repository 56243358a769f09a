"""smart.ssl.health: every training-health figure against a value computed by hand, and the collapse rule."""

from __future__ import annotations

import math

import pytest
import torch

from smart.data.body_index import BODY_HU
from smart.data.intensity import hu_to_unit
from smart.ssl.health import (COLLAPSE_LOGS, CollapseRule, body_tokens, effective_rank, masked_body_share,
                              teacher_collapse_stats, top1_agreement)


def test_teacher_collapse_stats_formulas():
    k = 8
    uniform = torch.full((5, k), 1.0 / k)
    entropy, spread = teacher_collapse_stats(uniform)
    assert float(entropy) == pytest.approx(math.log(k), abs=1e-6)  # uniform collapse reads exactly ln K
    assert float(spread) == pytest.approx(0.0, abs=1e-7)
    onehot = torch.eye(k)[[0, 3]]  # two rows, different prototypes
    entropy, spread = teacher_collapse_stats(onehot)
    assert float(entropy) == pytest.approx(0.0, abs=1e-6)
    # per prototype: column values {1,0} (2 cols) or {0,0}; population std of {1,0} is 0.5 -> mean 2*0.5/8
    assert float(spread) == pytest.approx(2 * 0.5 / k, abs=1e-6)
    p = torch.tensor([[0.5, 0.25, 0.25, 0.0]])
    assert float(teacher_collapse_stats(p)[0]) == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))


def test_teacher_collapse_stats_count_only_the_weighted_rows():
    # rows: a one-hot (entropy 0), a uniform over 4 (ln 4) and a one-hot on another prototype (entropy 0)
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 1.0, 0.0, 0.0]])
    entropy, spread = teacher_collapse_stats(probs, torch.tensor([0.0, 1.0, 1.0]))
    assert float(entropy) == pytest.approx(math.log(4) / 2)  # (ln 4 + 0) / 2
    # columns over rows 2 and 3: (0.25, 0) -> std 0.125; (0.25, 1) -> 0.375; (0.25, 0), (0.25, 0) -> 0.125 each
    assert float(spread) == pytest.approx((0.125 + 0.375 + 0.125 + 0.125) / 4)
    # a (B, N, K) batch with a (B, N) weight mask reads the same rows
    entropy3, _ = teacher_collapse_stats(probs.reshape(1, 3, 4), torch.tensor([[False, True, True]]))
    assert float(entropy3) == float(entropy)
    # no rows selected: NaN ("no such rows"), never 0
    assert math.isnan(float(teacher_collapse_stats(probs, torch.zeros(3))[0]))
    with pytest.raises(ValueError, match="2 entries for 3 rows"):
        teacher_collapse_stats(probs, torch.ones(2))


def test_top1_agreement_on_the_weighted_rows():
    student = torch.tensor([[5.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 9.0], [3.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.0, 0.1, 0.9], [0.2, 0.7, 0.1]])
    # argmax: student 0,1,2,0; teacher 0,2,2,1 -> rows 0 and 2 agree
    assert float(top1_agreement(student, teacher)) == pytest.approx(0.5)
    assert float(top1_agreement(student, teacher, torch.tensor([1.0, 1.0, 1.0, 0.0]))) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        top1_agreement(student, teacher[:, :2])


def test_effective_rank_is_rankme():
    # singular values 3 and 1: p = (0.75, 0.25) (+1e-7), RankMe = exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = 1.7548...
    p = torch.tensor([0.75, 0.25]) + 1e-7
    expected = math.exp(-float((p * p.log()).sum()))
    matrix = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert float(effective_rank(matrix)) == pytest.approx(expected, rel=1e-5)
    # r orthonormal rows: r equal singular values -> rank r; a rank-one matrix -> 1
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))
    assert float(effective_rank(q[:5])) == pytest.approx(5.0, rel=1e-4)
    assert float(effective_rank(torch.ones(6, 4))) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match=r"\(n >= 1, C >= 1\)"):
        effective_rank(torch.ones(4))


def test_body_tokens_and_masked_body_share():
    air, tissue = float(hu_to_unit(torch.tensor(-1000.0))), float(hu_to_unit(torch.tensor(40.0)))
    views = torch.full((1, 1, 4, 4, 4), air)
    views[:, :, :2, :2, :2] = tissue          # token (0,0,0): all body
    views[:, :, :2, :2, 2:] = tissue
    views[:, :, 0, :2, 2:] = air              # token (0,0,1): half body -> body (>= half)
    views[:, :, 2:, :2, :2] = tissue
    views[:, :, 2:, 0, :2] = air
    views[:, :, 3, 1, :2] = air               # token (1,0,0): 2 of 8 voxels body -> not body
    body = body_tokens(views, (2, 2, 2))
    expected = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    expected[0, 0, 0, 0] = expected[0, 0, 0, 1] = True
    assert torch.equal(body, expected)
    assert float(hu_to_unit(torch.tensor(BODY_HU))) < tissue  # the default cut is the view-centring rule
    masks = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    masks[0, 0, 0, 0] = masks[0, 1, 0, 0] = masks[0, 1, 1, 1] = True  # 3 masked, 1 inside the body
    assert float(masked_body_share(masks, body)) == pytest.approx(1 / 3)
    assert math.isnan(float(masked_body_share(torch.zeros_like(masks), body)))
    with pytest.raises(ValueError, match="must tile"):
        body_tokens(views, (3, 2, 2))


def _record(step, entropy=0.5, spread=0.02, rank=10.0, k=100, dropped_entropy=None):
    rec = {"step": step, "teacher_entropy/aitd": entropy * math.log(k), "teacher_spread/aitd": spread,
           "effective_rank/cls": rank}
    if dropped_entropy is not None:
        rec["teacher_entropy/ampd_dropped"] = dropped_entropy * math.log(k)
    return rec


def test_collapse_rule_fires_once_after_the_sustained_logs_and_names_the_head():
    rule = CollapseRule(out_dim=100, start_step=10)
    # before the warm-up ends nothing counts, however collapsed
    assert all(rule.update(_record(s, entropy=1.0)) == {} for s in range(0, 10, 2))
    fired = [rule.update(_record(10 + i, entropy=0.96)) for i in range(COLLAPSE_LOGS + 2)]
    assert [bool(f) for f in fired] == [False] * (COLLAPSE_LOGS - 1) + [True, False, False]
    message = fired[COLLAPSE_LOGS - 1]["aitd"]
    assert "teacher_entropy/aitd=0.960 ln K" in message and f"{COLLAPSE_LOGS} logs in a row" in message
    # a healthy log resets the count: the next episode needs the full run of logs again
    rule.update(_record(30))
    again = [rule.update(_record(31 + i, spread=0.0004)) for i in range(COLLAPSE_LOGS)]  # spread x K = 0.04
    assert [bool(f) for f in again] == [False] * (COLLAPSE_LOGS - 1) + [True]
    assert "teacher_spread/aitd=0.0004 (x K = 0.04)" in again[-1]["aitd"]


def test_collapse_rule_ignores_rank_and_dropped_rows():
    rule = CollapseRule(out_dim=100)
    out = [rule.update(_record(i, rank=1.0, dropped_entropy=1.0)) for i in range(COLLAPSE_LOGS + 1)]
    assert out == [{}] * (COLLAPSE_LOGS + 1)
    # exactly at a threshold counts as collapsed; just inside does not
    for entropy, spread in ((0.95, 0.02), (0.5, 0.0005)):
        assert set(CollapseRule(out_dim=100, logs=1).update(_record(0, entropy=entropy, spread=spread))) == {"aitd"}
    assert CollapseRule(out_dim=100, logs=1).update(_record(1, entropy=0.949, spread=0.00051)) == {}
