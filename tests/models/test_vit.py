"""ViT3D: shapes, mask token / patch drop, position-embedding interpolation, Eq. 1 attention of the last block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smart.models.factory import build_encoder


def test_shapes_and_geometry(tiny_vit):
    enc = tiny_vit()
    with torch.no_grad():
        out = enc(torch.rand(2, 1, 32, 32, 32))
    assert out.grid == (4, 4, 4) == enc.mask_grid((32, 32, 32)) == enc.patch_grid((32, 32, 32))
    assert enc.token_voxels == (8, 8, 8)
    assert tuple(out.tokens.shape) == (2, 64, 24) and tuple(out.cls.shape) == (2, 24)
    assert enc.token_dim == enc.cls_dim == enc.pooled_dim == 24
    torch.testing.assert_close(out.pooled, out.tokens.mean(1))
    torch.testing.assert_close(out.attention.sum(1), torch.ones(2))
    assert out.stages is None


def test_paper_vit_geometry_matches_swin_stage3():
    # Paper patch 16 and 8 heads at a narrow width: building the 86 M-parameter ViT costs seconds for no extra check.
    enc = build_encoder({"arch": "vit", "vit_dim": 32, "vit_depth": 1})
    assert enc.blocks[0].attn.num_heads == 8 and enc.patch_embed.position_embeddings.shape == (1, 512, 32)
    assert enc.mask_grid((128, 128, 128)) == (8, 8, 8) and enc.token_voxels == (16, 16, 16)


def test_attention_is_eq1_of_the_last_block(tiny_vit):
    enc = tiny_vit().eval()
    x = torch.rand(2, 1, 32, 32, 32)
    captured = {}
    last = enc.blocks[-1]
    hook = last.norm1.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    with torch.no_grad():
        out = enc(x)
    hook.remove()
    h, c, heads = captured["h"], enc.dim, 4
    w, b = last.attn.qkv.weight, last.attn.qkv.bias
    q = (h[:, 0] @ w[:c].T + b[:c]).reshape(2, heads, c // heads)
    k = (h @ w[c:2 * c].T + b[c:2 * c]).reshape(2, -1, heads, c // heads)
    probs = torch.softmax(torch.einsum("bhd,bnhd->bhn", q, k) / (c / heads) ** 0.5, dim=-1).mean(1)[:, 1:]
    torch.testing.assert_close(out.attention, probs / probs.sum(1, keepdim=True), atol=1e-6, rtol=1e-5)


def test_mask_token_and_patch_drop_before_position_embedding(tiny_vit):
    enc = tiny_vit().eval()
    x = torch.rand(1, 1, 32, 32, 32)
    mask = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    mask[0, 0, 1, 2] = True
    drop = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    drop[0, 3, 3, 3] = True
    captured = {}
    hook = enc.blocks[0].norm1.register_forward_pre_hook(lambda m, a: captured.setdefault("x", a[0]))
    with torch.no_grad():
        enc(x, mask=mask, patch_drop=drop)
    hook.remove()
    pe = enc.patch_embed
    plain = F.conv3d(x, pe.patch_embeddings.weight, pe.patch_embeddings.bias, stride=8).flatten(2).transpose(1, 2)
    pos = pe.position_embeddings[0]
    seen = captured["x"][0, 1:]  # token 0 is [CLS]
    masked_idx, dropped_idx = 0 * 16 + 1 * 4 + 2, 63
    torch.testing.assert_close(seen[masked_idx], enc.mask_token + pos[masked_idx])
    torch.testing.assert_close(seen[dropped_idx], pos[dropped_idx])
    keep = [i for i in range(64) if i not in (masked_idx, dropped_idx)]
    torch.testing.assert_close(seen[keep], plain[0, keep] + pos[keep])


def test_position_embedding_is_interpolated_for_other_sizes(tiny_vit):
    enc = tiny_vit()
    table = enc.patch_embed.position_embeddings.reshape(1, 4, 4, 4, 24).permute(0, 4, 1, 2, 3)
    expected = F.interpolate(table, size=(2, 4, 6), mode="trilinear", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(enc.position_embedding((2, 4, 6)), expected)
    with torch.no_grad():
        out = enc(torch.rand(1, 1, 16, 32, 48))
    assert out.grid == (2, 4, 6) and out.tokens.shape == (1, 48, 24)


def test_every_parameter_gets_a_gradient_with_a_mask(tiny_vit):
    enc = tiny_vit(drop_path_rate=0.1)
    mask = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    mask[0, 0] = True
    out = enc(torch.rand(1, 1, 32, 32, 32), mask=mask)
    (out.cls.square().mean() + out.tokens.square().mean()).backward()
    assert [n for n, p in enc.named_parameters() if p.grad is None] == []


def test_bad_inputs_raise(tiny_vit):
    enc = tiny_vit()
    with pytest.raises(ValueError, match="divisible by patch 8"):
        enc(torch.rand(1, 1, 32, 32, 36))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        enc(torch.rand(1, 1, 32, 32, 32), mask=torch.zeros(1, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="img_size"):
        tiny_vit(img_size=30)
    with pytest.raises(ValueError, match="num_heads=5"):
        tiny_vit(vit_heads=5)
