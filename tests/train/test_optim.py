"""smart.train.optim: parameter groups and the teacher-temperature warm-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smart.train.optim import build_optimizer, no_weight_decay


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.frozen = nn.Parameter(torch.zeros(2, 2), requires_grad=False)


def test_groups_exclude_norms_biases_tokens():
    net = _Net()
    opt = build_optimizer(net.named_parameters(), lr=1e-3, weight_decay=0.05)
    decay, plain = opt.param_groups
    assert decay["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert [p is net.lin.weight for p in decay["params"]] == [True]
    assert {id(p) for p in plain["params"]} == {id(net.lin.bias), id(net.norm.weight), id(net.norm.bias), id(net.mask_token)}
    assert no_weight_decay("x.mask_token", net.mask_token) and not no_weight_decay("lin.weight", net.lin.weight)


def _stepped(kernel: dict, skips: list[bool]):
    """AdamW on _Net after one step per entry of ``skips`` (the same NaN-free gradients each time; a skipped step
    gets NaN gradients, as a non-finite training step would)."""
    from smart.train.optim import guarded_step, param_groups

    torch.manual_seed(0)
    net = _Net()
    opt = torch.optim.AdamW(param_groups(net.named_parameters(), 0.05), lr=0.1, **kernel)
    for skip in skips:
        for p in net.parameters():
            if p.requires_grad:
                p.grad = torch.full_like(p, float("nan")) if skip else torch.ones_like(p) * 0.3
        guarded_step(opt, torch.tensor(skip))
        opt.zero_grad(set_to_none=True)
    return net, opt


def _same(a, b):
    sa, sb = a[0].state_dict(), b[0].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    oa, ob = a[1].state_dict()["state"], b[1].state_dict()["state"]
    assert oa.keys() == ob.keys()
    for key in oa:
        for name in oa[key]:
            assert torch.equal(oa[key][name], ob[key][name]), (key, name)


@pytest.mark.parametrize("kernel", [{"foreach": False}, {"fused": True}], ids=["single_tensor", "fused"])
def test_guarded_step_skips_on_the_device_and_is_the_plain_step_otherwise(kernel):
    """A skipped step (first or later) leaves parameters and AdamW state as if it had not happened: steps
    [ok, skip, ok] == [ok, ok], [skip, ok] == [ok]; fused AdamW (CUDA's kernel; PyTorch also has it on CPU) takes
    the flag as ``found_inf``."""
    _same(_stepped(kernel, [False, True, False]), _stepped(kernel, [False, False]))
    _same(_stepped(kernel, [True, False]), _stepped(kernel, [False]))
    net, opt = _stepped(kernel, [True])
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert all(float(s["step"]) == 0 for s in opt.state.values())


def test_build_optimizer_is_fused_only_on_cuda():
    named = list(_Net().named_parameters())
    assert build_optimizer(named, lr=1e-3, weight_decay=0.05).defaults["foreach"] is False
    assert not build_optimizer(named, lr=1e-3, weight_decay=0.05, device=torch.device("cpu")).defaults["fused"]
