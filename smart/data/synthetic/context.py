"""Lung-parenchyma surroundings for lesion crops: textured lung, crossing vessels, optional chest wall.

Shared by the nodule (``nodules.py``) and treatment-response (``response.py``) cohorts so that a classifier has to find
the lesion among realistic distractors (vessels look like small nodules in cross-section; juxtapleural lesions touch the
wall) instead of thresholding anything brighter than air.
"""

from __future__ import annotations

import numpy as np

from smart.data.synthetic.fields import smooth_noise, unit_vectors


def lung_context(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing_mm: float,
    *,
    lung_hu: float = -850.0,
    blood_hu: float = 40.0,
    n_vessels: int = 4,
    wall: tuple[np.ndarray, float] | None = None,
) -> np.ndarray:
    """Float32 HU crop (D, H, W) of isotropic ``spacing_mm`` centred on the origin.

    ``wall = (unit normal, distance_mm)`` puts chest wall (fat then muscle) on the far side of that plane.
    """
    if spacing_mm <= 0:
        raise ValueError(f"spacing_mm ({spacing_mm}) must be positive")
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * spacing_mm for n in shape]
    z, y, x = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    hu = lung_hu + 35.0 * smooth_noise(rng, shape, 5.0 / spacing_mm) + 15.0 * smooth_noise(rng, shape, 1.5)
    half = 0.5 * spacing_mm * max(shape)
    for direction in unit_vectors(rng, n_vessels):
        # a straight vessel through a random point of the crop, 1-3 mm radius
        p0 = rng.uniform(-0.8 * half, 0.8 * half, 3)
        dz, dy, dx = z - p0[0], y - p0[1], x - p0[2]
        along = dz * direction[0] + dy * direction[1] + dx * direction[2]
        dist2 = dz**2 + dy**2 + dx**2 - along**2
        radius = rng.uniform(1.0, 3.0)
        hu = np.where(dist2 <= radius**2, blood_hu + 10.0 * rng.standard_normal(), hu)
    if wall is not None:
        normal, distance = wall
        signed = z * normal[0] + y * normal[1] + x * normal[2] - distance
        hu = np.where(signed > 0, 40.0, hu)
        hu = np.where((signed > 4.0) & (signed < 10.0), -100.0, hu)  # extrapleural fat stripe
    return hu.astype(np.float32)


def add_noise(rng: np.random.Generator, hu: np.ndarray, sigma: float) -> np.ndarray:
    """Reconstructed-CT noise: white plus a little correlated component."""
    return hu + sigma * (0.8 * rng.standard_normal(hu.shape, dtype=np.float32) + 0.6 * smooth_noise(rng, hu.shape, 2.0))


def to_int16(hu: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
