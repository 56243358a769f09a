"""smart.eval.attention_maps: SA maps upsampled to the input grid; the figure's colour bars and title."""

import numpy as np


def test_attention_volumes_sum_like_the_map(tiny_encoder):
    import torch

    from smart.eval.attention_maps import attention_volumes
    from smart.models.encoder_io import load_encoder

    enc, _ = load_encoder(tiny_encoder)
    maps = attention_volumes(enc, torch.rand(2, 1, 32, 32, 32))
    # a 2^3 map upsampled x16 trilinearly keeps its mean: each SA map sums to 1 over 8 tokens -> mean 1/8
    assert maps.shape == (2, 32, 32, 32) and np.allclose(maps.mean(axis=(1, 2, 3)), 1 / 8, atol=1e-6)


def test_attention_figure_has_a_colour_bar_per_sample_and_a_title():
    import matplotlib.pyplot as plt

    from smart.eval.attention_maps import attention_grid_figure

    rng = np.random.default_rng(0)
    fig = attention_grid_figure(rng.random((3, 8, 8, 8)), rng.random((3, 8, 8, 8)), ["a", "b", "c"],
                                title="smart (method smart) on response")
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "attention (min-max per sample)"]
    assert len(bars) == 3 and all(b.get_ylim() == (0.0, 1.0) for b in bars)
    assert fig._suptitle.get_text() == "smart (method smart) on response"
    plt.close(fig)
