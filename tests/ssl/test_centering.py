"""Teacher centring (smart.ssl.centering): momentum update, the Sinkhorn-Knopp targets against hand-computed values,
and the all-reduces with a real 2-process gloo group."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from smart.ssl.centering import Center, sinkhorn_knopp


def test_single_process_update_formula():
    center = Center(4, momentum=0.9)
    assert center.center.shape == (1, 4) and torch.equal(center.center, torch.zeros(1, 4))
    logits1 = torch.arange(24, dtype=torch.float32).view(2, 3, 4)  # leading dims (B, N) are both averaged
    logits2 = torch.randn(5, 4)
    center.update(logits1)
    mean1 = logits1.reshape(-1, 4).mean(0, keepdim=True)
    torch.testing.assert_close(center.center, 0.1 * mean1)
    center.update(logits2)
    torch.testing.assert_close(center.center, 0.9 * (0.1 * mean1) + 0.1 * logits2.mean(0, keepdim=True))
    assert "center" in dict(center.named_buffers())
    assert "center" in center.state_dict()


def test_update_does_not_track_gradient():
    center = Center(3)
    logits = torch.randn(2, 3, requires_grad=True)
    center.update(logits)
    assert not center.center.requires_grad and center.center.grad_fn is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        Center(0)
    with pytest.raises(ValueError, match="momentum"):
        Center(4, momentum=1.5)
    with pytest.raises(ValueError, match="dim=4"):
        Center(4).update(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="no rows"):
        Center(4).update(torch.zeros(0, 4))


def _rank_logits(rank: int) -> torch.Tensor:
    # Unequal row counts per rank (3 vs 5) so the exact global mean differs from a mean of per-rank means.
    gen = torch.Generator().manual_seed(100 + rank)
    return torch.randn(3 + 2 * rank, 6, generator=gen) + rank


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """One rank of the 2-process gloo group: the EMA centre after two updates and the Sinkhorn-Knopp targets of its
    own rows, each saved for the parent to compare with the one-process results on the global batch."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        center = Center(6, momentum=0.5)
        center.update(_rank_logits(rank))
        center.update(_rank_logits(rank) * 2)
        torch.save(center.center.clone(), f"{out_dir}/center_{rank}.pt")
        torch.save(sinkhorn_knopp(_rank_logits(rank), 0.5, 3), f"{out_dir}/sk_{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    """Run both ranks once for the module. "spawn", as DDP launchers do: forking the test process, which by now
    holds other tests' threads (TensorBoard writers, tqdm's monitor, OpenMP's pool), can leave a child waiting on a
    lock a parent thread held at the fork -- a CI run hung that way -- so no test here depends on that race. Each
    rank re-imports torch (10-25 s on a loaded 2-core machine), hence one run shared by the tests below."""
    out = tmp_path_factory.mktemp("gloo")
    mp.start_processes(_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True, start_method="spawn")
    return [{name: torch.load(out / f"{name}_{r}.pt") for name in ("center", "sk")} for r in range(2)]


@pytest.mark.timeout(300)
def test_two_process_gloo_centres_are_identical_and_global(two_ranks):
    centres = [rank["center"] for rank in two_ranks]
    assert torch.equal(centres[0], centres[1])
    first = torch.cat([_rank_logits(r) for r in range(2)]).mean(0, keepdim=True)
    second = torch.cat([_rank_logits(r) * 2 for r in range(2)]).mean(0, keepdim=True)
    expected = 0.5 * (0.5 * first) + 0.5 * second
    torch.testing.assert_close(centres[0], expected)
    # A local-only update (SMIT's bug) would differ from the global one.
    local = Center(6, momentum=0.5)
    local.update(_rank_logits(0))
    local.update(_rank_logits(0) * 2)
    assert not torch.allclose(local.center, centres[0])


def test_update_with_apply_false_keeps_the_centre_even_for_nan_logits():
    c = Center(3, momentum=0.5)
    c.update(torch.ones(2, 3))
    c.update(torch.full((2, 3), float("nan")), apply=torch.tensor(False))
    assert torch.equal(c.center, torch.full((1, 3), 0.5))
    c.update(torch.ones(2, 3) * 3, apply=torch.tensor(True))
    assert torch.equal(c.center, torch.full((1, 3), 0.5 * 0.5 + 0.5 * 3))


def test_sinkhorn_knopp_one_iteration_matches_a_hand_computed_2x2():
    # exp(logits) = [[1, 2], [3, 4]] (rows = images, cols = prototypes). By hand: / total 10 -> [[.1, .2], [.3, .4]];
    # prototypes to 1/2 each: [[.125, 1/6], [.375, 1/3]]; images to 1/2 each and x B=2: [[3/7, 4/7], [9/17, 8/17]].
    out = sinkhorn_knopp(torch.log(torch.tensor([[1.0, 2.0], [3.0, 4.0]])), temp=1.0, n_iters=1)
    torch.testing.assert_close(out, torch.tensor([[3 / 7, 4 / 7], [9 / 17, 8 / 17]]))


def test_sinkhorn_knopp_converges_to_the_doubly_stochastic_2x2_with_the_same_cross_ratio():
    # The limit of a 2x2 with all marginals 1/2 is [[x, 1/2-x], [1/2-x, x]] with x^2/(1/2-x)^2 = (1*4)/(2*3) (Sinkhorn
    # scaling keeps the cross ratio), so x = r / (2(1+r)), r = sqrt(2/3); the rows are then x B=2.
    r = math.sqrt(2 / 3)
    x = r / (1 + r)
    out = sinkhorn_knopp(torch.log(torch.tensor([[1.0, 2.0], [3.0, 4.0]])), temp=1.0, n_iters=200)
    torch.testing.assert_close(out, torch.tensor([[x, 1 - x], [1 - x, x]]))


def test_sinkhorn_knopp_marginals_and_temperature():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    for n_iters in (1, 3):
        # the last step normalises the images: each row is a distribution, exactly
        torch.testing.assert_close(sinkhorn_knopp(logits, 0.1, n_iters).sum(1), torch.ones(5))
    # the prototype marginals reach B/K as the iterations go on
    torch.testing.assert_close(sinkhorn_knopp(logits, 0.5, 500).sum(0), torch.full((7,), 5 / 7))
    # the temperature divides the logits before anything else
    torch.testing.assert_close(sinkhorn_knopp(logits, 0.25, 3), sinkhorn_knopp(logits * 4, 1.0, 3))


def test_sinkhorn_knopp_cancels_prototype_and_image_offsets():
    # logits = a_k + b_i: exp factorises, one iteration balances it, and every target is uniform (1/K) -- what the EMA
    # centre only approaches as its running mean catches up with a_k.
    a, b = torch.tensor([[0.5, -1.0, 2.0, 0.0]]), torch.tensor([[3.0], [-2.0], [0.1]])
    torch.testing.assert_close(sinkhorn_knopp(a + b, temp=0.04, n_iters=1), torch.full((3, 4), 0.25))


def test_sinkhorn_knopp_bad_arguments():
    with pytest.raises(ValueError, match=r"\(B >= 1, K >= 1\) logits, got shape \(2, 3, 4\)"):
        sinkhorn_knopp(torch.zeros(2, 3, 4), 0.1)
    with pytest.raises(ValueError, match="got shape \\(0, 4\\)"):
        sinkhorn_knopp(torch.zeros(0, 4), 0.1)
    with pytest.raises(ValueError, match="temperature must be finite and > 0, got 0.0"):
        sinkhorn_knopp(torch.zeros(2, 4), 0.0)
    with pytest.raises(ValueError, match="n_iters must be an int >= 1, got 0"):
        sinkhorn_knopp(torch.zeros(2, 4), 0.1, n_iters=0)


@pytest.mark.timeout(300)
def test_two_process_gloo_sinkhorn_knopp_is_that_of_the_global_batch(two_ranks):
    per_rank = torch.cat([rank["sk"] for rank in two_ranks])
    # unequal batches (3 and 5 images): each rank's rows are the rows of the one-process run on all 8 images
    torch.testing.assert_close(per_rank, sinkhorn_knopp(torch.cat([_rank_logits(0), _rank_logits(1)]), 0.5, 3))
    assert not torch.allclose(per_rank[:3], sinkhorn_knopp(_rank_logits(0), 0.5, 3))
