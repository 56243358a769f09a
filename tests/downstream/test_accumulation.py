"""Gradient accumulation of fine-tuning (issue 18): micro-batches of 10 x 4 give the gradients of one batch of 40,
plain and class-weighted; activation checkpointing leaves the gradients unchanged; the memory knobs are validated.

Tolerance: the micro-batched gradients are the same sums taken in a different order (4 partial sums of 10 samples
instead of one of 40, then 4 additions into ``.grad``), so they cannot agree bit for bit. In float32 the reordering
error of gradients that are sums over 40 x 16^3 tokens with heavy cancellation (LayerNorm weights) reaches 5e-4 of the
tensor's largest entry (measured), which would make a float32 tolerance too loose to tell a right normalisation from a
slightly wrong one. The tests therefore run the model in float64 (eps 2.2e-16): the reordering error drops to ~1e-12
relative, and rtol 1e-9 / atol 1e-12 (gradients here are 1e-6..1e-2) still leaves 5+ orders of magnitude below the
error of the naive per-micro-batch weighted mean (checked below), so the tolerance separates right from wrong."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from downstream_fixtures import TINY_MODEL
from smart.downstream import protocol as downstream
from smart.downstream.finetune import accumulate_gradients, class_weights
from smart.models.activation_checkpointing import set_activation_checkpointing
from smart.models.classifier import EncoderClassifier
from smart.models.factory import build_encoder

RTOL, ATOL = 1e-9, 1e-12
DEVICE = torch.device("cpu")


def _model(**overrides):
    torch.manual_seed(0)
    return EncoderClassifier(build_encoder({**TINY_MODEL, **overrides}), head="cls").double().train()


def _batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(40, 1, 32, 32, 32, generator=gen, dtype=torch.float64)
    # imbalanced and unevenly spread: the first micro-batch holds 8 of the 10 positives, the last one none
    y = torch.zeros(40, dtype=torch.long)
    y[[0, 1, 2, 3, 4, 5, 6, 7, 15, 25]] = 1
    return x, y


def _grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _whole_batch_grads(model, x, y, weight=None):
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, weight=weight)
    loss.backward()
    return loss.detach(), _grads(model)


def _assert_same(expected, got):
    assert expected.keys() == got.keys() and expected
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=RTOL, atol=ATOL, msg=name)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "class_weighted"])
def test_micro_batches_of_10_give_the_gradients_of_one_batch_of_40(weighted):
    x, y = _batch()
    weight = class_weights(y.numpy()).double() if weighted else None
    model = _model()
    loss, expected = _whole_batch_grads(model, x, y, weight)

    model.zero_grad(set_to_none=True)
    got_loss = accumulate_gradients(model, x, y, DEVICE, micro_batch=10, weight=weight)
    torch.testing.assert_close(got_loss, loss, rtol=RTOL, atol=0.0)
    _assert_same(expected, _grads(model))


def test_per_micro_batch_weighted_mean_would_be_wrong():
    """The check above can fail: averaging four per-micro-batch weighted means (each normalised by its own weight sum)
    moves the gradient far outside the tolerance when the micro-batches hold different class mixes."""
    x, y = _batch()
    weight = class_weights(y.numpy()).double()
    model = _model()
    _, expected = _whole_batch_grads(model, x, y, weight)
    model.zero_grad(set_to_none=True)
    for xs, ys in zip(x.split(10), y.split(10)):
        (F.cross_entropy(model(xs), ys, weight=weight) / 4).backward()
    naive = _grads(model)
    assert any(not torch.allclose(naive[n], expected[n], rtol=1e-4, atol=1e-7) for n in expected)


def test_activation_checkpointing_keeps_the_gradients_also_with_drop_path():
    """Non-reentrant checkpointing restores the RNG state before recomputing, so drop path draws the same samples."""
    x, y = _batch()
    x, y = x[:4], y[:4]
    results = []
    for checkpointing in (False, True):
        model = _model(drop_path_rate=0.3)
        if checkpointing:
            assert set_activation_checkpointing(model.encoder) == 4 + TINY_MODEL["sa_depth"]
        torch.manual_seed(7)
        model.zero_grad(set_to_none=True)
        accumulate_gradients(model, x, y, DEVICE, micro_batch=2)
        results.append(_grads(model))
    _assert_same(results[0], results[1])


def test_checkpointing_a_model_without_blocks_is_refused():
    with pytest.raises(ValueError, match="no Swin or transformer block"):
        set_activation_checkpointing(torch.nn.Linear(2, 2))


def test_memory_knobs_are_validated():
    cfg = downstream.load_downstream_config(None, ["micro_batch_size=4", "activation_checkpointing=true",
                                                   "precision=bf16", "num_workers=2"])
    assert (cfg["batch_size"], cfg["micro_batch_size"], cfg["activation_checkpointing"]) == (40, 4, True)
    with pytest.raises(ValueError, match=r"'micro_batch_size' 7 does not divide 'batch_size' 40"):
        downstream.load_downstream_config(None, ["micro_batch_size=7"])
    with pytest.raises(ValueError, match=r"'micro_batch_size': expected null or an integer >= 1, got 0"):
        downstream.load_downstream_config(None, ["micro_batch_size=0"])
    with pytest.raises(ValueError, match=r"'precision': expected one of auto, bf16, fp32, got 'fp16'"):
        downstream.load_downstream_config(None, ["precision=fp16"])
    with pytest.raises(ValueError, match=r"'activation_checkpointing': expected true or false, got 'maybe'"):
        downstream.load_downstream_config(None, ["activation_checkpointing=maybe"])
    with pytest.raises(ValueError, match=r"'num_workers': expected an integer >= 0, got -1"):
        downstream.load_downstream_config(None, ["num_workers=-1"])


def test_precision_auto_is_bf16_on_cuda_and_fp32_elsewhere():
    assert downstream.autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert downstream.autocast_dtype("auto", torch.device("cpu")) is None
    assert downstream.autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert downstream.autocast_dtype("fp32", torch.device("cuda")) is None


def test_bf16_autocast_path_keeps_fp32_weights_and_an_fp32_loss():
    """precision bf16 (what ``auto`` picks on CUDA), run on CPU autocast: the loss is computed from fp32 logits and
    the gradients land on the fp32 weights, close to the fp32 ones (bf16 keeps 8 mantissa bits: a loose check)."""
    torch.manual_seed(0)
    model = EncoderClassifier(build_encoder(TINY_MODEL), head="cls").train()
    x, y = _batch()
    x = x[:8].float()
    y = y[:8]
    loss32 = accumulate_gradients(model, x, y, DEVICE, micro_batch=4)
    g32 = _grads(model)
    model.zero_grad(set_to_none=True)
    loss16 = accumulate_gradients(model, x, y, DEVICE, micro_batch=4, amp_dtype=torch.bfloat16)
    g16 = _grads(model)
    assert loss16.dtype == torch.float32 and all(g.dtype == torch.float32 for g in g16.values())
    assert abs(float(loss16) - float(loss32)) < 0.05 * abs(float(loss32))
    head = "head.1.weight"
    assert torch.nn.functional.cosine_similarity(g16[head].flatten(), g32[head].flatten(), dim=0) > 0.99
