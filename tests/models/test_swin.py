"""SwinSMART: geometry, MONAI compatibility, mask token / patch drop, SA side branch, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.networks.nets import SwinUNETR

from smart.models.factory import build_encoder
from smart.models.swin import tokens_from_map, upsample_mask

SHAPE_CASES = [
    # embed, depths, heads, window, patch, input, sa_stage
    (12, [1, 1, 1, 1], [1, 1, 2, 2], 4, 2, (32, 32, 32), 3),
    (12, [1, 1, 2, 1], [1, 2, 2, 4], 2, 2, (32, 64, 32), 2),
    (8, [1, 1, 1, 1], [1, 1, 1, 2], 4, 4, (64, 64, 64), None),
    (12, [1, 1, 1, 1], [1, 1, 2, 2], 4, 2, (64, 32, 32), 4),
]


@pytest.mark.parametrize("embed,depths,heads,window,patch,size,sa_stage", SHAPE_CASES)
def test_stage_shapes(embed, depths, heads, window, patch, size, sa_stage):
    enc = build_encoder({"embed_dim": embed, "depths": depths, "num_heads": heads, "window_size": window,
                         "patch_size": patch, "sa_stage": sa_stage, "sa_heads": 4, "img_size": None})
    with torch.no_grad():
        out = enc(torch.rand(2, 1, *size))
    for k, stage in enumerate(out.stages):
        assert tuple(stage.shape) == (2, embed * 2**k, *(s // (patch * 2**k) for s in size))
    mask_stage = 3 if sa_stage is None else sa_stage
    grid = tuple(s // (patch * 2**mask_stage) for s in size)
    assert out.grid == grid == enc.mask_grid(size)
    assert enc.patch_grid(size) == tuple(s // patch for s in size)
    assert tuple(g * v for g, v in zip(grid, enc.token_voxels)) == size
    assert tuple(out.tokens.shape) == (2, int(np.prod(grid)), embed * 2**mask_stage) == (2, out.tokens.shape[1], enc.token_dim)
    assert tuple(out.pooled.shape) == (2, embed * 16) == (2, enc.pooled_dim)
    if sa_stage != 4:  # inline SA at stage 4 refines the tokens that ``pooled`` averages (test_inline_* below)
        torch.testing.assert_close(out.pooled, out.stages[4].mean(dim=(2, 3, 4)))
    if sa_stage is None:
        assert out.cls is None and out.attention is None and enc.cls_dim is None
    else:
        assert tuple(out.cls.shape) == (2, embed * 2**sa_stage) == (2, enc.cls_dim)
        assert tuple(out.attention.shape) == (2, int(np.prod(grid)))


def test_paper_config_geometry_and_forward_at_64(paper_swin):
    enc = paper_swin
    assert enc.mask_grid((128, 128, 128)) == (8, 8, 8)
    assert enc.token_voxels == (16, 16, 16) and enc.token_dim == 384 and enc.cls_dim == 384 and enc.pooled_dim == 768
    with torch.no_grad():
        out = enc(torch.rand(1, 1, 64, 64, 64))
    assert [tuple(s.shape[1:]) for s in out.stages] == [
        (48, 32, 32, 32), (96, 16, 16, 16), (192, 8, 8, 8), (384, 4, 4, 4), (768, 2, 2, 2)]
    assert tuple(out.tokens.shape) == (1, 64, 384) and tuple(out.cls.shape) == (1, 384)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(1))
    # AMPD's pre-merge tokens (Sec. III-C): stage 3's blocks before the merging, 192 channels on 16^3 at 128^3 input
    assert enc.pre_merge_grid((128, 128, 128)) == (16, 16, 16) and enc.pre_merge_dim == 192
    assert out.pre_merge_grid == (8, 8, 8) and tuple(out.pre_merge_tokens.shape) == (1, 512, 192)


@pytest.mark.parametrize("size", [64, 128])
def test_pre_merge_tokens_are_stage_3_blocks_before_monai_patch_merging(tiny_swin, size):
    """Paper grid logic (patch 2, window 4, SA at stage 3) at a narrow width: at 64^3 the pre-merge grid is 8^3 (mask
    grid 4^3), at 128^3 16^3 (mask grid 8^3), at half the width of the merged tokens. The tokens equal MONAI's
    stage-3 blocks applied to the stage-2 output with the merging left out, layer-normalised as ``stages``."""
    enc = tiny_swin(img_size=size)
    x = torch.rand(1, 1, size, size, size)
    stage2 = []
    hook = enc.layers2[0].register_forward_hook(lambda _m, _a, out: stage2.append(out))
    with torch.no_grad():
        out = enc(x)
    hook.remove()
    grid = (size // 8,) * 3
    assert out.pre_merge_grid == grid == enc.pre_merge_grid(x.shape[2:])
    assert out.grid == tuple(g // 2 for g in grid) == enc.mask_grid(x.shape[2:])
    assert tuple(out.pre_merge_tokens.shape) == (1, (size // 8) ** 3, 48) == (1, (size // 8) ** 3, enc.pre_merge_dim)
    assert enc.token_dim == 2 * enc.pre_merge_dim
    blocks = copy.deepcopy(enc.layers3[0])
    blocks.downsample = None
    with torch.no_grad():
        ref = tokens_from_map(enc.proj_out(blocks(stage2[0].contiguous()), normalize=True))
    torch.testing.assert_close(out.pre_merge_tokens, ref)
    # the tap is removed after every forward, also one that failed
    assert not enc.layers3[0].downsample._forward_pre_hooks
    with pytest.raises(ValueError):
        enc(torch.rand(1, 2, size, size, size))
    assert not enc.layers3[0].downsample._forward_pre_hooks


def test_pre_merge_tokens_follow_the_mask_stage(tiny_swin):
    """Without SA the mask stage is 3; with SA at stage k it is k: the pre-merge tokens are stage k's."""
    for sa_stage, stage in ((None, 3), (2, 2), (4, 4)):
        enc = tiny_swin(sa_stage=sa_stage, img_size=64)
        with torch.no_grad():
            out = enc(torch.rand(1, 1, 64, 64, 64))
        assert out.pre_merge_grid == tuple(2 * g for g in out.grid) == (64 // (2 * 2 ** (stage - 1)),) * 3
        assert out.pre_merge_tokens.shape[-1] == 12 * 2 ** (stage - 1)


def test_backbone_loads_strictly_into_monai_swinunetr_and_matches_it(paper_swin):
    """Branch SA: every stage output equals MONAI's. Inline SA: stages 0-3 do, stage 4 (which consumes the SA-refined
    stage-3 tokens) does not — what a MONAI SwinUNETR user of an inline-trained backbone gets."""
    enc = build_encoder({**paper_swin.model_config, "sa_placement": "branch"}).eval()
    enc.load_state_dict(paper_swin.state_dict())
    ref = SwinUNETR(in_channels=1, out_channels=2, feature_size=48, depths=(2, 2, 8, 2), num_heads=(4, 4, 8, 16),
                    window_size=4, use_flash_attention=True).swinViT.eval()
    backbone = enc.backbone_state_dict()
    assert set(backbone) == set(ref.state_dict())
    assert not any(k.startswith(("mask_token", "semantic_attention")) for k in backbone)
    ref.load_state_dict(backbone, strict=True)
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        ours, theirs = enc(x).stages, ref(x, normalize=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    assert paper_swin.sa_placement == "inline"
    with torch.no_grad():
        inline = paper_swin(x).stages
    for a, b in zip(inline[:4], theirs[:4]):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(inline[4], theirs[4], atol=1e-4)


def _upsample_np(mask: np.ndarray, factor: int) -> np.ndarray:
    return np.kron(mask.astype(np.uint8), np.ones((1, factor, factor, factor), np.uint8)).astype(bool)


def test_mask_token_and_patch_drop_at_patch_embedding(tiny_swin):
    enc = tiny_swin()
    x = torch.rand(2, 1, 32, 32, 32)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 2, 2, 2, generator=g) < 0.5           # mask grid at 32³: 2³ (stage 3)
    drop = torch.rand(2, 16, 16, 16, generator=g) < 0.3        # patch grid: 16³
    plain = F.conv3d(x, enc.patch_embed.proj.weight, enc.patch_embed.proj.bias, stride=2)
    up = torch.from_numpy(_upsample_np(mask.numpy(), 8)).unsqueeze(1)
    token = enc.mask_token.view(1, -1, 1, 1, 1).expand_as(plain)
    with torch.no_grad():
        masked = enc.embed(x, mask=mask)
        dropped = enc.embed(x, patch_drop=drop)
        both = enc.embed(x, mask=mask, patch_drop=drop)
    torch.testing.assert_close(masked[up.expand_as(plain)], token[up.expand_as(plain)])
    torch.testing.assert_close(masked[~up.expand_as(plain)], plain[~up.expand_as(plain)])
    d = drop.unsqueeze(1).expand_as(plain)
    assert torch.count_nonzero(dropped[d]) == 0
    torch.testing.assert_close(dropped[~d], plain[~d])
    expected_both = torch.where(d, torch.zeros_like(plain), torch.where(up.expand_as(plain), token, plain))
    torch.testing.assert_close(both, expected_both)


def test_mask_changes_only_masked_positions_of_stage0(tiny_swin):
    enc = tiny_swin().eval()
    x = torch.rand(1, 1, 32, 32, 32)
    mask = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    mask[0, 1, 0, 1] = True
    with torch.no_grad():
        a, b = enc(x).stages[0], enc(x, mask=mask).stages[0]
    changed = (a - b).abs().amax(dim=1)[0] > 0
    expected = torch.zeros(16, 16, 16, dtype=torch.bool)
    expected[8:16, 0:8, 8:16] = True
    assert torch.equal(changed, expected)


def test_attention_is_the_sa_map_of_the_sa_stage_tokens(tiny_swin):
    enc = tiny_swin(sa_stage=2, sa_placement="branch").eval()
    with torch.no_grad():
        out = enc(torch.rand(2, 1, 32, 32, 32))
        cls, _, attn = enc.semantic_attention(tokens_from_map(out.stages[2]))
        assert enc(torch.rand(1, 1, 32, 32, 32), need_attention=False).attention is None
    torch.testing.assert_close(out.attention, attn)
    torch.testing.assert_close(out.cls, cls)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(2))
    assert out.grid == (4, 4, 4) and out.tokens.shape[-1] == 48


@pytest.mark.parametrize("sa_stage", [1, 2, 3, 4, None])
def test_every_sa_stage_runs_and_trains_every_parameter(tiny_swin, sa_stage):
    enc = tiny_swin(sa_stage=sa_stage, drop_path_rate=0.1)
    mask_grid = enc.mask_grid((32, 32, 32))
    mask = torch.zeros(1, *mask_grid, dtype=torch.bool)
    mask.view(1, -1)[:, 0] = True
    out = enc(torch.rand(1, 1, 32, 32, 32), mask=mask)
    loss = out.tokens.square().mean() + out.pooled.square().mean()
    if sa_stage is not None:
        loss = loss + out.cls.square().mean()
    loss.backward()
    # DDP (find_unused_parameters=False) needs every parameter in the graph of a student step.
    unused = [n for n, p in enc.named_parameters() if p.grad is None]
    assert unused == []


def test_activation_checkpointing_gives_the_same_output_and_gradients(tiny_swin):
    plain = tiny_swin()
    ckpt = tiny_swin(use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(1, 1, 32, 32, 32)
    outs = [m(x).cls.sum() for m in (plain, ckpt)]
    for o in outs:
        o.backward()
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(plain.layers2[0].blocks[0].attn.qkv.weight.grad,
                               ckpt.layers2[0].blocks[0].attn.qkv.weight.grad)


def test_use_v2_runs_and_loads_strictly_into_swinunetr_v2(tiny_swin):
    enc = tiny_swin(use_v2=True)
    assert "layers1c.0.layer.conv1.conv.weight" in enc.backbone_state_dict()
    ref = SwinUNETR(in_channels=1, out_channels=2, feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
                    window_size=4, use_v2=True).swinViT
    ref.load_state_dict(enc.backbone_state_dict(), strict=True)
    with torch.no_grad():
        assert tuple(enc(torch.rand(1, 1, 32, 32, 32)).cls.shape) == (1, 96)


def test_bad_inputs_raise(tiny_swin):
    enc = tiny_swin()
    with pytest.raises(ValueError, match=r"input size \(32, 32, 48\)"):
        enc(torch.rand(1, 1, 32, 32, 48))
    with pytest.raises(ValueError, match="input must be"):
        enc(torch.rand(1, 2, 32, 32, 32))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        enc(torch.rand(1, 1, 32, 32, 32), mask=torch.zeros(1, 4, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool"):
        enc(torch.rand(1, 1, 32, 32, 32), mask=torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="patch_drop"):
        enc(torch.rand(1, 1, 32, 32, 32), patch_drop=torch.zeros(1, 2, 2, 2, dtype=torch.bool))


def test_bf16_autocast_keeps_a_float32_sa_map(tiny_swin):
    enc = tiny_swin()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(torch.rand(1, 1, 32, 32, 32), mask=torch.ones(1, 2, 2, 2, dtype=torch.bool))
    assert out.attention.dtype == torch.float32
    torch.testing.assert_close(out.attention.sum(1), torch.ones(1))


def test_upsample_mask_matches_explicit_loop():
    mask = torch.rand(2, 2, 3, 2, generator=torch.Generator().manual_seed(0)) < 0.5
    up = upsample_mask(mask, (2, 1, 3))
    assert up.shape == (2, 4, 3, 6)
    for b in range(2):
        for z in range(4):
            for y in range(3):
                for x in range(6):
                    assert bool(up[b, z, y, x]) == bool(mask[b, z // 2, y, x // 3])
    with pytest.raises(ValueError, match="B, D, H, W"):
        upsample_mask(mask[0], (2, 2, 2))
    with pytest.raises(ValueError, match="factor"):
        upsample_mask(mask, (2, 0, 1))


def _stages_by_hand(enc, x):
    """MONAI's stage loop written out, with the in-line SA inserted after ``enc.sa_stage`` (no use_v2)."""
    h = enc.patch_embed(x)
    maps = [h]
    for k, layer in enumerate((enc.layers1, enc.layers2, enc.layers3, enc.layers4), 1):
        h = layer[0](h)
        maps.append(h)
        if k == enc.sa_stage:
            b, c = h.shape[:2]
            tokens = h.flatten(2).transpose(1, 2)
            x_sa = torch.cat([enc.semantic_attention.cls_token.expand(b, -1, -1), tokens], 1)
            for block in enc.semantic_attention.blocks:
                x_sa, _ = block(x_sa)
            h = x_sa[:, 1:].transpose(1, 2).reshape(h.shape)
            refined = h
    return maps, refined, x_sa


@pytest.mark.parametrize("sa_stage", [2, 3, 4])
def test_inline_sa_feeds_the_next_stage_with_its_residual_stream(tiny_swin, sa_stage):
    enc = tiny_swin(sa_stage=sa_stage, sa_placement="inline").eval()
    x = torch.rand(2, 1, 32, 32, 32)
    with torch.no_grad():
        out = enc(x)
        maps, refined, x_sa = _stages_by_hand(enc, x)
    norm = lambda t: F.layer_norm(t.movedim(1, -1), (t.shape[1],)).movedim(-1, 1)  # MONAI proj_out(normalize=True)
    for k in range(5):
        torch.testing.assert_close(out.stages[k], norm(maps[k]))  # the SA stage's map is its pre-SA output (AMPD)
    sa_norm = enc.semantic_attention.norm
    torch.testing.assert_close(out.cls, sa_norm(x_sa)[:, 0])
    torch.testing.assert_close(out.sa_tokens, sa_norm(x_sa)[:, 1:])
    if sa_stage == 4:
        torch.testing.assert_close(out.pooled, norm(refined).mean(dim=(2, 3, 4)))
    # LayerScale 0.1 at init: the SA residual is a small, non-zero change of the stage tokens.
    delta = (refined - maps[sa_stage]).norm() / maps[sa_stage].norm()
    assert 0 < delta < 1


def test_sa_placement_controls_which_outputs_depend_on_the_sa_block(tiny_swin):
    x = torch.rand(1, 1, 32, 32, 32)
    for placement, pooled_depends in (("inline", True), ("branch", False)):
        enc = tiny_swin(sa_placement=placement)
        out = enc(x)
        out.pooled.sum().backward()
        got = [p.grad is not None and p.grad.abs().sum() > 0 for p in enc.semantic_attention.parameters()]
        assert any(got) == pooled_depends, placement
    with pytest.raises(ValueError, match="sa_placement"):
        tiny_swin(sa_placement="sideways")


def test_sa_layer_scale_sets_the_initial_gamma_of_every_sa_block(tiny_swin):
    for value in (0.1, 1.0):
        enc = tiny_swin(sa_layer_scale=value)
        for block in enc.semantic_attention.blocks:
            assert torch.equal(block.gamma_1, torch.full_like(block.gamma_1, value))
            assert torch.equal(block.gamma_2, torch.full_like(block.gamma_2, value))
