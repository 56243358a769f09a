"""Treatment-response cohort as the clinic hands it over: full CTs plus one tumour mask each (paper Sec. IV-A task 3).

The crop cohort of :mod:`.response` is what the workflow's ``response_crops`` rule produces; this module writes its
input instead — per patient a full chest CT (``clinical_spec`` grid: 512x512 slices at 0.6-0.9 mm, 1-2.5 mm apart)
with the patient's tumour rendered into the lung, the tumour's mask as a separate NIfTI on the same grid, and
``cohort.csv`` with ``sample_id, patient_id, image, label, mask`` (paths relative to the CSV). Labels and tumour
properties are those of :func:`.response.sample_records` (DCB:NDB = 82:118, NDB larger and more heterogeneous), so
the signal matches the crop cohort's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from smart import atomic
from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.lesion import render_lesion
from smart.data.synthetic.nifti import write_volume
from smart.data.synthetic.phantom import PhantomSpec, generate_phantom
from smart.data.synthetic.raters import lung_tumour_centre
from smart.data.synthetic.response import sample_records

__all__ = ["write_response_ct_cohort"]


def write_response_ct_cohort(out_dir: str | os.PathLike, seed: int, count: int, spec_of) -> pd.DataFrame:
    """Write ``out_dir/<patient>/{ct,tumour}.nii.gz`` and ``out_dir/cohort.csv``; return the cohort.

    ``spec_of(rng) -> PhantomSpec`` picks each CT's grid (its slices and spacing). Raises ``ValueError`` for
    ``count < 2`` (both classes are needed).
    """
    out_dir = Path(out_dir)
    rows = []
    for record, lesion in sample_records(seed, count):
        rng = item_rng(seed, "response_ct", record.index)
        spec: PhantomSpec = spec_of(rng)
        hu, labels, _ = generate_phantom(rng, spec)
        spacing_zyx = tuple(spec.spacing[::-1])
        centre = lung_tumour_centre(rng, labels, record.diameter_mm / 2, spacing_zyx)
        del labels
        hu, mask = render_lesion(hu, lesion, tuple(centre), spacing_zyx, rng)
        hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
        origin = tuple(-(n - 1) * s / 2 for n, s in zip(spec.shape[::-1], spec.spacing))
        image = f"{record.patient_id}/ct.nii.gz"
        write_volume(out_dir / image, hu, spec.spacing, origin,
                     metadata={"generator": "smart.data.synthetic.response_ct", "seed": seed, "index": record.index,
                               "label": record.label, "diameter_mm": record.diameter_mm})
        tumour = f"{record.patient_id}/tumour.nii.gz"
        write_volume(out_dir / tumour, mask.astype(np.uint8), spec.spacing, origin)
        rows.append({"sample_id": record.sample_id, "patient_id": record.patient_id, "image": image,
                     "label": record.label, "mask": tumour})
    frame = pd.DataFrame(rows)
    atomic.write_csv(out_dir / "cohort.csv", frame)
    return frame
