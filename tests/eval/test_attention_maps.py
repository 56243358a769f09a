"""smart.eval.attention_maps: SA maps upsampled to the input grid."""


import numpy as np


def test_attention_volumes_sum_like_the_map(tiny_encoder):
    import torch

    from smart.eval.attention_maps import attention_volumes
    from smart.models.encoder_io import load_encoder

    enc, _ = load_encoder(tiny_encoder)
    maps = attention_volumes(enc, torch.rand(2, 1, 32, 32, 32))
    # a 2^3 map upsampled x16 trilinearly keeps its mean: each SA map sums to 1 over 8 tokens -> mean 1/8
    assert maps.shape == (2, 32, 32, 32) and np.allclose(maps.mean(axis=(1, 2, 3)), 1 / 8, atol=1e-6)
