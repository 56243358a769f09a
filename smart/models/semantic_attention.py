"""Semantic attention (SA) block: a learnable [CLS] and ``depth`` pre-norm ViT blocks with LayerScale (Sec. III-B).

The SA block is what gives Swin a global, image-level attention map (Eq. 1) for attention-guided masking. It runs
on the tokens of one Swin stage output (in line or as a side branch: ``SwinSMART(sa_placement=...)``,
docs/ARCHITECTURE.md) and returns the [CLS] embedding, the updated patch tokens and the SA map.

Decisions the paper leaves open:

* **LayerScale init 0.1.** CaiT (Touvron et al., 2021) picks the initial LayerScale by depth: 0.1 up to 18 blocks,
  1e-5 at 24, 1e-6 deeper. SA has 2 blocks, so 0.1: small enough that a freshly inserted block starts close to the
  identity on the Swin tokens, large enough that the [CLS] path (which has no residual input of its own) learns fast.
* **The SA map (Eq. 1)** is the head-averaged softmax of the [CLS] query against all N+1 keys of the LAST SA block
  (the one whose [CLS] output is used). Masking needs one weight per patch token, so the [CLS] column is dropped and
  the N remaining entries are renormalised to sum to 1 per image. Renormalising does not change the ranking that
  attention-guided masking uses, and it makes maps comparable across images whatever the [CLS] self-weight is.
* **No position embedding** is added to the Swin tokens: the [CLS] pooling is permutation invariant by design and the
  Swin tokens already carry their spatial context from the windowed stages.
* The [CLS] token sits at index 0 (the paper writes it as ``z_{N+1}``; only the bookkeeping differs).
"""

from __future__ import annotations

import torch
from monai.networks.blocks import MLPBlock
from monai.networks.layers import DropPath
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from smart.models.attention_kernels import fused_sdpa


def class_attention_map(q_cls: Tensor, k: Tensor) -> Tensor:
    """Eq. 1 from per-head tensors: ``q_cls`` ``(B, h, d)``, ``k`` ``(B, h, 1 + N, d)`` with [CLS] at key index 0.

    Returns ``(B, N)``: ``mean_h softmax(q_h · K_hᵀ / sqrt(d))`` over the N+1 keys, [CLS] column dropped,
    renormalised over the N patch tokens.
    """
    scale = q_cls.shape[-1] ** -0.5
    # float32 even under bf16 autocast: the map ranks tokens for masking and is compared across images.
    with torch.autocast(device_type=q_cls.device.type, enabled=False):
        logits = torch.einsum("bhd,bhnd->bhn", q_cls.float(), k.float()) * scale
        satt = logits.softmax(dim=-1).mean(dim=1)[:, 1:]
        return satt / satt.sum(dim=-1, keepdim=True)


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim <= 0 or num_heads <= 0:
            raise ValueError(f"dim and num_heads must be positive, got dim={dim}, num_heads={num_heads}")
        if dim % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide the token dimension {dim}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: Tensor, return_cls_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        """``x`` ``(B, 1+N, C)`` → (output ``(B, 1+N, C)``, Eq. 1 map ``(B, N)`` of query 0 if requested)."""
        q, k, v = self._heads(x)
        out = fused_sdpa(q, k, v)  # no bias: flash-eligible under bf16 (attention_kernels.py)
        out = self.proj(out.transpose(1, 2).reshape(x.shape))
        # The fused kernel never materialises the attention matrix, so the one row Eq. 1 needs is recomputed from
        # the same q/k: O(N) extra work instead of O(N²) memory.
        attn = class_attention_map(q[:, :, 0], k) if return_cls_attention else None
        return out, attn


class TransformerBlock(nn.Module):
    """Pre-norm ViT block ``x + γ₁·Attn(LN(x))``, ``x + γ₂·MLP(LN(x))`` with optional LayerScale γ and drop path.

    Args:
        dim: token dimension.
        num_heads: attention heads (must divide ``dim``).
        mlp_ratio: MLP hidden size / ``dim``.
        qkv_bias: bias on the q/k/v projections (the paper's ``b_q, b_k, b_v``).
        drop_path: stochastic-depth rate of both residual branches.
        layer_scale_init: initial LayerScale value (CaiT); ``None`` = no LayerScale (plain ViT block).

    ``use_checkpoint`` (attribute, default off; ``smart.models.activation_checkpointing``) recomputes the block in
    backward instead of saving its activations.
    """

    use_checkpoint: bool = False

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        layer_scale_init: float | None = None,
    ) -> None:
        super().__init__()
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        if layer_scale_init is not None and layer_scale_init <= 0:
            raise ValueError(f"layer_scale_init must be positive or None, got {layer_scale_init}")
        self.layer_scale_init = layer_scale_init
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), dropout_rate=0.0)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init is None:
            self.gamma_1 = self.gamma_2 = None
        else:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    @staticmethod
    def _scale(x: Tensor, gamma: Tensor | None) -> Tensor:
        return x if gamma is None else x * gamma

    def forward(self, x: Tensor, return_cls_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self._forward, x, return_cls_attention, use_reentrant=False)
        return self._forward(x, return_cls_attention)

    def _forward(self, x: Tensor, return_cls_attention: bool) -> tuple[Tensor, Tensor | None]:
        y, attn = self.attn(self.norm1(x), return_cls_attention)
        x = x + self.drop_path(self._scale(y, self.gamma_1))
        x = x + self.drop_path(self._scale(self.mlp(self.norm2(x)), self.gamma_2))
        return x, attn


def init_transformer_weights(module: nn.Module) -> None:
    """ViT initialisation: truncated-normal (std 0.02) linear weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, TransformerBlock) and m.gamma_1 is not None:
            nn.init.constant_(m.gamma_1, m.layer_scale_init)
            nn.init.constant_(m.gamma_2, m.layer_scale_init)


class SemanticAttention(nn.Module):
    """[CLS] + ``depth`` LayerScale ViT blocks + final LayerNorm on tokens ``(B, N, C)`` (Sec. III-B, Eq. 1).

    Args:
        dim: token dimension C (384 at the paper's stage 3).
        depth: number of blocks (paper: 2).
        num_heads: attention heads h (must divide ``dim``).
        mlp_ratio: MLP hidden size / ``dim``.
        layer_scale_init: initial LayerScale (0.1, see module docstring).

    ``forward(tokens, need_attention=True)`` returns ``(cls (B, C), patch_tokens (B, N, C), attention (B, N) | None)``.
    """

    def __init__(
        self,
        dim: int,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        layer_scale_init: float = 0.1,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"SemanticAttention depth must be >= 1, got {depth}")
        if num_heads <= 0 or dim % num_heads != 0:
            raise ValueError(f"SemanticAttention num_heads={num_heads} must be positive and divide dim={dim}")
        self.dim = dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio=mlp_ratio, layer_scale_init=layer_scale_init)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh initialisation (also the "random SA" fine-tuning head of Sec. VI)."""
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_transformer_weights(self)

    def stream(self, tokens: Tensor, need_attention: bool = True) -> tuple[Tensor, Tensor | None]:
        """The residual stream ``(B, 1+N, C)`` after the blocks, *before* the final LayerNorm ([CLS] at index 0),
        and the Eq. 1 map ``(B, N)`` (``None`` unless ``need_attention``).

        Each block adds ``γ·Attn`` and ``γ·MLP`` to its input, so the patch part of the stream is the input tokens plus
        a LayerScale-weighted residual: what the next Swin stage consumes when SA is placed in line
        (``SwinSMART(sa_placement="inline")``)."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.dim:
            raise ValueError(f"SemanticAttention expects tokens (B, N, {self.dim}), got {tuple(tokens.shape)}")
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        attention = None
        for i, block in enumerate(self.blocks):
            x, attn = block(x, return_cls_attention=need_attention and i == len(self.blocks) - 1)
            attention = attn if attn is not None else attention
        return x, attention

    def forward(self, tokens: Tensor, need_attention: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
        x, attention = self.stream(tokens, need_attention)
        x = self.norm(x)
        return x[:, 0], x[:, 1:], attention
