"""smart.ssl.losses.koleo and its use in SelfDistillation (``loss.koleo``): the value against a plain nearest-neighbour
loop, its fixed points, where its gradient goes, and the config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smart.config import load_config
from smart.ssl.losses.koleo import koleo_loss
from smart.train.pretrain import build_self_distillation


def _koleo_numpy(x: np.ndarray) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    total = 0.0
    for i in range(len(x)):
        nearest = min(np.sqrt(((x[i] - x[j]) ** 2).sum()) for j in range(len(x)) if j != i)
        total += math.log(nearest + 1e-8)
    return -total / len(x)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_koleo_matches_a_nearest_neighbour_loop(n):
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    assert float(koleo_loss(x)) == pytest.approx(_koleo_numpy(x.numpy()), rel=1e-5)


def test_koleo_is_scale_free_and_largest_for_identical_rows():
    orthonormal = torch.eye(3)
    # unit rows at right angles: every nearest neighbour is sqrt(2) away
    assert float(koleo_loss(orthonormal)) == pytest.approx(-math.log(math.sqrt(2)), rel=1e-6)
    assert float(koleo_loss(5.0 * orthonormal)) == pytest.approx(float(koleo_loss(orthonormal)), rel=1e-6)
    near = torch.tensor([[1.0, 0.0], [1.0, 1e-3]])
    assert float(koleo_loss(near)) > float(koleo_loss(orthonormal)) + 5.0  # ~ -ln(1e-3)
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert float(koleo_loss(antipodal)) == pytest.approx(-math.log(2.0), rel=1e-6)  # the lower bound


def test_koleo_gradient_pushes_neighbours_apart():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]], requires_grad=True)
    koleo_loss(x).backward()
    # descending the loss moves row 1 away from row 0 (towards +y) and row 0 away from row 1 (towards -y)
    assert float(-x.grad[1, 1]) > 0 and float(-x.grad[0, 1]) < 0


@pytest.mark.parametrize("bad", [torch.randn(1, 4), torch.randn(4), torch.randn(2, 3, 4)])
def test_koleo_rejects_fewer_than_two_rows_or_wrong_rank(bad):
    with pytest.raises(ValueError, match="KoLeo needs"):
        koleo_loss(bad)


def _model(koleo, batch=2):
    # no drop path, so the test can recompute the student's forward exactly
    cfg = load_config("smart", "tiny", None, [f"loss.koleo={koleo}", f"data.batch_size={batch}",
                                              "model.drop_path_rate=0.0"])
    torch.manual_seed(0)
    return cfg, build_self_distillation(cfg)


def test_self_distillation_adds_koleo_on_the_image_level_head_bottlenecks():
    cfg, model = _model(0.5)
    g = torch.Generator().manual_seed(0)
    u, v = torch.rand(2, 1, 32, 32, 32, generator=g), torch.rand(2, 1, 32, 32, 32, generator=g)
    total, stats = model(u, v, torch.tensor([0, 1]), step=0)
    expected = sum(cfg["loss"][n] * float(stats[f"loss/{n}"]) for n in ("amip", "ampd", "aitd", "gitd"))
    assert float(total.detach()) == pytest.approx(expected + 0.5 * float(stats["loss/koleo"]), rel=1e-5)
    # the KoLeo term alone reaches the AITD/GITD heads' MLPs, not the patch head nor the prototype layers
    model.zero_grad()
    (_, stats) = model(u, v, torch.tensor([0, 1]), step=0)
    koleo_only = stats["loss/koleo"]
    assert koleo_only.grad_fn is None  # stats are detached; recompute the term with its graph below
    s_out = model.student["encoder"](torch.cat([u, v]), mask=model.last_masks, need_attention=False)
    rows = [model.student[h](getattr(s_out, f), return_bottleneck=True)[1] for f, h in
            (("cls", "cls_head"), ("pooled", "pooled_head"))]
    term = sum(koleo_loss(r) for emb in rows for r in emb.split(2)) / 4
    assert float(term.detach()) == pytest.approx(float(koleo_only), rel=1e-5)
    term.backward()
    for head in ("cls_head", "pooled_head"):
        assert model.student[head].mlp[0].weight.grad.abs().sum() > 0
        assert model.student[head].last_layer.parametrizations.weight.original1.grad is None
    assert model.student["patch_head"].mlp[0].weight.grad is None


def test_koleo_off_adds_no_term_and_a_batch_of_one_is_rejected_at_config_time():
    _, model = _model(0.0)
    g = torch.Generator().manual_seed(1)
    u, v = torch.rand(2, 1, 32, 32, 32, generator=g), torch.rand(2, 1, 32, 32, 32, generator=g)
    _, stats = model(u, v, torch.tensor([0, 1]), step=0)
    assert "loss/koleo" not in stats
    with pytest.raises(ValueError, match=r"'loss.koleo'=0.1 needs data.batch_size >= 2"):
        _model(0.1, batch=1)  # rejected when the config is loaded
