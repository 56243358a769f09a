"""``SwinSMART``: MONAI's 3D ``SwinTransformer`` with a mask token, patch drop and a semantic-attention (SA) block.

Sec. III-B / Fig. 2 of the paper; geometry in docs/ARCHITECTURE.md. The Swin blocks are MONAI's (with
``use_flash_attention`` their window attention runs SDPA in training too, see ``window_attention.py``), and
the backbone parameters keep MONAI's names, so ``backbone_state_dict()`` loads with ``strict=True`` into
``monai.networks.nets.SwinUNETR(...).swinViT``. The extra parameters (``mask_token``, ``semantic_attention``) live
outside those keys.

Forward order (MONAI's, plus the SMART inputs):
patch_embed → masked patches := mask_token (mask upsampled from the mask grid) → dropped patches := 0 (noisy
teacher, Sec. III-D) → pos_drop → layers1..4 (with the v2 conv blocks if enabled). Stage outputs 0..4 are
layer-normalised as MONAI's ``proj_out(normalize=True)`` does. MONAI's stage ``k`` (``layers{k}``) ends with its
patch merging, so stage output ``k`` has ``2·C_{k-1}`` channels on a grid halved per axis; the *pre-merge* tokens of
the mask stage (its Swin blocks' output before that merging: ``C_{k-1}`` channels on twice the mask grid, 192 on 16³ at
the paper's 128³ input and ``embed_dim`` 48) are what AMPD reads by default (``loss.ampd_tokens``, Sec. III-C: "before
performing patch merging of stage #3 output").

SA placement (``sa_placement``, docs/ARCHITECTURE.md "SA placement"; the paper "inserts" the SA module after stage 3
and computes AMPD on the stage-3 output "before the semantic attention layer", Sec. III-B/C):

* ``"inline"``: the SA block reads the raw stage-``k`` tokens; its residual stream (tokens + LayerScale-weighted
  attention/MLP residuals) is what stage ``k + 1`` consumes (for ``k = 4``: what ``pooled`` averages). Every loss that
  reaches stage ``k + 1`` (GITD) or the SA output (AITD, and AMIP, which reads ``sa_tokens``) trains the SA block.
  ``stages[k]`` and ``tokens`` stay the pre-SA output (AMPD's input). The backbone keys are still MONAI's, but a MONAI
  ``SwinUNETR`` has no SA, so there stage ``k + 1`` sees the tokens without the SA residual: stage outputs ``0..k``
  are identical, the later ones are not (the residual starts at LayerScale 0.1 and is learnt).
* ``"branch"``: the SA block reads the layer-normalised stage-``k`` tokens and stage ``k + 1`` consumes the unmodified
  ones. The exported backbone reproduces every stage output in MONAI, but only AITD trains the SA block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.swin_unetr import SwinTransformer
from torch import Tensor, nn

from smart.models.output import EncoderOutput
from smart.models.semantic_attention import SemanticAttention
from smart.models.window_attention import fuse_window_attention

N_STAGES = 4
SA_PLACEMENTS = ("inline", "branch")


def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    values = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != 3 or any(v <= 0 for v in values):
        raise ValueError(f"{name} must be a positive int or 3 positive ints, got {value!r}")
    return values  # type: ignore[return-value]


def upsample_mask(mask: Tensor, factor: int | Sequence[int]) -> Tensor:
    """Repeat each token of a ``(B, D, H, W)`` mask ``factor=(fd, fh, fw)`` times per axis -> ``(B, D·fd, H·fh,
    W·fw)`` (nearest neighbour): mask grid -> patch grid (the mask token here) or -> voxels (AMIP, Eq. 6, where a
    token covers its voxel cube, ``smart.ssl.self_distillation``). ``ValueError`` for another rank or a factor that
    is not 3 positive ints."""
    if mask.dim() != 4:
        raise ValueError(f"mask must be (B, D, H, W), got shape {tuple(mask.shape)}")
    fd, fh, fw = _triple(factor, "factor")
    b, d, h, w = mask.shape
    # a broadcast view and one copy: no data-dependent output size, so no host synchronisation on a GPU
    return mask[:, :, None, :, None, :, None].expand(b, d, fd, h, fh, w, fw).reshape(b, d * fd, h * fh, w * fw)


def tokens_from_map(x: Tensor) -> Tensor:
    """``(B, C, D, H, W)`` → ``(B, D*H*W, C)``, row-major with D slowest (the order of ``mask.flatten(1)``)."""
    return x.flatten(2).transpose(1, 2)


def check_bool_grid(name: str, value: Tensor, batch: int, grid: Sequence[int]) -> None:
    expected = (batch, *grid)
    if value.dtype != torch.bool or tuple(value.shape) != expected:
        raise ValueError(f"{name} must be a bool tensor of shape {expected}, got {value.dtype} {tuple(value.shape)}")


class SwinSMART(SwinTransformer):
    """3D Swin encoder of SMART.

    Args:
        in_chans: input channels.
        embed_dim: patch-embedding channels; stage k output has ``embed_dim * 2**k`` channels. Default 48: the
            paper gives "a feature embedding size of 384" (Sec. IV-C), which is the stage-3 output width 48·2³ that
            the SA block reads (docs/ARCHITECTURE.md "Geometry"), not the patch-embedding width.
        depths: Swin blocks per stage (paper: (2, 2, 8, 2)).
        num_heads: attention heads per stage (paper: (4, 4, 8, 16)).
        window_size: window edge in tokens (paper: 4).
        patch_size: patch edge in voxels (paper: 2).
        drop_path_rate: stochastic-depth rate, linearly increasing over the Swin blocks.
        sa_stage: stage (1..4) whose output feeds the SA block, or ``None`` for no SA (SMIT, iBOT, ablation).
            The mask grid is the stage-``sa_stage`` token grid, stage 3 without SA.
        sa_depth: SA blocks (paper: 2). They get no drop path: with 2 blocks, and LayerScale starting at 0.1, it
            would only add noise to the [CLS] that the masking relies on.
        sa_heads: SA attention heads (must divide ``embed_dim * 2**sa_stage``).
        sa_layer_scale: initial LayerScale of the SA blocks (0.1, see ``semantic_attention.py``).
        sa_placement: ``"inline"`` (stage ``sa_stage + 1`` consumes the SA block's patch tokens) or ``"branch"``
            (it consumes the un-SA'd tokens); see the module docstring. Ignored without SA.
        use_checkpoint: activation checkpointing of the Swin blocks (MONAI's flag).
        use_v2: MONAI SwinUNETR-v2 residual conv block at the start of each stage.
        use_flash_attention: fused SDPA window attention. MONAI only takes its SDPA branch when autograd is off;
            with this flag every ``WindowAttention`` is switched to
            :class:`smart.models.window_attention.FusedWindowAttention`, which uses SDPA (same bias, same
            parameters) with autograd on too — on CUDA; on CPU it keeps MONAI's explicit path with autograd, which
            measured faster there (BENCHMARKS.md). ``False`` keeps MONAI's behaviour unchanged.
    """

    def __init__(
        self,
        in_chans: int = 1,
        embed_dim: int = 48,
        depths: Sequence[int] = (2, 2, 8, 2),
        num_heads: Sequence[int] = (4, 4, 8, 16),
        window_size: int | Sequence[int] = 4,
        patch_size: int | Sequence[int] = 2,
        drop_path_rate: float = 0.0,
        sa_stage: int | None = 3,
        sa_depth: int = 2,
        sa_heads: int = 8,
        sa_layer_scale: float = 0.1,
        sa_placement: str = "inline",
        use_checkpoint: bool = False,
        use_v2: bool = False,
        use_flash_attention: bool = True,
    ) -> None:
        if in_chans <= 0:
            raise ValueError(f"in_chans must be positive, got {in_chans}")
        if embed_dim <= 0:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        depths, num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        if len(depths) != N_STAGES or any(d < 1 for d in depths):
            raise ValueError(f"depths must be {N_STAGES} ints >= 1, got {depths}")
        if len(num_heads) != N_STAGES or any(h < 1 for h in num_heads):
            raise ValueError(f"num_heads must be {N_STAGES} ints >= 1, got {num_heads}")
        for i, h in enumerate(num_heads):
            if (embed_dim * 2**i) % h:
                raise ValueError(f"num_heads[{i}]={h} does not divide the stage-{i + 1} width {embed_dim * 2**i}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        if sa_stage is not None and sa_stage not in range(1, N_STAGES + 1):
            raise ValueError(f"sa_stage must be 1..{N_STAGES} or None, got {sa_stage!r}")
        if sa_placement not in SA_PLACEMENTS:
            raise ValueError(f"sa_placement must be one of {SA_PLACEMENTS}, got {sa_placement!r}")
        window, patch = _triple(window_size, "window_size"), _triple(patch_size, "patch_size")
        super().__init__(
            in_chans=in_chans,
            embed_dim=embed_dim,
            window_size=window,
            patch_size=patch,
            depths=depths,
            num_heads=num_heads,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
            spatial_dims=3,
            use_v2=use_v2,
            use_flash_attention=use_flash_attention,
        )
        if use_flash_attention:
            # Re-classing draws no random numbers, so a seeded model has the same weights with or without it.
            fuse_window_attention(self)
        self.in_chans = in_chans
        self.sa_stage = sa_stage
        self.sa_placement = sa_placement
        self.mask_stage = 3 if sa_stage is None else sa_stage
        self.mask_token = nn.Parameter(torch.zeros(embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.semantic_attention: SemanticAttention | None = (
            None if sa_stage is None else SemanticAttention(embed_dim * 2**sa_stage, depth=sa_depth, num_heads=sa_heads,
                                                  layer_scale_init=sa_layer_scale)
        )

    # ---- geometry -------------------------------------------------------------------------------------------
    @property
    def input_multiple(self) -> tuple[int, ...]:
        """Each input edge must be a multiple of this: the patch, then 4 patch mergings (×2 each)."""
        return tuple(p * 2**N_STAGES for p in self.patch_size)

    def check_input_size(self, spatial: Sequence[int]) -> tuple[int, int, int]:
        spatial = tuple(int(s) for s in spatial)
        if len(spatial) != 3 or any(s <= 0 or s % m for s, m in zip(spatial, self.input_multiple)):
            raise ValueError(
                f"input size {spatial} must be 3 positive edges divisible by {self.input_multiple} "
                f"(patch {tuple(self.patch_size)} x 2**{N_STAGES} patch mergings)"
            )
        return spatial  # type: ignore[return-value]

    def patch_grid(self, spatial: Sequence[int]) -> tuple[int, int, int]:
        spatial = self.check_input_size(spatial)
        return tuple(s // p for s, p in zip(spatial, self.patch_size))  # type: ignore[return-value]

    def mask_grid(self, spatial: Sequence[int]) -> tuple[int, int, int]:
        return tuple(g // 2**self.mask_stage for g in self.patch_grid(spatial))  # type: ignore[return-value]

    @property
    def token_voxels(self) -> tuple[int, int, int]:
        """Voxels per mask-grid token along each axis (16³ at the paper config)."""
        return tuple(p * 2**self.mask_stage for p in self.patch_size)  # type: ignore[return-value]

    def voxels_per_token(self) -> tuple[int, int, int]:
        return self.token_voxels

    @property
    def token_dim(self) -> int:
        return self.embed_dim * 2**self.mask_stage

    # Pre-merge tokens (AMPD, Sec. III-C): the mask stage's Swin blocks run at the previous stage's width and twice
    # the mask grid; MONAI's ``PatchMerging`` at the end of the stage then halves the grid and doubles the width.
    has_patch_merging = True

    def pre_merge_grid(self, spatial: Sequence[int]) -> tuple[int, int, int]:
        """Token grid of the mask stage before its patch merging: twice the mask grid per axis (16³ at 128³, paper
        config; 4³ at the 32³ ``tiny`` crop)."""
        return tuple(g // 2 ** (self.mask_stage - 1) for g in self.patch_grid(spatial))  # type: ignore[return-value]

    @property
    def pre_merge_dim(self) -> int:
        """Channels of the pre-merge tokens: ``embed_dim * 2**(mask_stage - 1)`` (192 at the paper config)."""
        return self.embed_dim * 2 ** (self.mask_stage - 1)

    @property
    def cls_dim(self) -> int | None:
        return None if self.sa_stage is None else self.embed_dim * 2**self.sa_stage

    @property
    def pooled_dim(self) -> int:
        return self.embed_dim * 2**N_STAGES

    # ---- state split for encoder files ----------------------------------------------------------------------
    _EXTRA = ("mask_token", "semantic_attention")

    def backbone_state_dict(self) -> dict[str, Tensor]:
        """Only MONAI ``SwinTransformer`` keys (loads strictly into ``SwinUNETR(...).swinViT``)."""
        return {k: v for k, v in self.state_dict().items() if k.split(".", 1)[0] not in self._EXTRA}

    def export_state(self) -> dict:
        sa = self.semantic_attention
        return {
            "backbone": self.backbone_state_dict(),
            "semantic_attention": None if sa is None else sa.state_dict(),
            "mask_token": self.mask_token.detach(),
        }

    def load_export_state(self, state: dict) -> None:
        full = dict(state["backbone"])
        full["mask_token"] = state["mask_token"]
        if (state.get("semantic_attention") is None) != (self.semantic_attention is None):
            raise ValueError("semantic_attention state present/absent does not match sa_stage of the model config")
        for k, v in (state.get("semantic_attention") or {}).items():
            full[f"semantic_attention.{k}"] = v
        self.load_state_dict(full, strict=True)

    # ---- forward --------------------------------------------------------------------------------------------
    def embed(self, x: Tensor, mask: Tensor | None = None, patch_drop: Tensor | None = None) -> Tensor:
        """Patch embedding ``(B, C, *patch_grid)`` with masked patches replaced and dropped patches zeroed."""
        if x.ndim != 5 or x.shape[1] != self.in_chans:
            raise ValueError(f"input must be (B, {self.in_chans}, D, H, W), got {tuple(x.shape)}")
        pgrid, mgrid = self.patch_grid(x.shape[2:]), self.mask_grid(x.shape[2:])
        x0 = self.patch_embed(x)
        if mask is not None:
            check_bool_grid("mask", mask, x.shape[0], mgrid)
            up = upsample_mask(mask, [p // m for p, m in zip(pgrid, mgrid)]).unsqueeze(1)
            x0 = torch.where(up, self.mask_token.to(x0.dtype).view(1, -1, 1, 1, 1), x0)
        if patch_drop is not None:
            check_bool_grid("patch_drop", patch_drop, x.shape[0], pgrid)
            x0 = x0.masked_fill(patch_drop.unsqueeze(1), 0.0)
        return x0

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        mask: Tensor | None = None,
        patch_drop: Tensor | None = None,
        need_attention: bool = True,
    ) -> EncoderOutput:
        """``x`` ``(B, in_chans, D, H, W)``; ``mask`` bool ``(B, *mask_grid)`` True = masked; ``patch_drop`` bool
        ``(B, *patch_grid)`` True = zeroed."""
        h = self.pos_drop(self.embed(x, mask, patch_drop))
        # The mask stage's tokens before its patch merging (AMPD): MONAI's BasicLayer runs blocks and merging in one
        # forward, so the merging's input is read by a pre-hook (keeps MONAI's parameter names and code untouched).
        merged_input: list[Tensor] = []
        merging = getattr(self, f"layers{self.mask_stage}")[0].downsample
        tap = merging.register_forward_pre_hook(lambda _module, args: merged_input.append(args[0]))
        stages = [self.proj_out(h, normalize=True)]
        convs = (
            (self.layers1c, self.layers2c, self.layers3c, self.layers4c) if self.use_v2 else (None,) * N_STAGES
        )
        sa = self.semantic_attention
        cls = attention = sa_tokens = None
        last = None  # the normalised map that ``pooled`` averages when inline SA sits at stage 4
        layers = (self.layers1, self.layers2, self.layers3, self.layers4)
        try:
            for stage, (layer, conv) in enumerate(zip(layers, convs), 1):
                if conv is not None:
                    h = conv[0](h.contiguous())
                h = layer[0](h.contiguous())
                stages.append(self.proj_out(h, normalize=True))
                if sa is None or stage != self.sa_stage:
                    continue
                if self.sa_placement == "branch":
                    cls, sa_tokens, attention = sa(tokens_from_map(stages[stage]), need_attention)
                    continue
                stream, attention = sa.stream(tokens_from_map(h), need_attention)
                normed = sa.norm(stream)
                cls, sa_tokens = normed[:, 0], normed[:, 1:]
                h = stream[:, 1:].transpose(1, 2).reshape(h.shape)  # back to (B, C, D, H, W) for the next stage
                if stage == N_STAGES:
                    last = self.proj_out(h, normalize=True)
        finally:  # the hook lives for this one forward only: no state is kept on the module
            tap.remove()
        tokens = tokens_from_map(stages[self.mask_stage])
        grid = tuple(stages[self.mask_stage].shape[2:])
        pooled = (stages[N_STAGES] if last is None else last).mean(dim=(2, 3, 4))
        pre = merged_input[-1]  # (B, D, H, W, C), channels last as MONAI's blocks leave it
        # layer-normalised like every stage output (MONAI proj_out(normalize=True)), flattened D slowest
        pre_merge_tokens = torch.nn.functional.layer_norm(pre, pre.shape[-1:]).flatten(1, 3)
        return EncoderOutput(tokens=tokens, grid=grid, pooled=pooled, cls=cls, attention=attention, stages=stages,
                             sa_tokens=sa_tokens, pre_merge_tokens=pre_merge_tokens,
                             pre_merge_grid=tuple(pre.shape[1:4]))
