"""smart.data.synthetic.fields: per-item generators, smooth noise fields, unit vectors."""

import numpy as np
import pytest

from smart.data.synthetic.fields import item_rng, smooth_noise, unit_vectors


def test_item_rng_depends_only_on_seed_kind_index():
    a = item_rng(3, "nodules", 7).random(5)
    assert np.array_equal(a, item_rng(3, "nodules", 7).random(5))
    assert not np.array_equal(a, item_rng(3, "nodules", 8).random(5))
    assert not np.array_equal(a, item_rng(4, "nodules", 7).random(5))
    assert not np.array_equal(a, item_rng(3, "response", 7).random(5))
    with pytest.raises(ValueError, match="seed"):
        item_rng(-1, "x", 0)


@pytest.mark.parametrize("shape,cell", [((20, 30, 40), 1.5), ((24, 24, 24), 6.0), ((10, 50), 4.0)])
def test_smooth_noise_is_standardised_and_correlated(shape, cell):
    field = smooth_noise(np.random.default_rng(0), shape, cell)
    assert field.shape == shape and field.dtype == np.float32
    assert abs(field.mean()) < 1e-4 and abs(field.std() - 1) < 1e-3
    # neighbours along the last axis are positively correlated (white noise would give ~0)
    corr = np.corrcoef(field[..., :-1].ravel(), field[..., 1:].ravel())[0, 1]
    assert corr > 0.3
    with pytest.raises(ValueError, match="cell"):
        smooth_noise(np.random.default_rng(0), shape, 0.5)


def test_unit_vectors_are_unit():
    v = unit_vectors(np.random.default_rng(1), 50)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
