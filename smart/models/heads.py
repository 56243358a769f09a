"""Projection heads: ``DINOHead`` (AMPD/AITD/GITD, Eqs. 2-5) and ``ReconstructionHead`` (AMIP ``h^Pred``, Eq. 6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


class DINOHead(nn.Module):
    """MLP → bottleneck → L2-normalise → weight-normalised linear layer to ``out_dim`` logits.

    The linear heads ``h^{[CLS]}``, ``h^{Patch}``, ``h^{S4}`` of Sec. III-C whose outputs are sharpened into the
    distributions of Eqs. 2-5. The last layer is ``torch.nn.utils.parametrizations.weight_norm`` (the old
    ``nn.utils.weight_norm`` is deprecated); its magnitude ``g`` starts at 1 and, with ``norm_last_layer``, stays
    frozen so every prototype has unit norm — this stabilises self-distillation (DINO).

    Args:
        in_dim: input width.
        out_dim: number of prototypes K.
        hidden_dim: MLP hidden width.
        bottleneck_dim: width before the last layer.
        nlayers: linear layers before the last one (1 = a single projection to the bottleneck).
        norm_last_layer: freeze the weight-norm magnitude at 1.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim), ("bottleneck_dim", bottleneck_dim)
        ):
            if value <= 0:
                raise ValueError(f"DINOHead {name} must be positive, got {value}")
        if nlayers < 1:
            raise ValueError(f"DINOHead nlayers must be >= 1, got {nlayers}")
        widths = [in_dim] + [hidden_dim] * (nlayers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < nlayers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        magnitude.data.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)

    def forward(self, x: Tensor, return_bottleneck: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``x`` ``(..., in_dim)`` → logits ``(..., out_dim)``; with ``return_bottleneck`` also the bottleneck
        ``(..., bottleneck_dim)`` before its L2 normalisation (what ``loss.koleo`` spreads, smart.ssl.losses.koleo)."""
        bottleneck = self.mlp(x)
        logits = self.last_layer(F.normalize(bottleneck, dim=-1, eps=1e-6))
        return (logits, bottleneck) if return_bottleneck else logits


class ReconstructionHead(nn.Module):
    """One linear layer per token → its voxel cube, unpatchified to a volume (AMIP predictor ``h^Pred``, Eq. 6).

    Args:
        in_dim: token width.
        token_voxels: voxels per token along (D, H, W) (``encoder.token_voxels``; 16³ at the paper config).
        out_chans: output channels (1 for CT).

    ``forward(tokens (B, N, C), grid (D, H, W))`` → ``(B, out_chans, D*vd, H*vh, W*vw)``; tokens are row-major over
    ``grid`` with D slowest (``EncoderOutput`` order).
    """

    def __init__(self, in_dim: int, token_voxels: Sequence[int], out_chans: int = 1) -> None:
        super().__init__()
        voxels = tuple(int(v) for v in token_voxels)
        if in_dim <= 0 or out_chans <= 0:
            raise ValueError(f"in_dim and out_chans must be positive, got in_dim={in_dim}, out_chans={out_chans}")
        if len(voxels) != 3 or any(v <= 0 for v in voxels):
            raise ValueError(f"token_voxels must be 3 positive ints, got {token_voxels!r}")
        self.token_voxels, self.out_chans = voxels, out_chans
        self.proj = nn.Linear(in_dim, out_chans * math.prod(voxels))

    def forward(self, tokens: Tensor, grid: Sequence[int]) -> Tensor:
        d, h, w = (int(g) for g in grid)
        b, n, _ = tokens.shape
        if n != d * h * w:
            raise ValueError(f"{n} tokens do not fill the grid {tuple(grid)} ({d * h * w} cells)")
        vd, vh, vw = self.token_voxels
        cubes = self.proj(tokens).reshape(b, d, h, w, self.out_chans, vd, vh, vw)
        return cubes.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, self.out_chans, d * vd, h * vh, w * vw)
