"""``ViT3D``: a 3D ViT encoder for the ViT baselines (AttMask, MST; Sec. IV-B), with the SMART ``EncoderOutput``.

Paper scale: 12 blocks, width 768, 8 heads, patch 16 (so at a 128³ crop the token grid is 8³, the Swin stage-3 grid).
The mask grid is the patch grid. Masked patch embeddings are replaced by a learnable mask token and dropped ones
zeroed BEFORE the position embedding is added, so a masked/dropped token still knows where it is (as in iBOT/BEiT).
The learned position embedding is defined on the ``img_size`` patch grid and trilinearly interpolated for other
input sizes. ``attention`` is the last block's [CLS]->patch map with the Eq. 1 semantics of
:mod:`smart.models.semantic_attention` (head-averaged, [CLS] column dropped, renormalised).

The patch embedding is MONAI's ``PatchEmbeddingBlock`` (conv projection, learned position embedding); its forward is
not used because the mask token has to go in between the projection and the position embedding. The blocks are the
pre-norm blocks of :class:`smart.models.semantic_attention.TransformerBlock` without LayerScale: MONAI's
``TransformerBlock`` has no stochastic depth (the baselines use drop path) and registers an unused cross-attention
LayerNorm, which breaks DDP without ``find_unused_parameters``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import PatchEmbeddingBlock
from torch import Tensor, nn

from smart.models.output import EncoderOutput
from smart.models.semantic_attention import TransformerBlock, init_transformer_weights
from smart.models.swin import check_bool_grid


class ViT3D(nn.Module):
    """3D ViT with [CLS], mask token and interpolated learned position embedding.

    Args:
        in_chans: input channels.
        img_size: input edge(s) the position embedding is defined for (each divisible by ``patch_size``).
        patch_size: patch edge in voxels (paper: 16).
        dim: token width (paper: 768).
        depth: number of blocks (paper: 12).
        num_heads: heads (paper: 8; must divide ``dim``).
        mlp_ratio: MLP hidden size / ``dim``.
        drop_path_rate: stochastic depth, linearly increasing over the blocks.
    """

    def __init__(
        self,
        in_chans: int = 1,
        img_size: int | Sequence[int] = 128,
        patch_size: int = 16,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        img = (img_size,) * 3 if isinstance(img_size, int) else tuple(int(s) for s in img_size)
        if in_chans <= 0:
            raise ValueError(f"in_chans must be positive, got {in_chans}")
        if patch_size <= 0 or len(img) != 3 or any(s <= 0 or s % patch_size for s in img):
            raise ValueError(f"img_size {img_size!r} must be 3 positive edges divisible by patch_size={patch_size}")
        if depth < 1:
            raise ValueError(f"ViT depth must be >= 1, got {depth}")
        if num_heads <= 0 or dim <= 0 or dim % num_heads:
            raise ValueError(f"ViT num_heads={num_heads} must be positive and divide dim={dim}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.in_chans, self.img_size, self.patch_size, self.dim = in_chans, img, patch_size, dim
        self.patch_embed = PatchEmbeddingBlock(
            in_channels=in_chans,
            img_size=img,
            patch_size=patch_size,
            hidden_size=dim,
            num_heads=num_heads,
            proj_type="conv",
            pos_embed_type="learnable",
            spatial_dims=3,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, mlp_ratio, drop_path=r) for r in rates)
        self.norm = nn.LayerNorm(dim)
        init_transformer_weights(self.blocks)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    # ---- geometry -------------------------------------------------------------------------------------------
    def patch_grid(self, spatial: Sequence[int]) -> tuple[int, int, int]:
        spatial = tuple(int(s) for s in spatial)
        if len(spatial) != 3 or any(s <= 0 or s % self.patch_size for s in spatial):
            raise ValueError(f"input size {spatial} must be 3 positive edges divisible by patch {self.patch_size}")
        return tuple(s // self.patch_size for s in spatial)  # type: ignore[return-value]

    mask_grid = patch_grid

    @property
    def token_voxels(self) -> tuple[int, int, int]:
        return (self.patch_size,) * 3

    def voxels_per_token(self) -> tuple[int, int, int]:
        return self.token_voxels

    @property
    def token_dim(self) -> int:
        return self.dim

    @property
    def cls_dim(self) -> int:
        return self.dim

    @property
    def pooled_dim(self) -> int:
        return self.dim

    # ---- state split for encoder files ----------------------------------------------------------------------
    def export_state(self) -> dict:
        backbone = {k: v for k, v in self.state_dict().items() if k != "mask_token"}
        return {"backbone": backbone, "semantic_attention": None, "mask_token": self.mask_token.detach()}

    def load_export_state(self, state: dict) -> None:
        if state.get("semantic_attention") is not None:
            raise ValueError("a ViT encoder file must not carry a semantic_attention state")
        self.load_state_dict({**state["backbone"], "mask_token": state["mask_token"]}, strict=True)

    # ---- forward --------------------------------------------------------------------------------------------
    def position_embedding(self, grid: Sequence[int]) -> Tensor:
        """``(1, prod(grid), dim)``: the learned table, trilinearly resized when ``grid`` is not the ``img_size`` one."""
        pos = self.patch_embed.position_embeddings
        base = tuple(s // self.patch_size for s in self.img_size)
        if tuple(grid) == base:
            return pos
        table = pos.reshape(1, *base, self.dim).permute(0, 4, 1, 2, 3)
        table = F.interpolate(table, size=tuple(grid), mode="trilinear", align_corners=False)
        return table.flatten(2).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        patch_drop: Tensor | None = None,
        need_attention: bool = True,
    ) -> EncoderOutput:
        if x.ndim != 5 or x.shape[1] != self.in_chans:
            raise ValueError(f"input must be (B, {self.in_chans}, D, H, W), got {tuple(x.shape)}")
        grid = self.patch_grid(x.shape[2:])
        h = self.patch_embed.patch_embeddings(x).flatten(2).transpose(1, 2)
        if mask is not None:
            check_bool_grid("mask", mask, x.shape[0], grid)
            h = torch.where(mask.flatten(1).unsqueeze(-1), self.mask_token.to(h.dtype), h)
        if patch_drop is not None:
            check_bool_grid("patch_drop", patch_drop, x.shape[0], grid)
            h = h.masked_fill(patch_drop.flatten(1).unsqueeze(-1), 0.0)
        h = self.patch_embed.dropout(h + self.position_embedding(grid))
        h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        attention = None
        for i, block in enumerate(self.blocks):
            h, attn = block(h, return_cls_attention=need_attention and i == len(self.blocks) - 1)
            attention = attn if attn is not None else attention
        h = self.norm(h)
        tokens = h[:, 1:]
        return EncoderOutput(
            tokens=tokens, grid=grid, pooled=tokens.mean(dim=1), cls=h[:, 0], attention=attention, stages=None
        )
