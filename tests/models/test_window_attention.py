"""FusedWindowAttention (SDPA with grad) against MONAI's explicit-softmax WindowAttention: values and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from monai.networks.nets.swin_unetr import SwinTransformer, WindowAttention, compute_mask, get_window_size

from smart.models.swin import SwinSMART
from smart.models.window_attention import FusedWindowAttention, fuse_window_attention

TOL = {"atol": 1e-5, "rtol": 1e-4}


def _pair(dim: int, heads: int, window: tuple[int, int, int], seed: int = 0):
    torch.manual_seed(seed)
    ref = WindowAttention(dim, heads, window, qkv_bias=True, use_flash_attention=False)
    # A non-zero bias table so a wrong index or a transposed bias would show up.
    with torch.no_grad():
        ref.relative_position_bias_table.normal_(0.0, 0.5)
    fused = copy.deepcopy(ref)
    fused.use_flash_attention = True
    assert fuse_window_attention(fused) == 1
    fused.sdpa_with_grad = "always"  # the SDPA-with-grad maths (CUDA's default) checked on CPU
    return ref, fused


def _shift_mask(spatial: tuple[int, int, int], window: tuple[int, int, int]) -> torch.Tensor:
    shift = tuple(w // 2 for w in window)
    ws, ss = get_window_size(spatial, window, shift)
    return compute_mask(list(spatial), ws, ss, torch.device("cpu"))


def _grads(module: torch.nn.Module, x: torch.Tensor, mask, weight: torch.Tensor):
    x = x.clone().requires_grad_(True)
    out = module(x, mask)
    (out * weight).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("window,images", [((2, 2, 2), 1), ((4, 4, 4), 2)])
@pytest.mark.parametrize("shifted", [False, True])
def test_values_and_gradients_match_monai_explicit_path(window, images, shifted):
    dim, heads = 16, 2
    spatial = tuple(2 * w for w in window)  # 8 windows per image
    n = window[0] * window[1] * window[2]
    mask = _shift_mask(spatial, window) if shifted else None
    nw = 8
    if mask is not None:
        assert mask.shape == (nw, n, n) and (mask < 0).any()  # the shift mask really blocks some pairs
    ref, fused = _pair(dim, heads, window)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(images * nw, n, dim, generator=gen)
    weight = torch.randn(images * nw, n, dim, generator=gen)
    assert torch.is_grad_enabled()
    out_r, gx_r, gp_r = _grads(ref, x, mask, weight)
    out_f, gx_f, gp_f = _grads(fused, x, mask, weight)
    torch.testing.assert_close(out_f, out_r, **TOL)
    torch.testing.assert_close(gx_f, gx_r, **TOL)
    assert gp_f.keys() == gp_r.keys() and "relative_position_bias_table" in gp_f
    for name in gp_r:
        torch.testing.assert_close(gp_f[name], gp_r[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")
    assert gp_f["relative_position_bias_table"].abs().sum() > 0


def test_fused_takes_sdpa_path_with_grad(monkeypatch):
    """With grad enabled MONAI's class never calls SDPA; the fused one must (that is the whole point)."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    ref, fused = _pair(8, 2, (2, 2, 2))
    ref.use_flash_attention = True  # MONAI's own flag: still explicit path while grad is on
    x = torch.randn(2, 8, 8)
    ref(x, None)
    assert calls == []
    fused(x, None)
    assert calls == [1]


@pytest.mark.parametrize("policy,grad,expected", [("cuda", True, 0), ("never", True, 0), ("always", True, 1),
                                                  ("cuda", False, 1), ("never", False, 1)])
def test_sdpa_with_grad_policy_on_cpu(monkeypatch, policy, grad, expected):
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    ref, fused = _pair(8, 2, (2, 2, 2))
    fused.sdpa_with_grad = policy
    x = torch.randn(2, 8, 8)
    with torch.set_grad_enabled(grad):
        out = fused(x, None)
    assert len(calls) == expected
    torch.testing.assert_close(out, ref(x, None).detach(), **TOL)


def test_bad_sdpa_policy_is_named():
    _, fused = _pair(8, 2, (2, 2, 2))
    fused.sdpa_with_grad = "sometimes"
    with pytest.raises(ValueError, match="sometimes"):
        fused(torch.randn(1, 8, 8), None)


def test_flag_off_is_monai_forward():
    ref, fused = _pair(8, 2, (2, 2, 2))
    fused.use_flash_attention = False
    x = torch.randn(3, 8, 8)
    torch.testing.assert_close(fused(x, None), ref(x, None), rtol=0, atol=0)


def test_attention_dropout_applied_only_in_training():
    torch.manual_seed(0)
    att = FusedWindowAttention(8, 2, (2, 2, 2), attn_drop=0.5, use_flash_attention=True)
    att.sdpa_with_grad = "always"
    x = torch.randn(4, 8, 8)
    att.eval()
    torch.testing.assert_close(att(x, None), att(x, None), rtol=0, atol=0)
    att.train()
    assert not torch.allclose(att(x, None), att(x, None))


def _tiny_swin(flash: bool) -> SwinSMART:
    torch.manual_seed(3)
    return SwinSMART(embed_dim=12, depths=(1, 2, 1, 1), num_heads=(1, 2, 2, 3), window_size=2, patch_size=2,
                     sa_stage=3, sa_heads=4, use_flash_attention=flash)


def test_swinsmart_swaps_every_window_attention_and_keeps_weights():
    fused, plain = _tiny_swin(True), _tiny_swin(False)
    kinds = [type(m) for m in fused.modules() if isinstance(m, WindowAttention)]
    assert len(kinds) == 5 and set(kinds) == {FusedWindowAttention}
    assert {type(m) for m in plain.modules() if isinstance(m, WindowAttention)} == {WindowAttention}
    # The swap draws no random numbers: the same seed gives the same weights (incl. mask token and SA).
    sf, sp = fused.state_dict(), plain.state_dict()
    assert sf.keys() == sp.keys()
    for key in sp:
        torch.testing.assert_close(sf[key], sp[key], rtol=0, atol=0)
    # Backbone still loads strictly into MONAI's SwinTransformer (SwinUNETR.swinViT).
    monai = SwinTransformer(in_chans=1, embed_dim=12, window_size=(2, 2, 2), patch_size=(2, 2, 2),
                            depths=(1, 2, 1, 1), num_heads=(1, 2, 2, 3), spatial_dims=3)
    monai.load_state_dict(fused.backbone_state_dict(), strict=True)


def test_swinsmart_training_step_matches_explicit_path(monkeypatch):
    """Whole encoder, shifted windows included (depth 2 stage), in training mode with grad: loss and grads agree."""
    monkeypatch.setattr(FusedWindowAttention, "sdpa_with_grad", "always")
    fused, plain = _tiny_swin(True), _tiny_swin(False)
    fused.train(), plain.train()
    x = torch.rand(2, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[0, 0, 1, 1] = mask[1, 1, 0, 0] = True
    results = []
    for model in (fused, plain):
        out = model(x, mask=mask)
        loss = out.tokens.square().mean() + out.pooled.sum() + out.cls.sum()
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (lf, gf), (lp, gp) = results
    torch.testing.assert_close(lf, lp, **TOL)
    assert gf.keys() == gp.keys()
    for name in gp:
        torch.testing.assert_close(gf[name], gp[name], atol=1e-4, rtol=1e-3, msg=lambda m, name=name: f"{name}: {m}")
