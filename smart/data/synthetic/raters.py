"""5-rater lung-tumour set (stand-in for TCIA's 5-rater data, paper Sec. IV-A zero-shot localisation).

Each case is a whole phantom CT (``phantom.py``) with one lung tumour, the tumour's true mask, five rater masks and their
consensus (``rater_consensus.consensus_mask``, default method). Raters disagree the way contouring radiation
oncologists do: a systematic per-rater margin (over/under-contouring, N(0, 1 mm) clipped to +-1.5 mm), a smooth spatially
varying boundary error (0.3-1 mm amplitude), and sometimes a rater who stops one slice early at the cranial/caudal ends.
Cases are written at 2 mm isotropic (the pretraining grid) so the zero-shot step needs no resampling.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from smart import atomic
from smart.data.rater_consensus import DEFAULT_METHOD, consensus_mask
from smart.data.synthetic.fields import item_rng, smooth_noise
from smart.data.synthetic.lesion import Lesion, render_lesion
from smart.data.synthetic.nifti import write_volume
from smart.data.synthetic.phantom import PhantomSpec, Tissue, generate_phantom

N_RATERS = 5
CASE_SHAPE = (80, 112, 112)
CASE_SPACING_MM = 2.0


def lung_tumour_centre(rng: np.random.Generator, labels: np.ndarray, radius_mm: float,
                       spacing_zyx: float | tuple[float, float, float]) -> np.ndarray:
    """(z, y, x) mm of a lung voxel at least ``radius`` from the lung boundary (or the deepest one if the lung is too
    thin); ``spacing_zyx`` is one isotropic spacing or three (anisotropic grids: full-size CTs)."""
    spacing = np.broadcast_to(np.asarray(spacing_zyx, dtype=float), (3,))
    depth = ndimage.distance_transform_edt(labels == Tissue.LUNG, sampling=spacing)
    candidates = np.argwhere(depth >= min(radius_mm, 0.8 * depth.max()))
    return candidates[rng.integers(len(candidates))].astype(float) * spacing


def rater_masks(rng: np.random.Generator, truth: np.ndarray, spacing: float, n_raters: int = N_RATERS) -> list[np.ndarray]:
    """Perturbed copies of ``truth``: threshold its signed distance at a per-rater smooth offset field."""
    # signed distance to the boundary (>0 outside), half a voxel either side of it, so a margin below one voxel can move it
    signed = (np.where(truth, 0.5 - ndimage.distance_transform_edt(truth), ndimage.distance_transform_edt(~truth) - 0.5)
              * spacing)
    masks = []
    for _ in range(n_raters):
        bias = float(np.clip(rng.normal(0.0, 1.0), -1.5, 1.5))
        margin = bias + rng.uniform(0.3, 1.0) * smooth_noise(rng, truth.shape, 4.0)
        mask = signed < margin
        if rng.random() < 0.3:
            zs = np.nonzero(mask.any(axis=(1, 2)))[0]
            if zs.size > 4:
                mask[zs[0]] = False
                mask[zs[-1]] = False
        masks.append(mask)
    return masks


def insert_lung_tumour(rng: np.random.Generator, hu: np.ndarray, labels: np.ndarray,
                       spacing: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Render one radiotherapy-stage lung tumour (28-55 mm) into a phantom on an isotropic ``spacing`` mm grid.

    Returns ``(hu int16, truth bool mask, diameter mm)``; ``labels`` is the phantom's :class:`Tissue` map."""
    diameter = float(rng.uniform(28.0, 55.0))  # radiotherapy-stage tumours are large
    lesion = Lesion(radius_mm=diameter / 2, lobulation=float(rng.uniform(0.05, 0.3)), n_lobes=int(rng.integers(3, 7)),
                    spicule_lengths_mm=tuple(float(v) for v in rng.uniform(3.0, 8.0, int(rng.poisson(2.0)))),
                    spicule_sharpness=0.02, solid_hu=float(rng.uniform(40.0, 90.0)),
                    heterogeneity_hu=float(rng.uniform(8.0, 25.0)), seed=int(rng.integers(2**31)))
    centre = lung_tumour_centre(rng, labels, diameter / 2, spacing)
    tumour_hu, truth = render_lesion(hu.astype(np.float32), lesion, tuple(centre), (spacing,) * 3, rng)
    return np.clip(np.rint(tumour_hu), -1024, 3071).astype(np.int16), truth, diameter


def generate_case(seed: int, index: int) -> dict:
    """One case: HU volume, truth, rater masks, consensus (numpy arrays) and the tumour's diameter."""
    rng = item_rng(seed, "raters", index)
    spec = PhantomSpec(shape=CASE_SHAPE, spacing=(CASE_SPACING_MM,) * 3)
    hu, labels, _ = generate_phantom(rng, spec)
    hu, truth, diameter = insert_lung_tumour(rng, hu, labels, CASE_SPACING_MM)
    # raters perturb a box around the tumour (the signed distance is exact there and 10x cheaper than the whole volume);
    # STAPLE runs on the whole volume, because its background prior depends on the volume's size
    nz = np.argwhere(truth)
    box = tuple(slice(max(lo - 8, 0), hi + 9) for lo, hi in zip(nz.min(0), nz.max(0)))
    masks = [np.zeros_like(truth) for _ in range(N_RATERS)]
    for full, part in zip(masks, rater_masks(rng, truth[box], CASE_SPACING_MM)):
        full[box] = part
    consensus = consensus_mask(masks, DEFAULT_METHOD)
    return {"hu": hu, "truth": truth, "raters": masks, "consensus": consensus, "diameter_mm": diameter}


def write_rater_set(out_dir: str | os.PathLike, seed: int = 0, count: int = 6) -> pd.DataFrame:
    """Write ``out_dir/<case>/{image,truth,rater1..5,consensus}.nii.gz`` and ``out_dir/raters.csv``."""
    if count < 1:
        raise ValueError(f"count ({count}) must be >= 1")
    out_dir = Path(out_dir)
    spacing = (CASE_SPACING_MM,) * 3
    rows = []
    for i in range(count):
        case = generate_case(seed, i)
        case_id = f"rater{i:03d}"
        row = {"case_id": case_id, "image": f"{case_id}/image.nii.gz"}
        write_volume(out_dir / row["image"], case["hu"], spacing,
                     metadata={"generator": "smart.data.synthetic.raters", "seed": seed, "index": i,
                               "diameter_mm": round(case["diameter_mm"], 3), "consensus_method": DEFAULT_METHOD})
        for r, mask in enumerate(case["raters"], start=1):
            row[f"rater{r}"] = f"{case_id}/rater{r}.nii.gz"
            write_volume(out_dir / row[f"rater{r}"], mask.astype(np.uint8), spacing)
        row["consensus"] = f"{case_id}/consensus.nii.gz"
        write_volume(out_dir / row["consensus"], case["consensus"].astype(np.uint8), spacing)
        row["truth"] = f"{case_id}/truth.nii.gz"
        write_volume(out_dir / row["truth"], case["truth"].astype(np.uint8), spacing)
        rows.append(row)
    frame = pd.DataFrame(rows)
    atomic.write_csv(out_dir / "raters.csv", frame)
    return frame
