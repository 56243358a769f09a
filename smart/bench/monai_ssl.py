"""The anchor for ``smart bench pretrain``: MONAI's SwinUNETR self-supervised pretraining (Tang et al., CVPR 2022).

Same MONAI ``SwinTransformer`` encoder and crop as SMART, with the three proxy tasks of that paper: rotation
prediction (4 classes), contrastive coding between two augmented sub-volumes, and masked-volume inpainting
(reconstruction through a transposed-convolution decoder from the last stage). Written here from the paper's
description so both methods are timed in one process on identical inputs; it is a timing anchor, not a training recipe.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets.swin_unetr import SwinTransformer
from torch import nn


class MonaiSwinSSL(nn.Module):
    """MONAI SwinTransformer + rotation, contrastive and reconstruction heads (Tang et al., Sec. 3.2)."""

    def __init__(
        self,
        embed_dim: int = 48,
        depths: Sequence[int] = (2, 2, 8, 2),
        num_heads: Sequence[int] = (4, 4, 8, 16),
        window_size: int = 4,
        patch_size: int = 2,
        contrastive_dim: int = 512,
        drop_path_rate: float = 0.1,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.swinViT = SwinTransformer(
            in_chans=1,
            embed_dim=embed_dim,
            window_size=(window_size,) * 3,
            patch_size=(patch_size,) * 3,
            depths=depths,
            num_heads=num_heads,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
            use_flash_attention=True,
        )
        last = embed_dim * 2 ** len(depths)
        self.rotation_head = nn.Linear(last, 4)
        self.contrastive_head = nn.Linear(last, contrastive_dim)
        # Five ×2 transposed convolutions undo the patch embedding (×2) and the four merges (×2 each).
        chans = [last // 2**i for i in range(6)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose3d(c_in, c_out, kernel_size=2, stride=2), nn.InstanceNorm3d(c_out), nn.LeakyReLU()]
        layers.append(nn.Conv3d(chans[-1], 1, kernel_size=1))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        last = self.swinViT(x.contiguous())[4]
        pooled = last.flatten(2).mean(-1)
        return self.rotation_head(pooled), self.contrastive_head(pooled), self.decoder(last)


def rotate_batch(x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each volume by k·90° in the axial (H, W) plane; returns the rotated batch and the labels k."""
    k = torch.randint(0, 4, (x.shape[0],), generator=generator)
    out = torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])
    return out, k.to(x.device)


def cutout(x: torch.Tensor, fraction: float = 0.3, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inpainting corruption: zero one random box per volume covering ``fraction`` of each axis' extent cubed-root-wise."""
    out = x.clone()
    size = [max(1, int(round(s * fraction ** (1 / 3)))) for s in x.shape[-3:]]
    for b in range(x.shape[0]):
        start = [int(torch.randint(0, s - w + 1, (1,), generator=generator)) for s, w in zip(x.shape[-3:], size)]
        out[b, :, start[0]:start[0] + size[0], start[1]:start[1] + size[1], start[2]:start[2] + size[2]] = 0
    return out


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent between matching rows of ``a`` and ``b`` (positives) against all other rows (negatives)."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.t() / temperature
    n = a.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(a.device)
    return F.cross_entropy(sim, target)


def monai_ssl_loss(model: MonaiSwinSSL, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One SwinUNETR-SSL objective on a batch: two rotated+cut-out views, rotation CE + contrastive + L1 inpainting."""
    x1, r1 = rotate_batch(x, generator)
    x2, r2 = rotate_batch(x, generator)
    rot1, c1, rec1 = model(cutout(x1, generator=generator))
    rot2, c2, rec2 = model(cutout(x2, generator=generator))
    rot = F.cross_entropy(torch.cat([rot1, rot2]), torch.cat([r1, r2]))
    rec = F.l1_loss(rec1, x1) + F.l1_loss(rec2, x2)
    return rot + contrastive_loss(c1, c2) + rec
