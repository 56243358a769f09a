"""SemanticAttention / TransformerBlock against formulas written out by hand (Sec. III-B, Eq. 1)."""

from __future__ import annotations

import pytest
import torch

from smart.models.semantic_attention import SemanticAttention, TransformerBlock


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = t.shape
    return t.reshape(b, n, heads, c // heads).permute(0, 2, 1, 3)  # (B, h, n, d)


def _qkv_by_hand(block: TransformerBlock, x: torch.Tensor, heads: int):
    c = x.shape[-1]
    h = torch.nn.functional.layer_norm(x, (c,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    w, b = block.attn.qkv.weight, block.attn.qkv.bias
    q, k, v = (h @ w[i * c:(i + 1) * c].T + b[i * c:(i + 1) * c] for i in range(3))
    return (_split_heads(t, heads) for t in (q, k, v))


def _randomise(module: torch.nn.Module) -> None:
    # Default init has zero biases and unit norms; random values make the by-hand checks bite on every term.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def test_block_forward_matches_prenorm_layerscale_formula():
    heads, c = 4, 16
    block = TransformerBlock(c, heads, mlp_ratio=2.0, layer_scale_init=0.1).eval()
    _randomise(block)
    x = torch.randn(2, 7, c)
    q, k, v = _qkv_by_hand(block, x, heads)
    attn = torch.softmax(q @ k.transpose(-1, -2) / (c / heads) ** 0.5, dim=-1)
    y = (attn @ v).permute(0, 2, 1, 3).reshape(2, 7, c) @ block.attn.proj.weight.T + block.attn.proj.bias
    x1 = x + block.gamma_1 * y
    h2 = torch.nn.functional.layer_norm(x1, (c,), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    mlp = block.mlp.linear2(torch.nn.functional.gelu(block.mlp.linear1(h2)))
    expected = x1 + block.gamma_2 * mlp
    with torch.no_grad():
        out, cls_attn = block(x, return_cls_attention=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    row = attn[:, :, 0].mean(1)[:, 1:]
    torch.testing.assert_close(cls_attn, row / row.sum(-1, keepdim=True), atol=1e-6, rtol=1e-5)


def test_layerscale_init_is_point_one_and_plain_block_has_none():
    sa = SemanticAttention(24, depth=2, num_heads=4)
    for block in sa.blocks:
        assert torch.equal(block.gamma_1, torch.full((24,), 0.1)) and torch.equal(block.gamma_2, torch.full((24,), 0.1))
    plain = TransformerBlock(24, 4)
    assert plain.gamma_1 is None and not any("gamma" in n for n, _ in plain.named_parameters())


@pytest.mark.parametrize("depth,heads", [(1, 1), (2, 4), (3, 8)])
def test_sa_map_equals_eq1_by_hand_and_sums_to_one(depth, heads):
    c, n = 32, 27
    sa = SemanticAttention(c, depth=depth, num_heads=heads).eval()
    _randomise(sa)
    tokens = torch.randn(3, n, c)
    with torch.no_grad():
        cls, patches, attention = sa(tokens)
        x = torch.cat([sa.cls_token.expand(3, -1, -1), tokens], 1)
        for block in sa.blocks[:-1]:
            x, _ = block(x)
        q, k, _ = _qkv_by_hand(sa.blocks[-1], x, heads)
    # Eq. 1: SATT = 1/h Σ_h softmax(Q_h^[CLS] K_hᵀ / sqrt(D/h)), over all N+1 keys; then the CLS column is dropped
    # and the N patch weights renormalised.
    satt = torch.stack([torch.softmax(torch.einsum("bd,bnd->bn", q[:, i, 0], k[:, i]) / (c / heads) ** 0.5, -1)
                        for i in range(heads)]).mean(0)
    expected = satt[:, 1:] / satt[:, 1:].sum(-1, keepdim=True)
    torch.testing.assert_close(attention, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3))
    assert cls.shape == (3, c) and patches.shape == (3, n, c) and attention.shape == (3, n)
    assert (attention >= 0).all()


def test_need_attention_false_returns_none_and_same_features():
    sa = SemanticAttention(16, num_heads=2).eval()
    tokens = torch.randn(2, 8, 16)
    with torch.no_grad():
        a, b = sa(tokens), sa(tokens, need_attention=False)
    assert b[2] is None
    torch.testing.assert_close(a[0], b[0])


def test_reset_parameters_reinitialises():
    sa = SemanticAttention(16, num_heads=2)
    _randomise(sa)
    sa.reset_parameters()
    assert torch.equal(sa.blocks[0].gamma_1, torch.full((16,), 0.1))
    assert torch.equal(sa.blocks[1].attn.qkv.bias, torch.zeros(48))
    assert sa.cls_token.abs().max() <= 0.04  # truncated normal std 0.02, cut at 2 std


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_heads=5"):
        SemanticAttention(16, num_heads=5)
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        SemanticAttention(16, depth=0)
    with pytest.raises(ValueError, match=r"tokens \(B, N, 16\)"):
        SemanticAttention(16, num_heads=2)(torch.randn(2, 8, 12))
    with pytest.raises(ValueError, match="drop_path"):
        TransformerBlock(16, 2, drop_path=1.0)
