"""Activation checkpointing of the encoder blocks: recompute each transformer block in backward instead of keeping
its activations (Chen et al., 2016, "Training deep nets with sublinear memory cost"; ``torch.utils.checkpoint``).

The Swin blocks use MONAI's own mechanism (``SwinTransformerBlock.use_checkpoint``: the attention part and the MLP
part of each block are checkpointed separately, non-reentrant); the pre-norm blocks of the SA module and of the ViT
baselines (:class:`smart.models.semantic_attention.TransformerBlock`) have the same switch. Non-reentrant checkpointing
restores the RNG state before recomputing, so drop path draws the same samples in the recomputation and the gradients
equal those without checkpointing (``tests/downstream/test_accumulation.py``).

The switch is a runtime attribute, not part of the encoder file's model config: an encoder trained with or without it
has the same parameters, and fine-tuning turns it on for its own run (``finetune.set.activation_checkpointing``).
"""

from __future__ import annotations

from monai.networks.nets.swin_unetr import SwinTransformerBlock
from torch import nn

from smart.models.semantic_attention import TransformerBlock

CHECKPOINTED_BLOCKS = (SwinTransformerBlock, TransformerBlock)


def set_activation_checkpointing(module: nn.Module, enabled: bool = True) -> int:
    """Switch checkpointing on (or off) for every Swin / transformer block inside ``module``, in place.

    Returns the number of blocks switched; ``ValueError`` when ``module`` holds none (checkpointing was asked for a
    model it cannot apply to, which would otherwise silently save no memory)."""
    count = 0
    for sub in module.modules():
        if isinstance(sub, CHECKPOINTED_BLOCKS):
            sub.use_checkpoint = bool(enabled)
            count += 1
    if count == 0:
        raise ValueError(f"activation checkpointing: {type(module).__name__} has no Swin or transformer block")
    return count
