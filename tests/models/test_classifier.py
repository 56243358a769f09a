"""EncoderClassifier heads and attention_map (smart.models.classifier)."""

from __future__ import annotations

import pytest
import torch

from smart.models.classifier import EncoderClassifier


@pytest.mark.parametrize("head", ["cls", "pooled", "random_sa"])
def test_classifier_heads(tiny_swin, head):
    enc = tiny_swin()
    sa_before = {k: v.clone() for k, v in enc.semantic_attention.state_dict().items()}
    model = EncoderClassifier(enc, head=head, n_classes=3)
    x = torch.rand(1, 1, 32, 32, 32)
    logits = model(x)
    assert logits.shape == (1, 3)
    with torch.no_grad():
        out = enc(x)
    feature = out.pooled if head == "pooled" else out.cls
    torch.testing.assert_close(model.features(x), feature)
    changed = any(not torch.equal(v, enc.semantic_attention.state_dict()[k]) for k, v in sa_before.items())
    assert changed == (head == "random_sa")


def test_vit_cls_head_and_attention_map(tiny_vit, tiny_swin):
    assert EncoderClassifier(tiny_vit(), head="cls")(torch.rand(1, 1, 32, 32, 32)).shape == (1, 2)
    model = EncoderClassifier(tiny_swin(sa_stage=2), head="cls")
    amap = model.attention_map(torch.rand(2, 1, 32, 32, 32))
    assert amap.shape == (2, 4, 4, 4)
    torch.testing.assert_close(amap.sum(dim=(1, 2, 3)), torch.ones(2))


def test_classifier_rejects_heads_the_encoder_cannot_serve(tiny_swin, tiny_vit):
    no_sa = tiny_swin(sa_stage=None)
    assert EncoderClassifier(no_sa, head="pooled")(torch.rand(1, 1, 32, 32, 32)).shape == (1, 2)
    for head in ("cls", "random_sa"):
        with pytest.raises(ValueError, match="needs a \\[CLS\\]"):
            EncoderClassifier(no_sa, head=head)
    with pytest.raises(ValueError, match="random_sa"):
        EncoderClassifier(tiny_vit(), head="random_sa")
    with pytest.raises(ValueError, match="'mean'"):
        EncoderClassifier(tiny_swin(), head="mean")
    with pytest.raises(ValueError, match="no semantic attention"):
        EncoderClassifier(no_sa, head="pooled").attention_map(torch.rand(1, 1, 32, 32, 32))
