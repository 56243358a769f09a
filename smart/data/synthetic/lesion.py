"""A solid/sub-solid lesion (nodule or tumour) as a star-shaped body with lobulation and spicules, rendered in HU.

The surface is ``rho < R(d)`` for direction ``d``:
``R(d) = r * (1 + lobulation * sum_k w_k exp(-(1 - d.u_k) / 0.15)) + sum_j L_j exp(-(1 - d.s_j) / a_j)``
— broad bumps (lobulation) plus narrow radial spikes (spiculation). These are the morphological malignancy cues
radiologists rate in LIDC (margin, lobulation, spiculation), together with size, ground-glass component, internal
heterogeneity, necrosis and (benign) calcification. Nodules (``nodules.py``), treatment-response tumours
(``response.py``) and the 5-rater tumours (``raters.py``) all map their own latent variables onto this one shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smart.data.synthetic.fields import smooth_noise, unit_vectors

GROUND_GLASS_HU = -550.0
CALCIUM_HU = 600.0


@dataclass(frozen=True)
class Lesion:
    radius_mm: float
    lobulation: float = 0.0
    n_lobes: int = 4
    spicule_lengths_mm: tuple[float, ...] = ()
    spicule_sharpness: float = 0.01
    ground_glass: float = 0.0  # outer fraction of the radius that is ground glass; 1.0 = pure ground-glass nodule
    solid_hu: float = 40.0
    heterogeneity_hu: float = 10.0
    necrosis: float = 0.0  # radius fraction of a central low-density core
    calcification: float = 0.0  # radius fraction of a central calcified core
    seed: int = 0  # fixes the lobe/spicule directions

    def __post_init__(self):
        if self.radius_mm <= 0:
            raise ValueError(f"radius_mm ({self.radius_mm}) must be positive")
        for name in ("ground_glass", "necrosis", "calcification"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} ({value}) must be in [0, 1]")
        if self.lobulation < 0 or any(s < 0 for s in self.spicule_lengths_mm):
            raise ValueError(f"lobulation ({self.lobulation}) and spicule lengths must be non-negative")

    @property
    def extent_mm(self) -> float:
        """Radius of a sphere that certainly contains the lesion."""
        bumps = 1.0 + self.lobulation * self.n_lobes
        return self.radius_mm * bumps + max(self.spicule_lengths_mm, default=0.0) + 1.0

    def surface_radius(self, directions: np.ndarray) -> np.ndarray:
        """``R(d)`` in mm for unit directions (..., 3)."""
        rng = np.random.Generator(np.random.PCG64(self.seed))
        lobes = unit_vectors(rng, self.n_lobes)
        weights = rng.uniform(0.5, 1.0, self.n_lobes)
        spikes = unit_vectors(rng, len(self.spicule_lengths_mm))
        cos_l = directions @ lobes.T
        # the mean of exp(-(1-c)/0.15) over the sphere is ~0.15: subtract it so lobulation keeps the mean radius
        bumps = (weights * (np.exp(-(1.0 - cos_l) / 0.15) - 0.15)).sum(-1)
        radius = self.radius_mm * (1.0 + self.lobulation * bumps)
        if len(self.spicule_lengths_mm):
            cos_s = directions @ spikes.T
            radius = radius + (np.asarray(self.spicule_lengths_mm) * np.exp(-(1.0 - cos_s) / self.spicule_sharpness)).sum(-1)
        return np.maximum(radius, 0.3 * self.radius_mm)


def render_lesion(
    background_hu: np.ndarray,
    lesion: Lesion,
    centre_zyx_mm: tuple[float, float, float],
    spacing_zyx: tuple[float, float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite ``lesion`` into a copy of ``background_hu``; returns (float32 HU volume, bool mask).

    Partial-volume blending over one voxel at the boundary keeps the edge realistic (no aliasing staircase) and is what
    makes rater boundary disagreement meaningful.
    """
    out = background_hu.astype(np.float32, copy=True)
    mask = np.zeros(background_hu.shape, dtype=bool)
    spacing = np.asarray(spacing_zyx, dtype=np.float64)
    centre = np.asarray(centre_zyx_mm, dtype=np.float64)
    lo = np.maximum(np.floor((centre - lesion.extent_mm) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((centre + lesion.extent_mm) / spacing).astype(int) + 1, background_hu.shape)
    if np.any(hi <= lo):
        return out, mask
    axes = [(np.arange(a, b) * s - c) for a, b, s, c in zip(lo, hi, spacing, centre)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    rho = np.linalg.norm(pts, axis=-1)
    directions = pts / np.maximum(rho, 1e-6)[..., None]
    surface = lesion.surface_radius(directions)
    edge = float(spacing.min())
    weight = np.clip((surface - rho) / edge + 0.5, 0.0, 1.0)
    rel = rho / np.maximum(surface, 1e-6)  # 0 at the centre, 1 on the surface

    box_shape = tuple(int(v) for v in hi - lo)
    texture = smooth_noise(rng, box_shape, cell=max(1.5, 3.0 / edge))
    hu = lesion.solid_hu + lesion.heterogeneity_hu * texture
    if lesion.ground_glass > 0:
        # ground glass: lung-like density with faint texture, on the outer part of the radius
        ggo = rel > 1.0 - lesion.ground_glass
        hu = np.where(ggo, GROUND_GLASS_HU + 60.0 * texture, hu)
    if lesion.necrosis > 0:
        hu = np.where(rel < lesion.necrosis, 15.0 + 5.0 * texture, hu)
    if lesion.calcification > 0:
        hu = np.where(rel < lesion.calcification, CALCIUM_HU + 150.0 * texture, hu)

    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    out[box] = out[box] * (1.0 - weight) + hu * weight
    mask[box] = weight >= 0.5
    return out, mask
