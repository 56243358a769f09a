"""``EncoderClassifier``: an encoder plus a linear classification head, for fine-tuning (Sec. IV-D, VI).

Heads (the "[CLS] token versus average pooling" study, Sec. VI):

* ``"cls"``: the SA [CLS] (Swin with SA) or the ViT [CLS];
* ``"pooled"``: the average pool of the last stage (Swin stage 4 / ViT patch tokens);
* ``"random_sa"``: the SA block is re-initialised (pretrained backbone, fresh SA) and its [CLS] is used.

The heads are registered by name in :data:`HEADS` (the ``--head`` choices of ``smart finetune``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from smart.registry import look_up


@dataclass(frozen=True)
class ClassifierHead:
    """One entry of :data:`HEADS`: ``feature`` is the ``EncoderOutput`` field the linear layer reads (``"cls"`` or
    ``"pooled"``); ``fresh_sa`` re-initialises the SA block before fine-tuning."""

    feature: str
    fresh_sa: bool = False


# Order = preference when several heads ran for one variant (the paper's default [CLS] head first; smart.eval.tables).
HEADS: dict[str, ClassifierHead] = {
    "cls": ClassifierHead("cls"),
    "pooled": ClassifierHead("pooled"),
    "random_sa": ClassifierHead("cls", fresh_sa=True),
}


class EncoderClassifier(nn.Module):
    """``logits = Linear(LayerNorm(feature))`` with ``feature`` chosen by ``head``.

    Args:
        encoder: a SMART encoder (``build_encoder`` / ``load_encoder``).
        head: a :data:`HEADS` name: ``"cls"`` | ``"pooled"`` | ``"random_sa"`` (``ValueError`` otherwise).
        n_classes: output logits (2 for the binary tasks, used with cross-entropy).
    """

    def __init__(self, encoder: nn.Module, head: str = "cls", n_classes: int = 2) -> None:
        super().__init__()
        spec = look_up("head", head, HEADS)
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if spec.feature == "cls" and encoder.cls_dim is None:
            raise ValueError(f"head={head!r} needs a [CLS]; this encoder has none (no semantic attention block)")
        if spec.fresh_sa:
            sa = getattr(encoder, "semantic_attention", None)
            if sa is None:
                raise ValueError(f"head={head!r} needs a Swin encoder with a semantic attention block")
            sa.reset_parameters()
        self.encoder, self.head_type, self.feature = encoder, head, spec.feature
        dim = encoder.pooled_dim if spec.feature == "pooled" else encoder.cls_dim
        # The LayerNorm puts pretrained and randomly initialised features on one scale for the fresh linear layer.
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))
        nn.init.trunc_normal_(self.head[1].weight, std=0.02)
        nn.init.zeros_(self.head[1].bias)

    def features(self, x: Tensor) -> Tensor:
        out = self.encoder(x, need_attention=False)
        return getattr(out, self.feature)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def attention_map(self, x: Tensor) -> Tensor:
        """SA map (Eq. 1) reshaped to the mask grid, ``(B, *mask_grid)``, each map summing to 1."""
        out = self.encoder(x, need_attention=True)
        if out.attention is None:
            raise ValueError("this encoder has no semantic attention block, so it has no attention map")
        return out.attention.reshape(x.shape[0], *out.grid)
