"""Procedural chest/upper-abdomen CT phantoms in Hounsfield units (the embedded pretraining corpus).

Anatomy is laid out in adult millimetres ("anatomical frame": x patient right(-) to left(+), y anterior(-) to
posterior(+), z inferior(-) to superior(+), z = 0 at the diaphragm dome) and scaled so the torso fills the field of
view, so a modest 192x192x120 grid holds a whole (small) chest. Tissues and their HU follow clinical CT:
air -1000, lung parenchyma about -850 with texture and a posterior (dependent) density gradient, fat -100,
soft tissue/muscle ~40, liver ~60 (+ contrast), kidneys with enhancing cortex, blood +40 (plain) to +250 (contrast),
cancellous bone ~250, cortical bone +500..+1000, airway lumen air inside a soft-tissue wall. Each seed varies the body
size/shape, organ positions, contrast phase, vessel trees, rib spacing, scan range, spacing and noise.

Written with anisotropic spacing (0.8-0.9 mm in-plane, 1.25-2.5 mm slices) so that ``smart resample`` has real work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from smart.data.synthetic.fields import smooth_noise, unit_vectors


class Tissue(IntEnum):
    """Label map codes returned next to the HU volume (used by tests and by the tumour generators)."""

    AIR = 0
    BODY_SOFT = 1
    FAT = 2
    LUNG = 3
    AIRWAY = 4
    VESSEL = 5
    HEART = 6
    LIVER = 7
    KIDNEY = 8
    BONE_CORTICAL = 9
    BONE_CANCELLOUS = 10
    TABLE = 11


@dataclass(frozen=True)
class PhantomSpec:
    """Grid of one phantom: ``shape`` (D, H, W) and ``spacing`` (x, y, z) in mm (SimpleITK order)."""

    shape: tuple[int, int, int] = (120, 192, 192)
    spacing: tuple[float, float, float] = (0.85, 0.85, 2.0)

    def __post_init__(self):
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise ValueError(f"shape {self.shape} must be three sizes >= 16")
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise ValueError(f"spacing {self.spacing} must be three positive numbers")


def sample_spec(rng: np.random.Generator, shape: tuple[int, int, int] = (120, 192, 192)) -> PhantomSpec:
    """Realistic clinical spacing: in-plane 0.8-0.9 mm, slice thickness one of the common reconstructions."""
    inplane = float(np.round(rng.uniform(0.8, 0.9), 3))
    thickness = float(rng.choice([1.25, 1.5, 2.0, 2.5]))
    return PhantomSpec(shape=shape, spacing=(inplane, inplane, thickness))


class _Frame:
    """Voxel centres in anatomical mm as broadcastable float32 axes (z, y, x), plus shape helpers."""

    def __init__(self, spec: PhantomSpec, scale: float, z_centre: float):
        d, h, w = spec.shape
        sx, sy, sz = spec.spacing
        self.shape = spec.shape
        self.z = ((np.arange(d, dtype=np.float32) - (d - 1) / 2) * sz / scale + z_centre)[:, None, None]
        self.y = ((np.arange(h, dtype=np.float32) - (h - 1) / 2) * sy / scale)[None, :, None]
        self.x = ((np.arange(w, dtype=np.float32) - (w - 1) / 2) * sx / scale)[None, None, :]
        self.voxel_mm = np.array([sz, sy, sx], dtype=np.float64) / scale  # anatomical mm per voxel (z, y, x)

    def ellipsoid(self, centre, half_axes, wobble=None) -> np.ndarray:
        """Solid ellipsoid; ``wobble`` (a smooth field) bends the surface so organs are not perfect quadrics."""
        (cx, cy, cz), (ax, ay, az) = centre, half_axes
        level = ((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2 + ((self.z - cz) / az) ** 2
        return level <= 1.0 if wobble is None else level <= 1.0 + wobble

    def ellipse_xy(self, centre, half_axes) -> np.ndarray:
        """Normalised radius of an infinite elliptic cylinder along z (broadcast over z)."""
        (cx, cy), (ax, ay) = centre, half_axes
        return np.sqrt(((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2)

    def tube(self, out: np.ndarray, a, b, radius: float, value, labels=None, label=None, radius_b=None) -> None:
        """Paint a (tapered) cylinder between anatomical points ``a`` and ``b`` (x, y, z) — only inside its box."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        r_max = max(radius, radius_b or radius)
        za, zb = sorted((a[2], b[2]))
        ya, yb = sorted((a[1], b[1]))
        xa, xb = sorted((a[0], b[0]))
        sl = []
        for axis, (lo, hi) in zip((self.z.ravel(), self.y.ravel(), self.x.ravel()), ((za, zb), (ya, yb), (xa, xb))):
            idx = np.nonzero((axis >= lo - r_max) & (axis <= hi + r_max))[0]
            if idx.size == 0:
                return
            sl.append(slice(idx[0], idx[-1] + 1))
        z, y, x = self.z[sl[0]], self.y[:, sl[1]], self.x[:, :, sl[2]]
        ab = b - a
        length2 = float(ab @ ab) or 1.0
        t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / length2, 0.0, 1.0)
        dist2 = (x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (z - a[2] - t * ab[2]) ** 2
        r = radius if radius_b is None else radius + (radius_b - radius) * t
        inside = dist2 <= r**2
        box = out[tuple(sl)]
        box[inside] = value if np.isscalar(value) else value[tuple(sl)][inside]
        if labels is not None:
            labels[tuple(sl)][inside] = label


def _vessel_tree(rng, frame, out, root, direction, radius, depth, blood_hu, budget):
    """Recursive branching vessel tree; each branch tapers and splits into two at a random angle."""
    if depth == 0 or radius < 1.8 or budget[0] <= 0:  # thinner than ~1 voxel after scaling: invisible
        return
    budget[0] -= 1
    length = radius * rng.uniform(6.0, 10.0)
    end = root + direction * length
    frame.tube(out, root, end, radius, blood_hu, radius_b=radius * 0.8)
    for _ in range(2):
        child = direction + 0.6 * unit_vectors(rng, 1)[0]
        child /= np.linalg.norm(child)
        _vessel_tree(rng, frame, out, end, child, radius * rng.uniform(0.72, 0.85), depth - 1, blood_hu, budget)


def generate_phantom(rng: np.random.Generator, spec: PhantomSpec | None = None) -> tuple[np.ndarray, np.ndarray, PhantomSpec]:
    """One phantom: (int16 HU volume (D, H, W), uint8 :class:`Tissue` labels, spec)."""
    spec = spec or sample_spec(rng)
    d, h, w = spec.shape
    fov_inplane = min(h * spec.spacing[1], w * spec.spacing[0])
    body_a, body_b = 165.0 * rng.uniform(0.92, 1.08), 120.0 * rng.uniform(0.9, 1.1)
    scale = 0.94 * fov_inplane / (2 * body_a)  # anatomical mm -> physical mm so the body fills the field of view
    frame = _Frame(spec, scale, z_centre=float(rng.uniform(0.0, 60.0)))
    x, y, z = frame.x, frame.y, frame.z

    contrast = float(rng.uniform(120.0, 210.0)) if rng.random() < 0.6 else 0.0  # plain or contrast-enhanced scan
    blood_hu = 40.0 + contrast
    hu = np.full(spec.shape, -1000.0, dtype=np.float32)
    labels = np.zeros(spec.shape, dtype=np.uint8)

    def paint(mask, value, label):
        hu[mask] = value if np.isscalar(value) else value[mask]
        labels[mask] = label

    # patient table under the back
    paint(np.broadcast_to((y > body_b + 8) & (y < body_b + 20) & (np.abs(x) < 0.9 * body_a), spec.shape), 60.0, Tissue.TABLE)
    # body: subcutaneous fat ring around soft tissue
    body_r = frame.ellipse_xy((0.0, 0.0), (body_a, body_b))
    body = np.broadcast_to(body_r <= 1.0, spec.shape)
    fat_thick = rng.uniform(0.06, 0.14)
    soft = 40.0 + 12.0 * smooth_noise(rng, spec.shape, 12.0)
    paint(body, -100.0, Tissue.FAT)
    paint(np.broadcast_to(body_r <= 1.0 - fat_thick, spec.shape), soft, Tissue.BODY_SOFT)

    # diaphragm domes: lungs above, liver/kidneys below
    lung_cx = 72.0 * rng.uniform(0.93, 1.07)
    texture = smooth_noise(rng, spec.shape, 4.0)
    wobble = 0.12 * smooth_noise(rng, spec.shape, 24.0)
    for side in (-1.0, 1.0):
        cx = side * lung_cx
        dome = -45.0 + 45.0 * np.clip(1 - ((x - cx) / 70.0) ** 2 - ((y + 10) / 90.0) ** 2, 0, 1)
        lung = frame.ellipsoid((cx, 5.0, 80.0), (58.0 * rng.uniform(0.9, 1.05), 82.0, 150.0), wobble) & (z > dome)
        lung &= body_r <= 1.0 - fat_thick - 0.05
        # dependent (posterior) lung is denser; parenchymal texture +-30 HU
        paint(lung, -860.0 + 30.0 * texture + 0.25 * (y + 80.0), Tissue.LUNG)
        # pulmonary vessels from the hilum, clipped to the lung afterwards
        vessels = np.full(spec.shape, np.nan, dtype=np.float32)
        for _ in range(10):
            budget = [int(rng.integers(10, 16))]
            direction = np.array([side * rng.uniform(0.3, 1.0), rng.uniform(-0.6, 0.6), rng.uniform(-0.9, 0.9)])
            _vessel_tree(rng, frame, vessels, np.array([side * 38.0, rng.uniform(-10.0, 20.0), rng.uniform(55.0, 100.0)]),
                         direction / np.linalg.norm(direction), 7.0, 6, blood_hu, budget)
        paint(lung & ~np.isnan(vessels), blood_hu, Tissue.VESSEL)

    # heart (myocardium + blood pool) displaces the medial left lung
    heart_c = (15.0 * rng.uniform(0.6, 1.4), -30.0, 45.0 * rng.uniform(0.8, 1.2))
    heart_ax = tuple(v * rng.uniform(0.9, 1.1) for v in (52.0, 45.0, 55.0))
    paint(frame.ellipsoid(heart_c, heart_ax), 40.0 + 5.0 * texture, Tissue.HEART)
    paint(frame.ellipsoid(heart_c, tuple(0.7 * a for a in heart_ax)), blood_hu + 8.0 * texture, Tissue.VESSEL)
    # aorta: ascending, arch, descending beside the spine
    ax_ = 18.0 * rng.uniform(0.8, 1.2)
    path = [(8.0, -25.0, 60.0), (8.0, -25.0, 120.0), (ax_, 25.0, 140.0), (ax_, 55.0, 120.0), (ax_, 55.0, -260.0)]
    for a, b in zip(path[:-1], path[1:]):
        frame.tube(hu, a, b, 12.0, blood_hu, labels, Tissue.VESSEL)

    # liver (right, under the dome) and kidneys (posterior, lower)
    liver = frame.ellipsoid((-55.0, 0.0, -75.0), (100.0, 88.0, 95.0 * rng.uniform(0.9, 1.1)), wobble) & (z < 5.0) & (body_r <= 0.9)
    paint(liver, 58.0 + 0.35 * contrast + 8.0 * texture, Tissue.LIVER)
    kidney_z = -185.0 + rng.uniform(-15.0, 15.0)
    for side in (-1.0, 1.0):
        centre = (side * 62.0, 58.0, kidney_z + (10.0 if side < 0 else 0.0))
        paint(frame.ellipsoid(centre, (30.0, 24.0, 55.0)), 35.0 + 0.8 * contrast + 6.0 * texture, Tissue.KIDNEY)
        paint(frame.ellipsoid(centre, (14.0, 10.0, 30.0)) & (side * (x - centre[0]) < 0), -60.0, Tissue.FAT)  # sinus fat

    # trachea and main/lobar bronchi: soft-tissue wall, air lumen
    carina = np.array([0.0, -5.0, 130.0 + rng.uniform(-10.0, 10.0)])
    airways = [((0.0, -5.0, 400.0), carina, 9.0)]
    for side in (-1.0, 1.0):
        main_end = carina + np.array([side * 38.0, 5.0, -30.0])
        airways.append((carina, main_end, 6.0))
        for _ in range(3):
            direction = np.array([side * rng.uniform(0.4, 1.0), rng.uniform(-0.7, 0.7), rng.uniform(-1.0, 0.6)])
            airways.append((main_end, main_end + 45.0 * direction / np.linalg.norm(direction), 3.5))
    for a, b, r in airways:
        frame.tube(hu, a, b, r + 1.8, 45.0, labels, Tissue.BODY_SOFT)
    for a, b, r in airways:
        frame.tube(hu, a, b, r, -1000.0, labels, Tissue.AIRWAY)

    # spine: vertebral bodies (cancellous core, cortical shell) separated by discs, canal, posterior arch
    disc_period = 30.0 * rng.uniform(0.9, 1.1)
    in_disc = (np.mod(z, disc_period) < 6.0)
    vb_r = frame.ellipse_xy((0.0, 72.0), (20.0, 17.0))
    cortical = np.broadcast_to((vb_r <= 1.0) & ~in_disc, spec.shape)
    paint(cortical, 700.0 + 120.0 * texture, Tissue.BONE_CORTICAL)
    paint(np.broadcast_to((vb_r <= 0.8) & ~in_disc, spec.shape), 240.0 + 40.0 * texture, Tissue.BONE_CANCELLOUS)
    paint(np.broadcast_to((vb_r <= 1.0) & in_disc, spec.shape), 80.0, Tissue.BODY_SOFT)
    arch = frame.ellipse_xy((0.0, 100.0), (14.0, 12.0))
    paint(np.broadcast_to((arch <= 1.0) & (arch > 0.6), spec.shape), 650.0 + 100.0 * texture, Tissue.BONE_CORTICAL)
    paint(np.broadcast_to(arch <= 0.6, spec.shape), 10.0, Tissue.BODY_SOFT)  # spinal canal (CSF/cord)

    # ribs: elliptic arcs hugging the chest wall, sloping down anteriorly; sternum in front
    rib_a, rib_b = body_a * (1 - fat_thick - 0.04), body_b * (1 - fat_thick - 0.04)
    rib_r = frame.ellipse_xy((0.0, 0.0), (rib_a, rib_b))
    posterior = np.clip((y / rib_b + 1.0) / 2.0, 0.0, 1.0)  # 0 anterior .. 1 posterior
    rib_z0 = float(rng.uniform(0.0, disc_period))
    ring2 = (((rib_r - 1.0) * 0.5 * (rib_a + rib_b)) ** 2)[0]
    for k in range(14):
        zk = 230.0 - rib_z0 - k * disc_period
        slab = np.nonzero((z.ravel() > zk - 45.0) & (z.ravel() < zk + 6.0))[0]
        if slab.size == 0:
            continue
        slab = slice(slab[0], slab[-1] + 1)  # only the slices this rib can reach: 14 full-volume passes cost ~1 s
        dz = z[slab] - (zk - 35.0 * (1.0 - posterior))
        rib = (ring2 + dz**2 <= 4.5**2) & (np.abs(x) > 25.0)
        hu[slab][rib] = (750.0 + 150.0 * texture[slab])[rib]
        labels[slab][rib] = Tissue.BONE_CORTICAL
    sternum = (np.abs(x) < 14.0) & (np.abs(y + rib_b) < 6.0) & (z > -10.0) & (z < 180.0)
    paint(np.broadcast_to(sternum, spec.shape), 500.0 + 80.0 * texture, Tissue.BONE_CORTICAL)

    # quantum noise (slightly correlated, as reconstructed CT noise is)
    sigma = float(rng.uniform(8.0, 20.0))
    hu += 0.6 * sigma * smooth_noise(rng, spec.shape, 2.0)
    hu += 0.8 * sigma * rng.standard_normal(spec.shape, dtype=np.float32)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), labels, spec
