"""smart.data.synthetic.lesion: rendered lesion volume and features."""

import numpy as np
import pytest

from smart.data.synthetic.lesion import Lesion, render_lesion


def test_sphere_lesion_volume_matches_formula():
    """A plain lesion (no lobes/spicules) is a ball: voxel count ~ 4/3 pi r^3."""
    lesion = Lesion(radius_mm=6.0, lobulation=0.0, solid_hu=50.0, heterogeneity_hu=0.0)
    background = np.full((32, 32, 32), -850.0, dtype=np.float32)
    hu, mask = render_lesion(background, lesion, (16.0, 16.0, 16.0), (1.0, 1.0, 1.0), np.random.default_rng(0))
    expected = 4 / 3 * np.pi * 6.0**3
    assert abs(mask.sum() - expected) / expected < 0.05
    zz, yy, xx = np.meshgrid(*[np.arange(32) - 16.0] * 3, indexing="ij")
    interior = zz**2 + yy**2 + xx**2 <= 5.0**2  # more than one voxel inside the surface: no partial volume
    assert np.allclose(hu[interior], 50.0)
    assert hu[0, 0, 0] == -850.0  # outside untouched


def test_lesion_features_change_the_image():
    rng = np.random.default_rng
    background = np.full((40, 40, 40), -850.0, dtype=np.float32)
    centre = (20.0, 20.0, 20.0)
    plain = Lesion(radius_mm=8.0, heterogeneity_hu=0.0)
    spiculated = Lesion(radius_mm=8.0, heterogeneity_hu=0.0, spicule_lengths_mm=(6.0,) * 6, spicule_sharpness=0.03)
    calcified = Lesion(radius_mm=8.0, heterogeneity_hu=0.0, calcification=0.5)
    ggo = Lesion(radius_mm=8.0, heterogeneity_hu=0.0, ground_glass=1.0)
    _, m_plain = render_lesion(background, plain, centre, (1, 1, 1), rng(0))
    _, m_spic = render_lesion(background, spiculated, centre, (1, 1, 1), rng(0))
    assert m_spic.sum() > m_plain.sum()
    hu_cal, _ = render_lesion(background, calcified, centre, (1, 1, 1), rng(0))
    assert hu_cal[20, 20, 20] > 300
    hu_ggo, m_ggo = render_lesion(background, ggo, centre, (1, 1, 1), rng(0))
    assert -800 < np.median(hu_ggo[m_ggo]) < -300


def test_lesion_rejects_bad_values():
    with pytest.raises(ValueError, match="radius_mm"):
        Lesion(radius_mm=0.0)
    with pytest.raises(ValueError, match="ground_glass"):
        Lesion(radius_mm=3.0, ground_glass=1.5)
