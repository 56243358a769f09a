"""OrganMNIST3D-like dataset: 11 abdominal/thoracic organ classes as 28^3 (or 64^3) uint8 cubes, MedMNIST npz layout.

Class indices and names are those of MedMNIST's OrganMNIST3D. As in the real data, each cube is an organ's bounding box
resampled to a cube, in a CT window, with surrounding tissue visible. Each class is its own family of shape, intensity
and texture (liver: large wedge with vessels; kidneys: bean with bright cortex and dark sinus; femur: bright cortical
ring with marrow and a femoral head; bladder: smooth dark fluid; heart: bright chambers in myocardium surrounded by
lung; lungs: dark with vessels and fissures; spleen: crescent; pancreas: thin lobulated band in fat). Left/right
pairs are mirror images (x axis), as they are in OrganMNIST3D. Every sample varies scale, rotation, position,
intensity, texture and noise, so clusters are compact but not points.

Keys: ``{train,val,test}_images`` uint8 (n, S, S, S) and ``{train,val,test}_labels`` uint8 (n, 1); split proportions
follow the real dataset (971/161/610).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from smart.atomic import atomic_path
from smart.data.organmnist import CLASS_NAMES
from smart.data.synthetic.fields import item_rng, smooth_noise
SPLITS = ("train", "val", "test")
REAL_SPLIT_SIZES = {"train": 971, "val": 161, "test": 610}

SOFT, FAT, AIR = 0.42, 0.22, 0.04  # window-normalised intensities of background tissues


def _ellipsoid(z, y, x, centre, axes):
    return ((z - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 + ((x - centre[2]) / axes[2]) ** 2


def _liver(g, rng):
    z, y, x = g
    body = (_ellipsoid(z, y, x, (0, 0, 0), (0.85, 0.8, 0.95)) <= 1) & (y + 0.6 * x < 0.55)  # wedge cut
    img = np.where(body, 0.62, SOFT)
    for _ in range(4):  # portal/hepatic vessels
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        p = rng.uniform(-0.4, 0.4, 3)
        along = (z - p[0]) * d[0] + (y - p[1]) * d[1] + (x - p[2]) * d[2]
        dist2 = (z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 - along**2
        img = np.where(body & (dist2 < 0.006), 0.8, img)
    return img, 0.03


def _kidney(g, rng, side):
    z, y, x = g
    outer = _ellipsoid(z, y, x, (0, 0, 0), (0.85, 0.5, 0.45))
    hilum = _ellipsoid(z, y, x, (0, 0.0, side * 0.45), (0.35, 0.25, 0.3)) <= 1  # medial notch
    kidney = (outer <= 1) & ~hilum
    img = np.where(outer <= 1.25, FAT, SOFT)  # perirenal fat
    img = np.where(kidney, 0.78, img)  # enhancing cortex
    img = np.where(kidney & (outer <= 0.45), 0.55, img)  # medulla
    img = np.where(hilum & (outer <= 1), 0.15, img)  # sinus fat
    return img, 0.02


def _femur(g, rng, side):
    z, y, x = g
    shaft_r = np.sqrt(y**2 + (x - side * 0.15) ** 2)
    head = _ellipsoid(z, y, x, (0.55, 0.0, -side * 0.35), (0.3, 0.3, 0.3))
    neck_t = np.clip((z - 0.2) / 0.35, 0, 1)
    neck_r = np.sqrt((y) ** 2 + (x - side * (0.15 - 0.5 * neck_t)) ** 2)
    bone_outer = ((shaft_r <= 0.25) & (z < 0.35)) | (head <= 1) | ((neck_r <= 0.17) & (z >= 0.2) & (z <= 0.55))
    img = np.where(np.sqrt(y**2 + x**2) < 0.9, 0.45, FAT)  # thigh muscle in fat
    img = np.where(bone_outer, 0.97, img)
    img = np.where((shaft_r <= 0.15) & (z < 0.3), 0.5, img)  # marrow cavity
    img = np.where(head <= 0.5, 0.7, img)  # cancellous head
    return img, 0.02


def _bladder(g, rng):
    z, y, x = g
    level = _ellipsoid(z, y, x, (0, 0, 0), (0.7, 0.75, 0.85))
    img = np.where(level <= 1.12, 0.5, FAT)  # wall
    return np.where(level <= 1, 0.3, img), 0.01  # urine: homogeneous, darker than tissue


def _heart(g, rng):
    z, y, x = g
    myo = _ellipsoid(z, y, x, (0, 0, 0), (0.8, 0.75, 0.85))
    img = np.where(np.abs(x) > 0.75, AIR, SOFT)  # lungs either side
    img = np.where(myo <= 1, 0.55, img)
    lv = _ellipsoid(z, y, x, (0.05, 0.1, 0.25), (0.45, 0.35, 0.3)) <= 1
    rv = _ellipsoid(z, y, x, (0.05, -0.15, -0.3), (0.45, 0.35, 0.3)) <= 1
    return np.where(lv | rv, 0.85, img), 0.03  # contrast-filled chambers, septum between


def _lung(g, rng, side):
    z, y, x = g
    lung = (_ellipsoid(z, y, x, (0, 0, -side * 0.1), (0.95, 0.85, 0.8)) <= 1)
    if side < 0:  # left lung: cardiac notch
        lung &= _ellipsoid(z, y, x, (-0.5, -0.4, 0.75), (0.5, 0.5, 0.45)) > 1
    img = np.where(lung, AIR + 0.04, SOFT)
    fissure_planes = [(0.6, 0.0, 0.8, 0.1)] + ([(0.0, 0.3, 1.0, 0.2)] if side > 0 else [])  # right lung: 3 lobes
    for a, b, c, off in fissure_planes:
        plane = np.abs(a * x + b * y + c * z - off) < 0.03
        img = np.where(lung & plane, 0.2, img)
    for _ in range(8):  # vessels fanning from the hilum (medial side)
        d = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), -side * rng.uniform(0.2, 1.0)])
        d /= np.linalg.norm(d)
        p = np.array([0.0, 0.0, side * 0.55])
        t = np.clip((z - p[0]) * d[0] + (y - p[1]) * d[1] + (x - p[2]) * d[2], 0, 1.2)
        dist2 = (z - p[0] - t * d[0]) ** 2 + (y - p[1] - t * d[1]) ** 2 + (x - p[2] - t * d[2]) ** 2
        img = np.where(lung & (dist2 < (0.06 * (1.3 - t)) ** 2), 0.6, img)
    return img, 0.02


def _spleen(g, rng):
    z, y, x = g
    crescent = (_ellipsoid(z, y, x, (0, 0, 0), (0.85, 0.8, 0.55)) <= 1) & (_ellipsoid(z, y, x, (0, 0, -0.5), (0.8, 0.7, 0.55)) > 1)
    return np.where(crescent, 0.64, SOFT), 0.015


def _pancreas(g, rng):
    z, y, x = g
    centre_y = 0.25 * np.sin(2.0 * x + rng.uniform(-0.5, 0.5))  # curved band along x
    lobules = 0.05 * np.sin(12 * x + rng.uniform(0, 6)) * np.cos(9 * z)
    band = ((y - centre_y) / 0.25) ** 2 + (z / 0.3) ** 2 <= 1 + 4 * lobules
    band &= np.abs(x) < 0.9
    return np.where(band, 0.52, FAT), 0.05


_RENDER = (
    _liver,
    lambda g, r: _kidney(g, r, +1.0),
    lambda g, r: _kidney(g, r, -1.0),
    lambda g, r: _femur(g, r, +1.0),
    lambda g, r: _femur(g, r, -1.0),
    _bladder,
    _heart,
    lambda g, r: _lung(g, r, +1.0),
    lambda g, r: _lung(g, r, -1.0),
    _spleen,
    _pancreas,
)


def _grid(rng: np.random.Generator, size: int):
    """Sample coordinates in [-1, 1]^3 after a random anisotropic scale, rotation about z (<= 15 deg) and shift."""
    c = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    angle = np.deg2rad(rng.uniform(-15.0, 15.0))
    ca, sa = np.cos(angle), np.sin(angle)
    y, x = ca * y - sa * x, sa * y + ca * x
    scale = rng.uniform(0.85, 1.15, 3)
    shift = rng.uniform(-0.08, 0.08, 3)
    return (z / scale[0] - shift[0], y / scale[1] - shift[1], x / scale[2] - shift[2])


def render_organ(label: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """One uint8 cube of class ``label``."""
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"label {label} is not an OrganMNIST3D class index (0-{len(CLASS_NAMES) - 1})")
    if size not in (28, 64):
        raise ValueError(f"size {size} must be 28 or 64 (the MedMNIST+ resolutions used here)")
    image, texture_amp = _RENDER[label](_grid(rng, size), rng)
    image = image * rng.uniform(0.92, 1.08) + rng.uniform(-0.04, 0.04)
    image = image + texture_amp * 2 * smooth_noise(rng, image.shape, max(1.0, size / 10))
    image = image + rng.uniform(0.01, 0.04) * rng.standard_normal(image.shape)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def split_counts(count: int) -> dict[str, int]:
    """Per-class-balanced totals split in the real train/val/test proportions (each split gets >= 1 per class)."""
    if count < 3 * len(CLASS_NAMES):
        raise ValueError(f"count ({count}) must be >= {3 * len(CLASS_NAMES)} (every class in every split)")
    per_class = count // len(CLASS_NAMES)
    total = sum(REAL_SPLIT_SIZES.values())
    val = max(1, round(per_class * REAL_SPLIT_SIZES["val"] / total))
    test = max(1, round(per_class * REAL_SPLIT_SIZES["test"] / total))
    return {"train": per_class - val - test, "val": val, "test": test}


def generate_organs(seed: int = 0, count: int = 330, size: int = 28,
                    split_sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The npz content: ``count // 11`` cubes per class, split per class, shuffled within each split.

    ``split_sizes`` (e.g. :data:`REAL_SPLIT_SIZES`) instead fixes each split's length exactly (``count`` is then
    unused); the classes take turns within a split, so they are as balanced as those lengths allow."""
    per_split = split_counts(count) if split_sizes is None else None
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        if split_sizes is None:
            labels = np.repeat(np.arange(len(CLASS_NAMES)), per_split[split])
        else:
            labels = np.arange(int(split_sizes[split])) % len(CLASS_NAMES)
        labels = item_rng(seed, f"organs/order/{split}", 0).permutation(labels)
        images = np.empty((len(labels), size, size, size), dtype=np.uint8)
        for j, label in enumerate(labels):
            images[j] = render_organ(int(label), item_rng(seed, f"organs/{split}", j), size)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.astype(np.uint8)[:, None]
    return arrays


def write_organs(out_path: str | os.PathLike, seed: int = 0, count: int = 330, size: int = 28,
                 split_sizes: dict[str, int] | None = None) -> Path:
    """Write the MedMNIST-layout npz atomically (``split_sizes``: see :func:`generate_organs`)."""
    arrays = generate_organs(seed, count, size, split_sizes)
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(out_path)
