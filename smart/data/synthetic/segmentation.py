"""Labelled phantom CTs for the segmentation fine-tune (``smart synth segmentation``).

Each case is a whole phantom (``phantom.py``) on the 2 mm pretraining grid with one lung tumour
(``raters.insert_lung_tumour``) and a label map of :data:`STRUCTURES` (value i+1 = ``STRUCTURES[i]``, 0 = the rest):
the phantom's own lung, heart and liver codes, and the tumour drawn over them. Cases are assigned to
train / val / test in order (test = ceil(n/4), val = max(1, n//8), the rest train), so ``--count N+k`` keeps the first
cases' images but can move the split boundary.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from smart import atomic
from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.nifti import write_volume
from smart.data.synthetic.phantom import PhantomSpec, Tissue, generate_phantom
from smart.data.synthetic.raters import insert_lung_tumour

STRUCTURES = ("lung", "heart", "liver", "tumour")
_TISSUES = {"lung": (Tissue.LUNG,), "heart": (Tissue.HEART,), "liver": (Tissue.LIVER,)}
CASE_SHAPE = (64, 96, 96)   # (D, H, W) at 2 mm: 128 x 192 x 192 mm, two 64^3 windows across
SPACING_MM = 2.0


def split_of(index: int, count: int) -> str:
    """``test`` for the last ceil(count/4) cases, ``val`` for the max(1, count//8) before them, else ``train``."""
    n_test, n_val = math.ceil(count / 4), max(1, count // 8)
    if count < 3:
        raise ValueError(f"a segmentation set needs >= 3 cases (train, val, test), got {count}")
    if index >= count - n_test:
        return "test"
    return "val" if index >= count - n_test - n_val else "train"


def generate_case(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hu int16 (D, H, W), label uint8 (D, H, W))`` of case ``index``."""
    rng = item_rng(seed, "segmentation", index)
    hu, tissue, _ = generate_phantom(rng, PhantomSpec(shape=CASE_SHAPE, spacing=(SPACING_MM,) * 3))
    hu, tumour, _ = insert_lung_tumour(rng, hu, tissue, SPACING_MM)
    label = np.zeros(tissue.shape, np.uint8)
    for value, name in enumerate(STRUCTURES, start=1):
        if name in _TISSUES:
            label[np.isin(tissue, _TISSUES[name])] = value
    label[tumour] = STRUCTURES.index("tumour") + 1
    return hu, label


def write_segmentation_set(out_dir: str | os.PathLike, seed: int = 0, count: int = 8) -> pd.DataFrame:
    """Write ``out_dir/<case>/{image,label}.nii.gz`` and ``out_dir/segmentation.csv`` (case_id, image, label, split;
    paths relative to the CSV)."""
    out_dir = Path(out_dir)
    rows = []
    for i in range(count):
        split = split_of(i, count)
        hu, label = generate_case(seed, i)
        case_id = f"seg{i:03d}"
        row = {"case_id": case_id, "image": f"{case_id}/image.nii.gz", "label": f"{case_id}/label.nii.gz",
               "split": split}
        write_volume(out_dir / row["image"], hu, (SPACING_MM,) * 3,
                     metadata={"generator": "smart.data.synthetic.segmentation", "seed": seed, "index": i,
                               "structures": list(STRUCTURES)})
        write_volume(out_dir / row["label"], label, (SPACING_MM,) * 3)
        rows.append(row)
    frame = pd.DataFrame(rows)
    atomic.write_csv(out_dir / "segmentation.csv", frame)
    return frame
