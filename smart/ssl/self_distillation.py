"""The student/teacher module that computes one pretraining step's losses (Sec. III, Fig. 2; docs/ARCHITECTURE.md
"Method — one SMART step").

Per step, for views ``u, v`` (batched together as ``x = [u; v]``):

1. the EMA teacher sees the noisy views ``û, v̂`` (patch drop ``r_t``, Sec. III-D) under ``no_grad``;
2. student masks are drawn on the mask grid — attention strategies rank the *teacher's* SA/[CLS] map of the same view
   (Sec. III-B), random/blockwise ones ignore it;
3. the student sees ``ũ, ṽ`` (mask token at masked positions, drop path active);
4. AMIP (Eq. 6) and AMPD (Eq. 5) compare within a view (AMPD on the stage-3 tokens *before* the patch merging by
   default, ``loss.ampd_tokens``, with the mask-grid mask upsampled x2 to that grid), AITD (Eq. 2) and GITD (Eq. 4)
   across views; each loss is averaged over both directions/views and weighted:
   ``L = w_AMIP·AMIP + λ_AMPD·AMPD + λ_AITD·AITD + λ_GITD·GITD``;
   with ``loss.koleo > 0`` (not in the paper; the CPU ``small`` preset) a KoLeo term on the AITD/GITD heads'
   bottlenecks is added (:mod:`smart.ssl.losses.koleo`).
   ``loss.centering=sinkhorn_knopp`` (not in the paper; DINOv2) makes the AITD/GITD teacher targets the
   batch's Sinkhorn-Knopp normalisation instead of the EMA-centred softmax (:mod:`smart.ssl.centering`).

With ``monitor=True`` (the loop's logging steps) the step also fills :attr:`SelfDistillation.last_health` with the
training-health figures of :mod:`smart.ssl.health`; on other steps it computes none of them.

Losses with weight 0 are neither computed nor given heads. Every random draw (patch drop, masks) uses a generator
seeded by ``(seed, sample position, view)``, so a sample's corruption does not depend on batch layout, rank count or
resume point. Centre updates are *deferred* until the loop has decided the step is finite (:meth:`commit_centers`),
so one NaN batch cannot poison the running centres.
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smart.data.views import derive_seed
from smart.models.heads import DINOHead, ReconstructionHead
from smart.models.swin import upsample_mask
from smart.ssl.centering import CENTERINGS, Center, sinkhorn_knopp
from smart.ssl.ema import ema_update_, momentum_at
from smart.ssl.health import body_tokens, masked_body_share, teacher_collapse_stats, top1_agreement
from smart.ssl.losses.aitd import aitd_loss
from smart.ssl.losses.amip import amip_loss
from smart.ssl.losses.ampd import ampd_loss
from smart.ssl.losses.distill import teacher_probs
from smart.ssl.losses.gitd import gitd_loss
from smart.ssl.losses.koleo import koleo_loss
from smart.ssl.masking import attention_mask, make_mask, masking_strategy
from smart.ssl.noisy_teacher import patch_drop_mask
from smart.ssl.sections import EMASection, LossSection, MaskingSection, NoisyTeacherSection
from smart.ssl.stabilisers import Stabilisers

LOSS_NAMES = ("amip", "ampd", "aitd", "gitd")
# distillation loss -> (EncoderOutput field it reads, head name); AMPD's field follows loss.ampd_tokens (ampd_field)
_DISTILL = {"ampd": ("tokens", "patch_head"), "aitd": ("cls", "cls_head"), "gitd": ("pooled", "pooled_head")}
AMPD_TOKENS = ("pre_merge", "post_merge")
_PURPOSE_DROP = 11
_PURPOSE_MASK = 12


def _per_sample(draw: Callable[[torch.Generator], Tensor], seeds: list[int]) -> Tensor:
    """Concatenate one ``(1, ...)`` draw per sample, each from its own seeded CPU generator."""
    return torch.cat([draw(torch.Generator().manual_seed(s)) for s in seeds])


class SelfDistillation(nn.Module):
    """Student (encoder + DINO heads), EMA teacher (same, no grad), AMIP reconstruction head, centres.

    Args:
        encoder: the student encoder, built by the caller (``smart.train.pretrain.build_self_distillation`` builds it
            from the config with ``smart.models.factory.build_encoder``); the teacher is a deep copy.
        masking, noisy_teacher, loss, ema: the typed config sections it uses (``smart.ssl.sections``; the wiring
            makes them from the resolved config with ``pretrain_sections``): the student's masks, the teacher's patch
            drop, the loss weights / heads (``smart.models.heads``) / temperatures / centring, the EMA momentum.
        seed: ``train.seed``, from which every patch drop and mask is derived (``derive_seed``).
        stabilisers: the run's step schedules (``smart.ssl.stabilisers.resolve_stabilisers``), used here for the
            per-loss teacher temperatures; the pretraining loop passes the ones of its data set and world size.

    With ``model.sa_placement=inline`` AMIP reconstructs from the SA block's patch tokens (``sa_tokens``), so every
    loss but AMPD (read before the SA block, Sec. III-C) trains the SA block; with ``branch`` only AITD does.

    AMPD's tokens (``loss.ampd_tokens``): ``pre_merge`` (default on the Swin) reads ``EncoderOutput.pre_merge_tokens``,
    the mask stage's Swin-block output before MONAI's patch merging — the paper's "before performing patch merging
    of stage #3 output" (Sec. III-C) — on twice the mask grid (16³ x 192 at 128³), the student's mask upsampled x2
    per axis; ``post_merge`` reads ``tokens`` (8³ x 384, the mask grid itself). ``null`` (a backbone without patch
    merging, the ViT) reads ``tokens``, its patch tokens. ``ValueError`` for ``pre_merge`` on an encoder without
    pre-merge tokens, or another value.
    """

    def __init__(self, encoder: nn.Module, *, masking: MaskingSection, noisy_teacher: NoisyTeacherSection,
                 loss: LossSection, ema: EMASection, seed: int, stabilisers: Stabilisers) -> None:
        super().__init__()
        self.masking, self.noisy_teacher, self.loss, self.ema = masking, noisy_teacher, loss, ema
        self.weights = {name: float(getattr(loss, name)) for name in LOSS_NAMES}
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError(f"all loss weights are 0 ({self.weights}): nothing to train")
        # KoLeo (DINOv2) is a regulariser beside the four paper losses: it never makes a run "have something to train"
        # (smart.config rejects it with a batch of one image per process).
        self.weights["koleo"] = float(loss.koleo)
        self.seed = int(seed)
        self.stabilisers = stabilisers
        self.strategy = masking.strategy
        self.hints = masking.hints
        self.drop_unit = noisy_teacher.unit
        # Inline SA: the SA-refined tokens are the stage output AMIP reconstructs from (module docstring).
        self.amip_field = "sa_tokens" if getattr(encoder, "sa_placement", None) == "inline" and getattr(
            encoder, "semantic_attention", None) is not None else "tokens"
        spec = masking_strategy(self.strategy)
        # what the step does follows the registry entry's properties, not the strategy's name
        self.needs_attention, self.attention_rank, self.uses_hints = (spec.needs_attention, spec.attention_rank,
                                                                      spec.uses_hints)
        if (self.needs_attention or self.weights["aitd"] > 0) and getattr(encoder, "cls_dim", None) is None:
            raise ValueError(f"masking.strategy={self.strategy!r} / loss.aitd={self.weights['aitd']} need an encoder "
                             f"with a [CLS]/SA block, but this encoder has none (model.sa_stage is null?)")
        self.ampd_tokens = loss.ampd_tokens
        if self.ampd_tokens is not None and self.ampd_tokens not in AMPD_TOKENS:
            raise ValueError(f"loss.ampd_tokens must be one of {AMPD_TOKENS} or null, got {self.ampd_tokens!r}")
        pre_merge = self.ampd_tokens == "pre_merge"
        if pre_merge and not getattr(encoder, "has_patch_merging", False):
            raise ValueError(f"loss.ampd_tokens=pre_merge needs an encoder with patch merging, but "
                             f"{type(encoder).__name__} has none; leave loss.ampd_tokens null")
        self.ampd_field = "pre_merge_tokens" if pre_merge else "tokens"
        self.centering = loss.centering
        if self.centering not in CENTERINGS:
            raise ValueError(f"loss.centering must be one of {CENTERINGS}, got {self.centering!r}")
        dims = {"ampd": encoder.pre_merge_dim if pre_merge else encoder.token_dim, "aitd": encoder.cls_dim,
                "gitd": encoder.pooled_dim}
        student = nn.ModuleDict({"encoder": encoder})
        for name, (_, head) in _DISTILL.items():
            if self.weights[name] > 0:
                student[head] = DINOHead(int(dims[name]), loss.out_dim, hidden_dim=loss.head_hidden_dim,
                                         bottleneck_dim=loss.head_bottleneck_dim, nlayers=loss.head_nlayers)
        self.student = student
        self.teacher = copy.deepcopy(student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.recon_head = (ReconstructionHead(encoder.token_dim, tuple(encoder.token_voxels), out_chans=1)
                           if self.weights["amip"] > 0 else None)
        self.centers = nn.ModuleDict({name: Center(loss.out_dim, loss.center_momentum)
                                      for name in _DISTILL if self.weights[name] > 0})
        self._pending_centers: dict[str, Tensor] = {}
        self.last_masks: Tensor | None = None
        # The last step's student [CLS] / pooled embeddings (detached, both views): the loop collects them over a
        # logging window for effective_rank (smart.ssl.health) at no host-sync cost.
        self.last_embeddings: dict[str, Tensor] = {}
        # The training-health figures of the last monitor=True step (detached device scalars), else empty.
        self.last_health: dict[str, Tensor] = {}
        self.train()

    def train(self, mode: bool = True) -> "SelfDistillation":
        super().train(mode)
        self.teacher.eval()  # the teacher never uses drop path / dropout (only the student is regularised)
        return self

    def student_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Named trainable parameters (student encoder + heads + reconstruction head) for the optimiser."""
        named = [(f"student.{n}", p) for n, p in self.student.named_parameters()]
        if self.recon_head is not None:
            named += [(f"recon_head.{n}", p) for n, p in self.recon_head.named_parameters()]
        return named

    def prototype_parameters(self) -> list[nn.Parameter]:
        """The DINO heads' weight-normalised prototype layers (``last_layer``): frozen during the first
        ``optim.freeze_last_layer_epochs`` (DINO/iBOT), see ``smart.ssl.stabilisers``."""
        return [p for n, p in self.student.named_parameters() if ".last_layer." in n and p.requires_grad]

    # ---- corruption ------------------------------------------------------------------------------------------
    def _seeds(self, positions: Tensor | Sequence[int], purpose: int) -> list[int]:
        # The pretraining loop passes host ints (smart.data.views.collate_views): reading a device tensor here would
        # make every step wait for the GPU (DDP moves tensor arguments to the device).
        pos = [int(p) for p in (positions.tolist() if isinstance(positions, Tensor) else positions)]
        return [derive_seed(self.seed, purpose, p, view) for view in (0, 1) for p in pos]

    def _patch_drop(self, positions: Tensor, spatial: tuple[int, ...], grid: tuple[int, ...],
                    device: torch.device) -> Tensor | None:
        """Noisy-teacher drop on the patch ``grid``: cubes of ``noisy_teacher.unit`` voxels drawn on the drop grid
        ``spatial / unit`` and repeated onto the patches they cover, so a Swin (patch 2) and a ViT (patch 16) teacher
        lose the same voxels for the same seed (Sec. III-D)."""
        ratio = self.noisy_teacher.drop_ratio
        if ratio <= 0:
            return None
        unit = self.drop_unit
        if any(s % unit for s in spatial) or any(s // unit == 0 or g % (s // unit) for s, g in zip(spatial, grid)):
            raise ValueError(f"noisy_teacher.unit={unit} voxels must tile the crop {spatial} in whole patches "
                             f"(patch grid {grid})")
        dgrid = tuple(s // unit for s in spatial)
        drop = _per_sample(lambda g: patch_drop_mask(1, dgrid, ratio, g), self._seeds(positions, _PURPOSE_DROP))
        return upsample_mask(drop, tuple(g // d for g, d in zip(grid, dgrid))).to(device, non_blocking=True)

    def _masks(self, positions: Tensor, grid: tuple[int, ...], attention: Tensor | None, device: torch.device) -> Tensor:
        ratio, hint = self.masking.ratio, self.masking.hint_ratio
        if attention is not None:
            # Attention masks draw no random numbers: rank the whole batch at once on the device (no host sync on GPU).
            # A non-finite input (NaN voxels) gives a NaN map; rank it as uniform so the step runs, yields a NaN loss
            # and is skipped by the loop, instead of crashing the whole run inside the masking.
            att = torch.nan_to_num(attention.detach().float(), 0.0, 0.0, 0.0)
            noise = None
            if self.uses_hints and self.hints == "attmask":
                # Which of the top tokens stay visible as hints is random (AttMask): one seeded row per sample.
                n = att.shape[1]
                noise = _per_sample(lambda g: torch.rand(1, n, generator=g),
                                    self._seeds(positions, _PURPOSE_MASK)).to(att.device, non_blocking=True)
            return attention_mask(att, grid, ratio, hint, self.attention_rank, check_finite=False, hints=self.hints,
                                  reveal_noise=noise).to(device)
        seeds = self._seeds(positions, _PURPOSE_MASK)
        rows = [make_mask(self.strategy, 1, grid, ratio, hint, generator=torch.Generator().manual_seed(s))
                for s in seeds]
        return torch.cat(rows).to(device, non_blocking=True)

    # ---- one step --------------------------------------------------------------------------------------------
    def forward(self, u: Tensor, v: Tensor, positions: Tensor | Sequence[int], step: int,
                monitor: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """Losses for views ``u, v`` ``(B, 1, D, H, W)`` whose sample positions are ``positions`` (``B`` host ints, or
        a ``(B,)`` tensor).

        Returns ``(total, stats)``; ``stats`` holds detached 0-d device tensors ``loss/<name>`` (unweighted),
        ``loss/total``, ``mask_ratio`` and ``drop_ratio`` (the teacher temperatures are schedule values:
        :meth:`teacher_temps`). With ``monitor`` the health figures of this step go to :attr:`last_health`
        (:meth:`_health`); without it :attr:`last_health` is emptied. Nothing in the step reads a device value on the
        host.
        """
        if u.shape != v.shape or u.dim() != 5:
            raise ValueError(f"views must both be (B, C, D, H, W) of one shape, got {tuple(u.shape)} and {tuple(v.shape)}")
        if len(positions) != u.shape[0]:
            raise ValueError(f"positions has {len(positions)} entries for a batch of {u.shape[0]}")
        batch = u.shape[0]
        x = torch.cat([u, v])
        encoder = self.student["encoder"]
        spatial = tuple(x.shape[2:])
        pgrid, mgrid = tuple(encoder.patch_grid(spatial)), tuple(encoder.mask_grid(spatial))
        drop = self._patch_drop(positions, spatial, pgrid, x.device)

        with torch.no_grad():
            t_out = self.teacher["encoder"](x, patch_drop=drop, need_attention=self.needs_attention)
        masks = self._masks(positions, mgrid, t_out.attention if self.needs_attention else None, x.device)
        self.last_masks = masks.detach()  # (2B, *mask_grid), [u; v] order: for figures and tests
        s_out = encoder(x, mask=masks, need_attention=False)

        self.last_embeddings = {name: value.detach() for name, value in (("cls", s_out.cls), ("pooled", s_out.pooled))
                                if value is not None}
        ampd_masks = masks
        if self.ampd_field == "pre_merge_tokens":
            # Mask-grid (SA-grid) mask -> the pre-merge grid: each masked token covers its 2x2x2 pre-merge tokens.
            ampd_masks = upsample_mask(masks, [p // m for p, m in zip(s_out.pre_merge_grid, mgrid)])
        s_temp = self.loss.student_temp
        losses: dict[str, Tensor] = {}
        if self.recon_head is not None:
            pred = self.recon_head(getattr(s_out, self.amip_field), s_out.grid)
            voxel_mask = upsample_mask(masks, tuple(encoder.token_voxels))
            losses["amip"] = amip_loss(pred, x, voxel_mask)
        self._pending_centers = {}
        pairs: dict[str, tuple[Tensor, Tensor]] = {}  # loss -> (student logits, the teacher targets it learns from)
        spread_rows: list[Tensor] = []
        for name, (field, head) in _DISTILL.items():
            if self.weights[name] <= 0:
                continue
            field = self.ampd_field if name == "ampd" else field
            if name != "ampd" and self.weights["koleo"] > 0:
                s_logits, bottleneck = self.student[head](getattr(s_out, field), return_bottleneck=True)
                spread_rows.append(bottleneck)
            else:
                s_logits = self.student[head](getattr(s_out, field))
            with torch.no_grad():
                t_logits = self.teacher[head](getattr(t_out, field)).float()
            t_temp = self.stabilisers.teacher_temp_at(name, step)
            if name != "ampd" and self.centering == "sinkhorn_knopp":
                # DINOv2: both views' images of the batch share the prototypes equally (smart.ssl.centering); the
                # EMA centre is still updated (unused) so a checkpoint has one layout whatever the centring.
                probs = sinkhorn_knopp(t_logits, t_temp)
            else:
                probs = teacher_probs(t_logits, self.centers[name].center, t_temp)
            self._pending_centers[name] = t_logits.detach()
            if name == "ampd":
                losses[name] = ampd_loss(s_logits, probs, ampd_masks.flatten(1), student_temp=s_temp)
                pairs[name] = (s_logits, probs)
            else:
                # Cross-view: student(ũ) learns from teacher(v̂) and student(ṽ) from teacher(û); swapping the halves
                # of the teacher batch pairs them, and the batch mean averages the two directions.
                swapped = torch.cat([probs[batch:], probs[:batch]])
                fn = aitd_loss if name == "aitd" else gitd_loss
                losses[name] = fn(s_logits, swapped, student_temp=s_temp)
                pairs[name] = (s_logits, swapped)

        if spread_rows:
            # KoLeo per view: the rows of one view are different images, so pushing them apart keeps the image-level
            # teachers from becoming input-independent (smart.ssl.losses.koleo).
            losses["koleo"] = sum(koleo_loss(rows) for emb in spread_rows for rows in emb.split(batch)) / (
                2 * len(spread_rows))
        total = sum(self.weights[n] * losses[n] for n in losses)
        stats = {f"loss/{n}": val.detach() for n, val in losses.items()}
        stats["loss/total"] = total.detach()
        stats["mask_ratio"] = masks.float().mean()
        self.last_health = (self._health(pairs, ampd_masks, drop, x, masks, s_out.pre_merge_grid
                                         if self.ampd_field == "pre_merge_tokens" else mgrid) if monitor else {})
        stats["drop_ratio"] = drop.float().mean() if drop is not None else masks.new_zeros((), dtype=torch.float32)
        return total, stats

    def teacher_temps(self, step: int) -> dict[str, float]:
        """``{"teacher_temp/<name>": τ}`` of the distillation losses in use at ``step`` (host floats: a schedule, so
        the loop logs it without a device tensor per loss per step)."""
        return {f"teacher_temp/{name}": self.stabilisers.teacher_temp_at(name, step) for name in self.centers}

    def leaves_parameters_unused(self) -> bool:
        """Whether a step leaves some trainable student parameter out of the graph (DDP then needs
        ``find_unused_parameters=True``; otherwise that flag only costs a graph walk per step). Derived from the
        losses in use and the encoder's stages (tested against a real step of every registered method):

        * a Swin stage deeper than every loss reads is unused — AMPD/AMIP read the mask stage, AITD the SA stage,
          GITD stage 4 (e.g. the loss-subset ablations without GITD leave stage 4 unused);
        * the SA block is unused when nothing reads it (AITD off; in line, also no AMIP and no later stage read), and
          its final LayerNorm when only a later stage reads its stream (in line, AITD and AMIP off).

        Every head exists only for a loss in use, and a ViT's tokens all feed every loss, so ViTs use everything."""
        encoder = self.student["encoder"]
        if not hasattr(encoder, "sa_stage"):  # ViT
            return False
        w = self.weights
        read = [4] if w["gitd"] > 0 else []
        read += [encoder.mask_stage] if (w["ampd"] > 0 or w["amip"] > 0) else []
        read += [encoder.sa_stage] if (w["aitd"] > 0 and encoder.sa_stage is not None) else []
        deepest = max(read)
        if deepest < 4:
            return True
        if encoder.semantic_attention is None:
            return False
        # Every SA parameter but the final LayerNorm also feeds the next stage (in line); the LayerNorm feeds only the
        # [CLS] (AITD) and the SA patch tokens (AMIP in line), so it is the test for the whole block.
        return not (w["aitd"] > 0 or (encoder.sa_placement == "inline" and w["amip"] > 0))

    @torch.no_grad()
    def _health(self, pairs: Mapping[str, tuple[Tensor, Tensor]], ampd_masks: Tensor, drop: Tensor | None,
                x: Tensor, masks: Tensor, ampd_grid: tuple[int, ...]) -> dict[str, Tensor]:
        """This step's health figures (:mod:`smart.ssl.health`), each on exactly the rows its loss uses:

        * AITD / GITD: every image, paired cross-view as the loss pairs them -> ``teacher_entropy/<loss>``,
          ``teacher_spread/<loss>``, ``agreement/<loss>``;
        * AMPD: the masked tokens (on the AMPD token grid) whose voxels the noisy teacher saw -> ``.../ampd``, and,
          with a noisy teacher, the masked tokens it dropped entirely -> ``.../ampd_dropped`` (a token counts as
          dropped when all its patches were; targets there barely depend on the input);
        * ``mask_body_share``: the share of the student's masked mask-grid tokens inside the body
          (:func:`smart.ssl.health.body_tokens`).
        """
        encoder = self.student["encoder"]
        out: dict[str, Tensor] = {}
        for name, (s_logits, t_probs) in pairs.items():
            rows = {name: None}
            if name == "ampd":
                masked = ampd_masks.flatten(1).float()
                if drop is None:
                    rows = {name: masked}
                else:
                    factor = [p // a for p, a in zip(drop.shape[1:], ampd_grid)]
                    dropped = F.avg_pool3d(drop.float().unsqueeze(1), factor, factor)[:, 0].flatten(1) == 1.0
                    rows = {name: masked * (~dropped).float(), f"{name}_dropped": masked * dropped.float()}
            for key, weights in rows.items():
                out[f"teacher_entropy/{key}"], out[f"teacher_spread/{key}"] = teacher_collapse_stats(t_probs, weights)
                out[f"agreement/{key}"] = top1_agreement(s_logits, t_probs, weights)
        out["mask_body_share"] = masked_body_share(masks, body_tokens(x, encoder.token_voxels))
        return out

    @torch.no_grad()
    def commit_centers(self, apply: Tensor | None = None) -> None:
        """Fold the last forward's teacher logits into the centres (all-reduced under DDP). Call once per step on
        every rank: per *applied* step, or every step with ``apply`` (0-d bool tensor, false = keep the centres:
        decided on the device)."""
        for name, logits in self._pending_centers.items():
            self.centers[name].update(logits, apply)
        self._pending_centers = {}

    def discard_centers(self) -> None:
        self._pending_centers = {}

    @torch.no_grad()
    def update_teacher(self, step: int, total_steps: int, apply: Tensor | None = None) -> float:
        """EMA update with the cosine momentum of the *global* step (Sec. III-D); returns the momentum of the
        schedule. ``apply`` (0-d bool tensor): false leaves the teacher unchanged, decided on the device."""
        m = momentum_at(step, total_steps, self.ema.momentum_start, self.ema.momentum_end)
        ema_update_(self.teacher, self.student, m, apply=apply)
        return m

