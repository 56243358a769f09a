"""Window attention that takes the fused ``scaled_dot_product_attention`` path in training too.

MONAI 1.6.1's ``WindowAttention`` (Liu et al., Swin; used by the 3D Swin of Sec. III-B) only calls
``torch.nn.functional.scaled_dot_product_attention`` when autograd is off, so every student forward of pretraining
runs the explicit ``q @ k^T → +bias → softmax → @ v`` path, which materialises the attention matrix and its softmax
for backward. :class:`FusedWindowAttention` runs SDPA with the same additive bias (relative-position bias, plus the
shifted-window mask) also when gradients are needed (on CUDA by default; on CPU it measured slower, see the class).
Same parameters, buffers and names as MONAI's class, so state dicts load strictly both ways; the maths is identical
(tested against MONAI's explicit path, values and gradients, in ``tests/models/test_window_attention.py``).
"""

from __future__ import annotations

import torch
from monai.networks.nets.swin_unetr import WindowAttention
from torch import Tensor, nn

from smart.models.attention_kernels import fused_sdpa

__all__ = ["SDPA_WITH_GRAD", "FusedWindowAttention", "fuse_window_attention"]


SDPA_WITH_GRAD = ("cuda", "always", "never")


class FusedWindowAttention(WindowAttention):
    """MONAI ``WindowAttention`` that also uses SDPA while autograd is on, when ``use_flash_attention`` is set.

    ``sdpa_with_grad`` (class default ``"cuda"``; set it per instance or on the class) decides the grad-enabled case:

    * ``"cuda"``: SDPA for CUDA inputs, MONAI's explicit path for CPU inputs. Measured on CPU (BENCHMARKS.md,
      "window attention"): the relative-position bias is a learnable ``attn_mask``, and PyTorch's fused CPU kernel
      cannot return a mask gradient, so SDPA falls back to its math path, 1.1-1.25x *slower* than MONAI's explicit
      path. On CUDA the memory-efficient kernel supports a bias gradient and avoids storing the
      ``(windows, heads, n, n)`` softmax for backward; the head dim is zero-padded to a multiple of 8 there so that
      every stage is eligible for it under bf16 (:func:`smart.models.attention_kernels.fused_sdpa`; which kernel
      PyTorch picks is derived from its rules by ``sdpa_backend_report``, not measured).
    * ``"always"``: SDPA whenever the flag is set (used by the tests to check the CUDA maths on CPU).
    * ``"never"``: MONAI's behaviour (explicit path with grad).

    Without grad it always runs SDPA (as MONAI does). With ``use_flash_attention=False`` it is MONAI's forward
    unchanged. Attention dropout (``attn_drop``) is applied by SDPA in training mode (MONAI's own SDPA branch passes
    ``dropout_p=0``, harmless there only because it is inference-only).
    """

    sdpa_with_grad: str = "cuda"

    def _use_sdpa(self, x: Tensor) -> bool:
        if not self.use_flash_attention or torch.jit.is_scripting():
            return False
        if not torch.is_grad_enabled():
            return True
        if self.sdpa_with_grad not in SDPA_WITH_GRAD:
            raise ValueError(f"sdpa_with_grad must be one of {SDPA_WITH_GRAD}, got {self.sdpa_with_grad!r}")
        return self.sdpa_with_grad == "always" or (self.sdpa_with_grad == "cuda" and x.is_cuda)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:  # type: ignore[override]
        if not self._use_sdpa(x):
            return super().forward(x, mask)
        b, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        index = self.relative_position_index[:n, :n].reshape(-1)  # type: ignore[index]
        bias = self.relative_position_bias_table[index].reshape(n, n, heads).permute(2, 0, 1)
        if mask is not None:
            # Shifted windows: windows are ordered (image, window) in the batch, so the (nw, n, n) mask repeats
            # every nw rows. Expanding the bias over images costs one (b, heads, n, n) tensor, which SDPA needs in
            # 4D for its fused CPU/CUDA kernels.
            nw = mask.shape[0]
            bias = bias.unsqueeze(0) + mask.to(bias.dtype).unsqueeze(1)  # (nw, heads, n, n)
            bias = bias.unsqueeze(0).expand(b // nw, nw, heads, n, n).reshape(b, heads, n, n)
        else:
            bias = bias.unsqueeze(0)
        dropout = self.attn_drop.p if self.training else 0.0
        # fused_sdpa pads the head dim to a multiple of 8 on CUDA: with a bias only the memory-efficient kernel is
        # fused, and it needs that alignment under bf16 (stage 1 of the paper has head dim 12; attention_kernels.py)
        out = fused_sdpa(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout, scale=self.scale)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


def fuse_window_attention(module: nn.Module) -> int:
    """Turn every MONAI ``WindowAttention`` inside ``module`` into a :class:`FusedWindowAttention`, in place.

    The instances are re-classed rather than rebuilt: they keep the very same parameter and buffer objects and no
    random numbers are drawn, so a seeded model is bit-identical with or without the swap (and optimiser state or
    EMA copies that already point at the parameters stay valid). Returns how many modules were converted.
    """
    count = 0
    for sub in module.modules():
        if type(sub) is WindowAttention:
            sub.__class__ = FusedWindowAttention
            count += 1
    return count
