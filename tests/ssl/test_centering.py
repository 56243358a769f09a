"""Teacher centring (smart.ssl.centering): momentum update, and the all-reduce with a real 2-process gloo group."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from smart.ssl.centering import Center


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
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        center = Center(6, momentum=0.5)
        center.update(_rank_logits(rank))
        center.update(_rank_logits(rank) * 2)
        torch.save(center.center.clone(), f"{out_dir}/center_{rank}.pt")
    finally:
        dist.destroy_process_group()


# "fork" starts the ranks in milliseconds; "spawn" (what DDP launchers use, re-imports torch per rank: 10-25 s on a
# loaded 2-core machine) runs in the slow suite.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("start_method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_two_process_gloo_centres_are_identical_and_global(tmp_path, start_method):
    world_size = 2
    mp.start_processes(
        _worker,
        args=(world_size, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world_size,
        join=True,
        start_method=start_method,
    )
    centres = [torch.load(tmp_path / f"center_{r}.pt") for r in range(world_size)]
    assert torch.equal(centres[0], centres[1])
    first = torch.cat([_rank_logits(r) for r in range(world_size)]).mean(0, keepdim=True)
    second = torch.cat([_rank_logits(r) * 2 for r in range(world_size)]).mean(0, keepdim=True)
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
