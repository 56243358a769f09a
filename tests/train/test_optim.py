"""smart.train.optim: parameter groups and the teacher-temperature warm-up."""

from __future__ import annotations

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
    opt = build_optimizer(net.named_parameters(), {"weight_decay": 0.05, "lr": 1e-3})
    decay, plain = opt.param_groups
    assert decay["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert [p is net.lin.weight for p in decay["params"]] == [True]
    assert {id(p) for p in plain["params"]} == {id(net.lin.bias), id(net.norm.weight), id(net.norm.bias), id(net.mask_token)}
    assert no_weight_decay("x.mask_token", net.mask_token) and not no_weight_decay("lin.weight", net.lin.weight)
