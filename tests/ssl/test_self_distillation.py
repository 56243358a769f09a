"""smart.ssl.self_distillation: every method/ablation builds and steps; losses, heads, masks, EMA and centres behave
as the paper and docs/ARCHITECTURE.md "one SMART step" say."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smart.config import load_config
from smart.models.swin import upsample_mask
from smart.ssl import masking
from smart.ssl.methods import method_names
from smart.ssl.self_distillation import LOSS_NAMES
from smart.train.pretrain import build_self_distillation

HEAD_OF = {"ampd": "patch_head", "aitd": "cls_head", "gitd": "pooled_head"}


def _cfg(name, crop=32, **sets):
    items = [f"data.crop_size=[{crop},{crop},{crop}]"] + [f"{k}={v}" for k, v in sets.items()]
    return load_config(name, "tiny", None, items)


def _views(batch=2, crop=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, crop, crop, crop, generator=g), torch.rand(batch, 1, crop, crop, crop, generator=g)


def _step_and_encoder_outputs(model):
    """One step of ``model`` (in eval mode) on :func:`_views` at positions 0, 1; its stats and the teacher's (with the
    step's patch drop) and the student's (with the step's masks) encoder outputs, recomputed outside the step."""
    u, v = _views()
    pos = torch.tensor([0, 1])
    _, stats = model(u, v, pos, step=0)
    x = torch.cat([u, v])
    with torch.no_grad():
        drop = model._patch_drop(pos, (32, 32, 32), (16, 16, 16), x.device)
        t_out = model.teacher["encoder"](x, patch_drop=drop)
        s_out = model.student["encoder"](x, mask=model.last_masks)
    return stats, t_out, s_out


@pytest.mark.parametrize("name", method_names())
def test_every_method_builds_and_steps(name):
    # SA at stage 4 of a 32^3 crop is a single token: too few to keep hints and mask 70%; use 64^3 there.
    crop = 64 if name == "smart_sa4" else 32
    cfg = _cfg(name, crop)
    torch.manual_seed(0)
    model = build_self_distillation(cfg)
    u, v = _views(crop=crop)
    total, stats = model(u, v, torch.tensor([0, 1]), step=0)
    total.backward()
    on = {n for n in LOSS_NAMES if cfg["loss"][n] > 0}
    assert {k.split("/")[1] for k in stats if k.startswith("loss/")} == on | {"total"}
    # heads exist exactly for the switched-on losses
    assert set(model.student) == {"encoder"} | {HEAD_OF[n] for n in on if n in HEAD_OF}
    assert (model.recon_head is not None) == ("amip" in on)
    assert set(model.centers) == {n for n in on if n in HEAD_OF}
    expected_total = sum(cfg["loss"][n] * float(stats[f"loss/{n}"]) for n in on)
    assert float(total.detach()) == pytest.approx(expected_total, rel=1e-5)
    assert math.isfinite(float(total.detach()))
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student["encoder"].mask_token.grad is not None  # masked tokens reach the loss
    # exact mask count on the mask grid, and exact teacher patch-drop count on the patch grid
    enc = model.student["encoder"]
    n = math.prod(enc.mask_grid((crop,) * 3))
    r, s = cfg["masking"]["ratio"], cfg["masking"]["hint_ratio"]
    strategy = cfg["masking"]["strategy"]
    count = masking.ceil_count(r, n) if strategy.startswith("attention") else masking.round_count(r, n)
    if strategy == "attention_high" and cfg["masking"]["hints"] == "attmask":
        count -= masking.ceil_count(s * r, n)  # AttMask: ceil(s*r*N) of the top ceil(r*N) revealed as hints
    assert model.last_masks.flatten(1).sum(1).tolist() == [count] * 4
    # the teacher drops whole noisy_teacher.unit cubes: exact count on the drop grid, same voxel fraction
    n_drop = (crop // cfg["noisy_teacher"]["unit"]) ** 3
    assert float(stats["drop_ratio"]) == pytest.approx(masking.round_count(cfg["noisy_teacher"]["drop_ratio"], n_drop) / n_drop)


@pytest.mark.parametrize("hints", ["top", "attmask"])
def test_attention_high_masks_come_from_the_teacher_map(hints):
    cfg = _cfg("smart", **{"noisy_teacher.drop_ratio": 0.0, "model.sa_stage": 2, "masking.hints": hints})  # 4^3 grid
    model = build_self_distillation(cfg)
    u, v = _views()
    model(u, v, torch.tensor([5, 6]), step=0)
    with torch.no_grad():
        att = model.teacher["encoder"](torch.cat([u, v])).attention
    n = 64
    top = att.argsort(dim=1, descending=True, stable=True)
    masked = model.last_masks.flatten(1)
    if hints == "top":  # ranks ceil(sN) .. ceil(sN)+ceil(rN)-1
        assert torch.equal(model.last_masks, masking.attention_mask(att, (4, 4, 4), 0.7, 0.1, "high"))
        assert not masked.gather(1, top[:, :7]).any() and masked.gather(1, top[:, 7:7 + 45]).all()
    else:  # every masked token is among the top ceil(rN)=45; ceil(s*r*N)=5 of those are hints
        assert masked.sum(1).tolist() == [45 - 5] * 4
        assert masked.gather(1, top[:, :45]).sum(1).tolist() == [40] * 4
        assert not masked.gather(1, top[:, 45:]).any()
        # the hints are a seeded random draw per sample: not the same 5 ranks in every row
        hint_ranks = [tuple((~masked[b].gather(0, top[b, :45])).nonzero().flatten().tolist()) for b in range(4)]
        assert len(set(hint_ranks)) > 1


def test_attention_masks_follow_the_registry_entry_not_the_strategy_name(monkeypatch):
    # the same entry as attention_high under another name: the step masks the most attended tokens, with AttMask hints
    monkeypatch.setitem(masking.MASKING_STRATEGIES, "most_attended", masking.MASKING_STRATEGIES["attention_high"])
    cfg = _cfg("smart", **{"noisy_teacher.drop_ratio": 0.0, "model.sa_stage": 2, "masking.hints": "attmask"})
    u, v = _views()
    torch.manual_seed(0)
    reference = build_self_distillation(cfg)
    reference(u, v, torch.tensor([5, 6]), step=0)
    cfg["masking"]["strategy"] = "most_attended"
    torch.manual_seed(0)
    renamed = build_self_distillation(cfg)
    renamed(u, v, torch.tensor([5, 6]), step=0)
    assert torch.equal(renamed.last_masks, reference.last_masks)
    assert renamed.last_masks.flatten(1).sum(1).tolist() == [45 - 5] * 4   # top ceil(rN) minus ceil(s*r*N) hints


def test_corruption_depends_on_position_only():
    cfg = _cfg("smit", **{"model.drop_path_rate": 0.0})
    model = build_self_distillation(cfg)
    u, v = _views()
    a, _ = model(u, v, torch.tensor([3, 4]), step=0)
    masks_a = model.last_masks.clone()
    b, _ = model(u, v, torch.tensor([3, 4]), step=0)
    assert torch.equal(model.last_masks, masks_a) and torch.equal(a, b)
    # sample 3 alone gets the same u/v masks as inside the batch
    model(u[:1], v[:1], torch.tensor([3]), step=0)
    assert torch.equal(model.last_masks, masks_a[[0, 2]])
    model(u, v, torch.tensor([7, 8]), step=0)
    assert not torch.equal(model.last_masks, masks_a)


def test_ema_update_follows_cosine_momentum():
    cfg = _cfg("smit", **{"train.steps": 10})
    model = build_self_distillation(cfg)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    t_before = [p.clone() for p in model.teacher.parameters()]
    s_now = [p.clone() for p in model.student.parameters()]
    m = model.update_teacher(step=3, total_steps=10)
    expected_m = 1.0 - (1.0 - 0.996) * (math.cos(math.pi * 3 / 10) + 1) / 2
    assert m == pytest.approx(expected_m, abs=1e-12)
    for t0, s, t1 in zip(t_before, s_now, model.teacher.parameters()):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * s)


def test_centres_change_only_on_commit():
    cfg = _cfg("smart")
    model = build_self_distillation(cfg)
    u, v = _views()
    model(u, v, torch.tensor([0, 1]), step=0)
    model.discard_centers()
    model.commit_centers()
    assert all(float(c.center.abs().sum()) == 0.0 for c in model.centers.values())
    model(u, v, torch.tensor([0, 1]), step=0)
    with torch.no_grad():
        t_logits = model.teacher["pooled_head"](model.teacher["encoder"](
            torch.cat([u, v]), patch_drop=model._patch_drop(torch.tensor([0, 1]), (32, 32, 32), (16, 16, 16), u.device)).pooled)
    model.commit_centers()
    torch.testing.assert_close(model.centers["gitd"].center, 0.1 * t_logits.mean(0, keepdim=True), rtol=1e-4, atol=1e-6)


def test_teacher_stays_in_eval_mode():
    model = build_self_distillation(_cfg("smart"))
    model.train()
    assert model.student.training and not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())


def test_monitor_step_reports_health_on_the_rows_each_loss_uses():
    """Issue 19: teacher figures on exactly the rows the loss uses. AMPD: the masked pre-merge tokens whose voxels
    the noisy teacher saw (``ampd``) and those it dropped (``ampd_dropped``), recomputed here from the heads, the
    upsampled student mask and the teacher's drop; AITD/GITD: every image, paired cross-view."""
    cfg = _cfg("smart", crop=64)
    torch.manual_seed(0)
    model = build_self_distillation(cfg)
    model.eval()
    u, v = _views(crop=64)
    pos = torch.tensor([0, 1])
    _, stats = model(u, v, pos, step=0)
    assert model.last_health == {} and not any(k.startswith(("teacher_entropy", "agreement")) for k in stats)
    _, stats = model(u, v, pos, step=0, monitor=True)
    health = model.last_health
    expected_keys = {f"{kind}/{name}" for kind in ("teacher_entropy", "teacher_spread", "agreement")
                     for name in ("ampd", "ampd_dropped", "aitd", "gitd")} | {"mask_body_share"}
    assert set(health) == expected_keys
    x = torch.cat([u, v])
    enc, t_enc = model.student["encoder"], model.teacher["encoder"]
    with torch.no_grad():
        drop = model._patch_drop(pos, (64, 64, 64), enc.patch_grid((64,) * 3), x.device)  # (4, 32, 32, 32)
        t_out = t_enc(x, patch_drop=drop)
        t_logits = model.teacher["patch_head"](t_out.pre_merge_tokens)
        t_temp = model.stabilisers.teacher_temp_at("ampd", 0)
        probs = torch.softmax((t_logits - model.centers["ampd"].center) / t_temp, -1)
    # masks (4, 4, 4, 4) -> pre-merge grid 8^3 by an explicit 2x repeat; a pre-merge token covers 4^3 patches
    masked = model.last_masks.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3).flatten(1)
    dropped = drop.reshape(4, 8, 4, 8, 4, 8, 4).all(dim=6).all(dim=4).all(dim=2).flatten(1)
    k = probs.shape[-1]
    for key, rows in (("ampd", masked & ~dropped), ("ampd_dropped", masked & dropped)):
        sel = probs[rows]
        assert sel.shape[0] > 0
        entropy = float(-(sel * sel.clamp_min(1e-30).log()).sum(-1).mean())
        spread = float(sel.std(dim=0, unbiased=False).mean())
        assert float(health[f"teacher_entropy/{key}"]) == pytest.approx(entropy, rel=1e-4)
        assert float(health[f"teacher_spread/{key}"]) == pytest.approx(spread, rel=1e-4, abs=1e-9)
        assert 0.0 <= float(health[f"agreement/{key}"]) <= 1.0
    assert int(masked.sum()) == 8 * int(model.last_masks.sum())  # each masked token -> 8 pre-merge tokens
    for name in ("aitd", "gitd"):
        assert float(health[f"teacher_entropy/{name}"]) <= math.log(k) + 1e-5
    assert set(model.last_embeddings) == {"cls", "pooled"}
    assert tuple(model.last_embeddings["cls"].shape) == (4, enc.cls_dim)


def test_ampd_reads_the_pre_merge_tokens_with_the_mask_upsampled():
    """Sec. III-C, "before performing patch merging of stage #3 output": AMPD recomputed from the pre-merge tokens
    (twice the mask grid, half the width) and the student mask repeated 2x per axis; ``post_merge`` reads the
    merged tokens on the mask grid itself. Each number differs from the other reading."""
    values = {}
    for tokens in ("pre_merge", "post_merge"):
        cfg = _cfg("smart", **{"loss.ampd_tokens": tokens})
        assert cfg["loss"]["ampd_tokens"] == tokens
        torch.manual_seed(0)
        model = build_self_distillation(cfg)
        model.eval()
        enc = model.student["encoder"]
        width = enc.pre_merge_dim if tokens == "pre_merge" else enc.token_dim
        assert model.student["patch_head"].mlp[0].in_features == width == (48 if tokens == "pre_merge" else 96)
        u, v = _views()
        pos = torch.tensor([0, 1])
        _, stats = model(u, v, pos, step=0)
        x = torch.cat([u, v])
        field = "pre_merge_tokens" if tokens == "pre_merge" else "tokens"
        with torch.no_grad():
            drop = model._patch_drop(pos, (32, 32, 32), (16, 16, 16), x.device)
            t_out = model.teacher["encoder"](x, patch_drop=drop)
            s_out = enc(x, mask=model.last_masks)
            t_logits = model.teacher["patch_head"](getattr(t_out, field))
            s_logits = model.student["patch_head"](getattr(s_out, field))
        grid = s_out.pre_merge_grid if tokens == "pre_merge" else s_out.grid
        assert grid == ((4, 4, 4) if tokens == "pre_merge" else (2, 2, 2))
        # AMIP, the SA block and the masks keep the mask grid (2^3 tokens of 16^3 voxels) under either setting
        assert s_out.grid == (2, 2, 2) and tuple(model.last_masks.shape) == (4, 2, 2, 2)
        assert model.recon_head.token_voxels == (16, 16, 16) and model.recon_head.proj.in_features == enc.token_dim
        assert tuple(t_out.attention.shape) == (4, 8) and tuple(s_out.sa_tokens.shape) == (4, 8, enc.cls_dim)
        mask = model.last_masks
        if tokens == "pre_merge":
            mask = torch.from_numpy(np.kron(mask.numpy(), np.ones((1, 2, 2, 2), dtype=bool)))
        mask = mask.flatten(1).float()
        target = torch.softmax(t_logits / model.stabilisers.teacher_temp_at("ampd", 0), -1)  # centre 0 at step 0
        ce = -(target * torch.log_softmax(s_logits / cfg["loss"]["student_temp"], -1)).sum(-1)
        expected = float(((ce * mask).sum(1) / mask.sum(1).clamp(min=1)).mean())
        assert float(stats["loss/ampd"]) == pytest.approx(expected, rel=1e-4)
        values[tokens] = expected
    assert abs(values["pre_merge"] - values["post_merge"]) > 1e-3


def test_ampd_tokens_bad_values_fail_before_any_work():
    with pytest.raises(ValueError, match=r"config key 'loss.ampd_tokens': expected one of pre_merge, post_merge"):
        _cfg("smart", **{"loss.ampd_tokens": "pre-merge"})
    with pytest.raises(ValueError, match=r"'loss.ampd_tokens'='pre_merge' needs a backbone with patch merging, but "
                                         r"model.arch=vit has none"):
        _cfg("attmask", **{"loss.ampd_tokens": "pre_merge"})
    assert _cfg("attmask")["loss"]["ampd_tokens"] is None and _cfg("smit")["loss"]["ampd_tokens"] == "pre_merge"
    # the engine refuses the same combination when handed a config that skipped load_config's checks
    cfg = _cfg("attmask")
    cfg["loss"]["ampd_tokens"] = "pre_merge"
    with pytest.raises(ValueError, match="loss.ampd_tokens=pre_merge needs an encoder with patch merging"):
        build_self_distillation(cfg)
    cfg["loss"]["ampd_tokens"] = "merged"
    with pytest.raises(ValueError, match=r"loss.ampd_tokens must be one of \('pre_merge', 'post_merge'\) or null"):
        build_self_distillation(cfg)


def test_gitd_matches_dino_semantics_with_a_nonzero_centre():
    """Collapse diagnosis (docs/results_seed_study.md): the centre is subtracted from the *teacher* logits only, the
    teacher is sharpened by the teacher temperature and the student by the student temperature, and the targets are
    cross-view. Recomputed here from the heads, independently of the loss modules."""
    cfg = _cfg("smart")
    torch.manual_seed(0)
    model = build_self_distillation(cfg)
    model.eval()  # student drop path off, so the student pass below is reproducible
    g = torch.Generator().manual_seed(3)
    centre = 0.3 * torch.randn(1, cfg["loss"]["out_dim"], generator=g)
    model.centers["gitd"].center.copy_(centre)
    stats, t_out, s_out = _step_and_encoder_outputs(model)
    with torch.no_grad():
        t_logits = model.teacher["pooled_head"](t_out.pooled)
        s_logits = model.student["pooled_head"](s_out.pooled)
    t_temp, s_temp = cfg["loss"]["warmup_teacher_temp"], cfg["loss"]["student_temp"]

    def ce(target, student):
        return float(-(target * torch.log_softmax(student, dim=-1)).sum(-1).mean())

    def swap(p):
        return torch.cat([p[2:], p[:2]])

    expected = ce(swap(torch.softmax((t_logits - centre) / t_temp, -1)), s_logits / s_temp)
    assert float(stats["loss/gitd"]) == pytest.approx(expected, rel=1e-4)
    # the plausible bugs give different numbers, so this test can tell them apart
    for wrong in (ce(swap(torch.softmax(t_logits / t_temp, -1)), s_logits / s_temp),               # no centre
                  ce(swap(torch.softmax((t_logits - centre) / s_temp, -1)), s_logits / t_temp),    # temps swapped
                  ce(swap(torch.softmax((t_logits - centre) / t_temp, -1)), (s_logits - centre) / s_temp),
                  ce(torch.softmax((t_logits - centre) / t_temp, -1), s_logits / s_temp)):          # same view
        assert abs(wrong - expected) > 1e-3


@pytest.mark.parametrize("placement", ["inline", "branch"])
def test_amip_only_trains_the_sa_block_that_ranks_the_masks_or_is_rejected(placement):
    """Issue #13: with only AMIP on and attention-guided masks, the SA block that ranks the tokens must get gradients
    (inline: AMIP reads the SA-refined tokens); under a side branch nothing would train it, so the config is
    rejected at load time rather than masking with a frozen random SA for the whole run."""
    sets = {"model.sa_placement": placement, "loss.ampd": 0, "loss.aitd": 0, "loss.gitd": 0}
    if placement == "branch":
        with pytest.raises(ValueError, match="only loss.aitd train it and all are 0"):
            _cfg("smart", **sets)
        return
    cfg = _cfg("smart", crop=64, **sets)  # 4^3 mask grid: hints and masked tokens both non-empty
    assert cfg["masking"]["strategy"] == "attention_high"
    model = build_self_distillation(cfg)
    u, v = _views(crop=64)
    total, stats = model(u, v, torch.tensor([0, 1]), step=0)
    assert set(k for k in stats if k.startswith("loss/")) == {"loss/amip", "loss/total"}
    total.backward()
    sa = model.student["encoder"].semantic_attention
    missing = [n for n, p in sa.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == [] and sum(float(p.grad.abs().sum()) for p in sa.parameters()) > 0


def test_noisy_teacher_drops_the_same_voxels_for_swin_and_vit():
    """Sec. III-D with one drop unit (noisy_teacher.unit, 16 voxels by default): for the same sample the Swin
    (patch 2) and the ViT (patch 16) teacher lose exactly the same voxels."""
    swin = build_self_distillation(_cfg("smart", crop=64))
    vit = build_self_distillation(_cfg("attmask", crop=64, **{"noisy_teacher.drop_ratio": 0.7}))
    assert swin.drop_unit == vit.drop_unit == 16
    pos, crop = torch.tensor([3, 9]), (64, 64, 64)
    voxels = []
    for model, patch in ((swin, 2), (vit, 16)):
        enc = model.student["encoder"]
        drop = model._patch_drop(pos, crop, enc.patch_grid(crop), torch.device("cpu"))
        assert drop.shape == (4, *enc.patch_grid(crop))
        voxels.append(upsample_mask(drop, (patch,) * 3))
    assert torch.equal(voxels[0], voxels[1])
    # 70 % of the 4^3 = 64 cubes of 16^3 voxels, exactly, per view
    assert voxels[0].flatten(1).float().mean(1).tolist() == [masking.round_count(0.7, 64) / 64] * 4
    # a drop unit that is not a whole number of patches of this crop fails with the reason
    with pytest.raises(ValueError, match="noisy_teacher.unit=16 voxels must tile the crop"):
        swin._patch_drop(pos, (40, 64, 64), (20, 32, 32), torch.device("cpu"))


def test_builds_from_typed_sections_alone_and_steps_as_the_config_wiring_does():
    """SelfDistillation takes its four sections, the seed and the stabilisers, never the config dict: built from
    sections written out here it equals the module the pretraining wiring builds from the resolved config with the
    same values, weight for weight and loss for loss."""
    from smart.config import encoder_config
    from smart.models.factory import build_encoder
    from smart.ssl.sections import (EMASection, LossSection, MaskingSection, NoisyTeacherSection, OptimSection,
                                    TrainSection)
    from smart.ssl.self_distillation import SelfDistillation
    from smart.ssl.stabilisers import resolve_stabilisers

    cfg = _cfg("smart", **{"masking.ratio": 0.6, "noisy_teacher.drop_ratio": 0.5, "ema.momentum_start": 0.99,
                           "train.seed": 7})
    masking_ = MaskingSection(strategy="attention_high", ratio=0.6, hint_ratio=0.1, hints="attmask")
    noisy = NoisyTeacherSection(drop_ratio=0.5, unit=16)
    ema = EMASection(momentum_start=0.99, momentum_end=1)
    loss = LossSection(amip=1, ampd=0.1, aitd=0.1, gitd=0.1, out_dim=256, student_temp=0.1, teacher_temp=0.07,
                       warmup_teacher_temp=0.04, warmup_teacher_temp_steps=20, center_momentum=0.9, koleo=0,
                       head_hidden_dim=64, head_bottleneck_dim=32, head_nlayers=3, ampd_tokens="pre_merge",
                       centering="ema", warmup_teacher_temp_epochs=None, teacher_temp_ampd=None, teacher_temp_aitd=None,
                       teacher_temp_gitd=None, warmup_teacher_temp_ampd=None, warmup_teacher_temp_aitd=None,
                       warmup_teacher_temp_gitd=None)
    optim = OptimSection(lr=5e-4, min_lr=1e-6, weight_decay=0.04, warmup_steps=10, clip_grad=3, weight_decay_end=0.4,
                         lr_base_batch=None, warmup_epochs=None, freeze_last_layer_epochs=1)
    train = TrainSection(steps=200, seed=7, checkpoint_every=50, log_every=10, max_nonfinite=10, steps_per_epoch=None,
                         epochs=None, compile=False, stop_on_collapse=False)
    stab = resolve_stabilisers(optim, loss, train, batch_size=2, n_samples=2)
    torch.manual_seed(0)
    built = SelfDistillation(build_encoder(encoder_config(cfg)), masking=masking_, noisy_teacher=noisy, loss=loss,
                             ema=ema, seed=7, stabilisers=stab)
    torch.manual_seed(0)
    wired = build_self_distillation(cfg)
    assert not hasattr(built, "cfg") and built.masking == masking_ and built.loss.amip == 1.0
    assert built.state_dict().keys() == wired.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), wired.state_dict().values()))
    u, v = _views()
    torch.manual_seed(1)  # the student's drop path draws from the global generator
    total_built, stats_built = built(u, v, [3, 4], step=5)
    torch.manual_seed(1)
    total_wired, stats_wired = wired(u, v, [3, 4], step=5)
    assert torch.equal(total_built, total_wired) and torch.equal(built.last_masks, wired.last_masks)
    assert {k: float(x) for k, x in stats_built.items()} == {k: float(x) for k, x in stats_wired.items()}
    assert built.teacher_temps(5) == wired.teacher_temps(5) == {
        f"teacher_temp/{n}": pytest.approx(0.04 + 0.03 * 5 / 20) for n in ("ampd", "aitd", "gitd")}
    assert built.update_teacher(100, 200) == wired.update_teacher(100, 200) == pytest.approx(
        1 - (1 - 0.99) * (math.cos(math.pi * 100 / 200) + 1) / 2)


def test_sinkhorn_knopp_centering_replaces_the_image_level_teachers_centre_only():
    """``loss.centering=sinkhorn_knopp`` (DINOv2): the AITD and GITD targets are the Sinkhorn-Knopp normalisation of
    the teacher logits of both views (3 iterations, the centre ignored), cross-view as before; AMPD keeps the EMA
    centre. Recomputed here from the heads with smart.ssl.centering.sinkhorn_knopp (its own tests pin its values)."""
    from smart.ssl.centering import sinkhorn_knopp

    cfg = _cfg("smart", **{"loss.centering": "sinkhorn_knopp"})
    torch.manual_seed(0)
    model = build_self_distillation(cfg)
    model.eval()
    g = torch.Generator().manual_seed(3)
    for name in ("aitd", "gitd"):
        model.centers[name].center.copy_(0.3 * torch.randn(1, cfg["loss"]["out_dim"], generator=g))
    stats, t_out, s_out = _step_and_encoder_outputs(model)
    t_temp, s_temp = cfg["loss"]["warmup_teacher_temp"], cfg["loss"]["student_temp"]
    for name, field, head in (("aitd", "cls", "cls_head"), ("gitd", "pooled", "pooled_head")):
        with torch.no_grad():
            t_logits = model.teacher[head](getattr(t_out, field))
            s_logits = model.student[head](getattr(s_out, field))
        target = sinkhorn_knopp(t_logits, t_temp, 3)
        swapped = torch.cat([target[2:], target[:2]])
        expected = float(-(swapped * torch.log_softmax(s_logits / s_temp, -1)).sum(-1).mean())
        centred = torch.softmax((t_logits - model.centers[name].center) / t_temp, -1)
        ema = float(-(torch.cat([centred[2:], centred[:2]]) * torch.log_softmax(s_logits / s_temp, -1)).sum(-1).mean())
        assert float(stats[f"loss/{name}"]) == pytest.approx(expected, rel=1e-4)
        assert abs(ema - expected) > 1e-3  # the EMA-centred targets would give another number
    # AMPD is unchanged by the key: the same step under the default gives the same AMPD loss
    torch.manual_seed(0)
    default = build_self_distillation(_cfg("smart"))
    default.eval()
    ema_stats, _, _ = _step_and_encoder_outputs(default)
    assert float(ema_stats["loss/ampd"]) == pytest.approx(float(stats["loss/ampd"]), rel=1e-6)
    assert cfg["loss"]["centering"] == "sinkhorn_knopp" and _cfg("smart")["loss"]["centering"] == "ema"
    with pytest.raises(ValueError, match="config key 'loss.centering': expected one of ema, sinkhorn_knopp, got 'x'"):
        _cfg("smart", **{"loss.centering": "x"})
