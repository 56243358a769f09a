"""DINOHead (weight-normed last layer) and ReconstructionHead (token → voxel cube, Eq. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from smart.models.heads import DINOHead, ReconstructionHead


def test_dino_head_uses_parametrized_weight_norm_with_frozen_unit_magnitude():
    head = DINOHead(16, 10, hidden_dim=32, bottleneck_dim=8, nlayers=3)
    assert parametrize.is_parametrized(head.last_layer, "weight")
    g = head.last_layer.parametrizations.weight.original0
    assert not g.requires_grad and torch.equal(g, torch.ones(10, 1))
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(10))
    assert [m.out_features for m in head.mlp if isinstance(m, torch.nn.Linear)] == [32, 32, 8]
    assert DINOHead(16, 10, norm_last_layer=False).last_layer.parametrizations.weight.original0.requires_grad


def test_dino_head_forward_is_the_formula():
    head = DINOHead(6, 5, hidden_dim=7, bottleneck_dim=4, nlayers=2)
    x = torch.randn(3, 2, 6)
    l1, l2 = head.mlp[0], head.mlp[2]
    z = torch.nn.functional.gelu(x @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias
    z = z / z.norm(dim=-1, keepdim=True)
    v = head.last_layer.parametrizations.weight.original1
    expected = z @ (v / v.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(head(x), expected)
    out = head(x)
    out.sum().backward()
    assert head.last_layer.parametrizations.weight.original0.grad is None


def test_dino_head_single_layer_and_bad_args():
    assert len(DINOHead(6, 5, nlayers=1, bottleneck_dim=4).mlp) == 1
    with pytest.raises(ValueError, match="nlayers must be >= 1, got 0"):
        DINOHead(6, 5, nlayers=0)
    with pytest.raises(ValueError, match="out_dim must be positive, got 0"):
        DINOHead(6, 0)


@pytest.mark.parametrize("grid,voxels,chans", [((2, 3, 4), (2, 3, 2), 1), ((1, 2, 2), (4, 4, 4), 2)])
def test_reconstruction_head_places_each_cube_at_its_token(grid, voxels, chans):
    head = ReconstructionHead(3, voxels, out_chans=chans)
    n, v = int(np.prod(grid)), int(np.prod(voxels))
    # out[c, j] = 1000·token_index + 10·c + j makes every output value name its token, channel and voxel.
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
        head.proj.weight[:, 0] = 1000.0
        row = torch.arange(chans * v, dtype=torch.float32)  # output feature c·v + j
        head.proj.weight[:, 1] = row % v + 10 * (row // v)
    tokens = torch.zeros(2, n, 3)
    tokens[:, :, 0] = torch.arange(n, dtype=torch.float32)
    tokens[:, :, 1] = 1.0
    with torch.no_grad():
        out = head(tokens, grid)
    assert out.shape == (2, chans, *(g * s for g, s in zip(grid, voxels)))
    expected = np.zeros(out.shape[1:], np.float32)
    for c in range(chans):
        for z, y, x in np.ndindex(*expected.shape[1:]):
            t = np.ravel_multi_index((z // voxels[0], y // voxels[1], x // voxels[2]), grid)
            j = np.ravel_multi_index((z % voxels[0], y % voxels[1], x % voxels[2]), voxels)
            expected[c, z, y, x] = 1000 * t + 10 * c + j
    np.testing.assert_array_equal(out[1].numpy(), expected)


def test_reconstruction_head_bad_input():
    with pytest.raises(ValueError, match="token_voxels"):
        ReconstructionHead(4, (2, 2))
    with pytest.raises(ValueError, match=r"9 tokens do not fill the grid \(2, 2, 2\)"):
        ReconstructionHead(4, (2, 2, 2))(torch.zeros(1, 9, 4), (2, 2, 2))
