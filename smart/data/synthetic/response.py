"""Treatment-response cohort (label 1 = durable clinical benefit, DCB; 0 = no durable benefit, NDB).

Paper Sec. IV-A, task 3: 200 stage-IV NSCLC patients, DCB:NDB = 82:118, one pre-treatment tumour crop each. The imaging
signal is deliberately weak (the paper's best AUC is 0.74): NDB tumours are on average larger (+0.4 SD of log diameter),
more often necrotic and more heterogeneous, with strongly overlapping distributions. One tumour per patient.
Crops default to 64^3 at 2 mm (the pretraining spacing), which holds tumours up to ~90 mm.
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

DCB_FRACTION = 82 / 200


@dataclass(frozen=True)
class TumourRecord:
    sample_id: str
    patient_id: str
    index: int
    label: int
    diameter_mm: float
    necrosis: float
    heterogeneity_hu: float
    contrast_hu: float


def n_positive(count: int) -> int:
    """Number of DCB patients among ``count`` (the paper's 82:118 ratio, rounded)."""
    return int(round(count * DCB_FRACTION))


def sample_records(seed: int, count: int) -> list[tuple[TumourRecord, Lesion]]:
    """Per-patient tumour metadata. Labels are a seeded permutation with exactly :func:`n_positive` DCB cases."""
    if count < 2:
        raise ValueError(f"count ({count}) must be >= 2 (both classes are needed)")
    labels = np.zeros(count, dtype=int)
    labels[: n_positive(count)] = 1
    labels = item_rng(seed, "response/labels", count).permutation(labels)
    out = []
    for i, label in enumerate(labels.tolist()):
        rng = item_rng(seed, "response", i)
        shift = 0.0 if label == 1 else 1.0  # NDB shifted by 0.4 SD in log size, more necrosis/heterogeneity
        diameter = float(np.clip(np.exp(rng.normal(np.log(32.0) + 0.4 * 0.35 * shift, 0.35)), 12.0, 80.0))
        necrosis = float(rng.uniform(0.2, 0.55)) if rng.random() < 0.25 + 0.2 * shift else 0.0
        heterogeneity = float(rng.gamma(4.0, (12.0 + 4.0 * shift) / 4.0))
        contrast = float(rng.uniform(30.0, 80.0))
        lesion = Lesion(
            radius_mm=diameter / 2,
            lobulation=float(rng.uniform(0.05, 0.3)),
            n_lobes=int(rng.integers(3, 8)),
            spicule_lengths_mm=tuple(float(v) for v in rng.uniform(3.0, 10.0, int(rng.poisson(2.0)))),
            spicule_sharpness=float(rng.uniform(0.01, 0.03)),
            solid_hu=40.0 + contrast,
            heterogeneity_hu=heterogeneity,
            necrosis=necrosis,
            seed=int(rng.integers(2**31)),
        )
        record = TumourRecord(f"resp{i:04d}", f"resppat{i:04d}", i, int(label), round(diameter, 3), round(necrosis, 3),
                              round(heterogeneity, 3), round(contrast, 3))
        out.append((record, lesion))
    return out


def render_tumour(record: TumourRecord, lesion: Lesion, seed: int, crop_size: int = 64, spacing_mm: float = 2.0) -> np.ndarray:
    rng = item_rng(seed, "response/voxels", record.index)
    shape = (crop_size,) * 3
    wall = (unit_vectors(rng, 1)[0], lesion.radius_mm * rng.uniform(0.8, 2.0)) if rng.random() < 0.5 else None
    background = lung_context(rng, shape, spacing_mm, blood_hu=40.0 + 2 * record.contrast_hu,
                              n_vessels=int(rng.integers(3, 7)), wall=wall)
    centre = np.array(shape) * spacing_mm / 2 - spacing_mm / 2 + rng.uniform(-4.0, 4.0, 3)
    hu, _ = render_lesion(background, lesion, tuple(centre), (spacing_mm,) * 3, rng)
    return to_int16(add_noise(rng, hu, float(rng.uniform(10.0, 25.0))))


def write_response_cohort(out_dir: str | os.PathLike, seed: int = 0, count: int = 60, crop_size: int = 64,
                          spacing_mm: float = 2.0) -> pd.DataFrame:
    """Write ``out_dir/crops/<sample_id>.nii.gz`` (+ JSON sidecars) and ``out_dir/cohort.csv``."""
    items = ((record, render_tumour(record, lesion, seed, crop_size, spacing_mm),
              {"diameter_mm": record.diameter_mm, "necrosis": record.necrosis})
             for record, lesion in sample_records(seed, count))
    return write_crop_cohort(out_dir, items, generator="smart.data.synthetic.response", seed=seed,
                             crop_size=crop_size, spacing_mm=spacing_mm)
